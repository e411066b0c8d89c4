"""`mlstress-tui ramp`: step the load up until latency falls off the cliff; report the knee and a USL fit."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from mlstress_tui.bounds import BOUNDS, Bound
from mlstress_tui.commands.options import (add_load_arguments, add_metrics_arguments, add_output_arguments,
                                           add_target_arguments, bounded, build_session, metrics_served,
                                           watch_metrics)
from mlstress_tui.errors import UsageError
from mlstress_tui.load.limits import MAX_RATE
from mlstress_tui.commands.run import (add_front_end_arguments, check_baseline, check_theme, read_baseline,
                                       run_dashboard, run_headless, say_baseline_headless)
from mlstress_tui.results.kinds import CLOSED, OPEN
from mlstress_tui.session import RampPlan
from mlstress_tui.results.units import format_ms

# Closed loop: 1, 2, 4 … 64 users; open loop: 100 req/s ×1.5 up to 20,000.
DEFAULTS = {CLOSED: {"start": 1.0, "factor": 2.0, "maximum": 64.0},
            OPEN: {"start": 100.0, "factor": 1.5, "maximum": 20_000.0}}
# Beyond the steps themselves: worker start-up and a tick or two per level change.
SAFETY_BOUND_SLACK_S = 30.0
# A level is users (closed) or requests/s (open): the flag takes either, the mode's own bound is checked after.
LEVEL = Bound(0, MAX_RATE, above=True)
LEVEL_BOUNDS = {CLOSED: BOUNDS["concurrency"], OPEN: BOUNDS["rate"]}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ramp", help="find the cliff: step the load up until latency breaks, report the knee",
        description="Step concurrency (or rate) up until a step is past the cliff; report each step, the knee, "
                    "the safe level and a Universal Scalability Law fit (ramp.json).")
    add_target_arguments(parser)
    add_load_arguments(parser, levels=False, bounds=False)
    group = parser.add_argument_group("ramp")
    group.add_argument("--mode", choices=(CLOSED, OPEN), default=CLOSED,
                       help="step virtual users (closed, default) or the arrival rate (open)")
    group.add_argument("--start", type=bounded(LEVEL), metavar="N", help="first level (default 1 user; 100 req/s open)")
    how = group.add_mutually_exclusive_group()
    how.add_argument("--step", type=bounded(LEVEL), metavar="N", help="add N each step")
    how.add_argument("--factor", type=bounded("factor"), metavar="F", help="multiply by F each step (default 2; 1.5 open)")
    group.add_argument("--max", type=bounded(LEVEL), dest="maximum", metavar="N", help="last level (default 64 users; 20,000 req/s open)")
    group.add_argument("--step-duration", type=bounded("duration_s"), default=5.0, metavar="S", help="seconds each step is held (default 5)")
    group.add_argument("--sla-p95-ms", type=bounded("latency_ms"), metavar="X", help="p95 a step must stay within (default: the preset's SLA)")
    group.add_argument("--max-error-rate", type=bounded("share"), default=0.01, metavar="E", help="error rate a step must stay within (default 0.01)")
    add_output_arguments(parser)
    add_metrics_arguments(parser)
    add_front_end_arguments(parser)
    parser.set_defaults(func=run)


def ramp_plan(args: argparse.Namespace, sla_p95_ms: float, *, settle_at_safe: bool) -> RampPlan:
    defaults = DEFAULTS[args.mode]
    levels = LEVEL_BOUNDS[args.mode]
    for flag, value in (("--start", args.start), ("--max", args.maximum), ("--step", args.step)):
        if value is not None and not levels.holds(int(value) if args.mode == CLOSED and value.is_integer() else value):
            raise UsageError(f"ramp --mode {args.mode}: {flag} must be {levels}, got {value:g}")
    plan = RampPlan(mode=args.mode, start=args.start or defaults["start"],
                    maximum=args.maximum or max(defaults["maximum"], args.start or 0),
                    step=args.step, factor=None if args.step else (args.factor or defaults["factor"]),
                    step_duration_s=args.step_duration, sla_p95_ms=sla_p95_ms,
                    max_error_rate=args.max_error_rate, settle_at_safe=settle_at_safe)
    plan.validate()
    return plan


def print_ramp(report: dict, out: TextIO) -> None:
    """The steps table, the knee and why, and the USL fit, as a person reads them."""
    unit = "req/s" if report["mode"] == OPEN else "users"
    print(f"\n  {'level':>10} {'req/s':>10} {'p50':>9} {'p95':>9} {'p99':>9} {'errors':>8} {'pool p95':>9}  verdict", file=out)
    for step in report["steps"]:
        print(f"  {step['level']:>10g} {step['throughput_rps']:>10,.0f} {format_ms(step['p50_ms']):>9} "
              f"{format_ms(step['p95_ms']):>9} {format_ms(step['p99_ms']):>9} {step['error_rate']:>8.2%} "
              f"{format_ms(step['pool_wait_p95_ms']):>9}  {step['verdict']}", file=out)
    knee_key = "knee_rate" if report["mode"] == OPEN else "knee_concurrency"
    safe_key = "safe_rate" if report["mode"] == OPEN else "safe_concurrency"
    knee = report.get(knee_key)
    print(f"\n  knee: {'none' if knee is None else f'{knee:g} {unit}'}   safe: "
          f"{'none' if report.get(safe_key) is None else f'{report[safe_key]:g} {unit}'}", file=out)
    print(f"  why: {report['reason']}", file=out)
    if report.get("stopped_because"):
        print(f"  ramp stopped: {report['stopped_because']}", file=out)
    usl = report.get("usl")
    if usl:
        peak = (f"none ({usl.get('peak_note') or 'no retrograde term'})" if usl["peak_concurrency"] is None
                else f"{usl['peak_concurrency']:.1f}")
        print(f"  USL fit: λ {usl['lambda']:.4g} req/s per user, σ {usl['sigma']:.4g}, κ {usl['kappa']:.4g}, "
              f"N* {peak}, r² {usl['r2']:.3f}", file=out)
    else:
        print("  USL fit: too few steps to fit (need 3 levels with requests)", file=out)


def run(args: argparse.Namespace) -> int:
    headless = args.headless or not sys.stdout.isatty()
    check_theme(args.theme)  # the same answer headless: a typo is bad input either way
    base = read_baseline(args)
    from mlstress_tui.presets import load_preset

    preset = load_preset(args.preset)
    plan = ramp_plan(args, args.sla_p95_ms or preset.sla_p95_ms, settle_at_safe=not headless)
    first = plan.levels()[0]
    start = {"mode": CLOSED, "concurrency": int(first)} if plan.mode == CLOSED else {"mode": OPEN, "rate": first}
    # A safety bound only: the ramp ends the run itself once it is past the cliff or at --max.
    bound = len(plan.levels()) * plan.step_duration_s * 2 + SAFETY_BOUND_SLACK_S
    with metrics_served(args) as metrics:
        session, _ = build_session(args, headless=False, sla_p95_ms=plan.sla_p95_ms,
                                   duration_s=bound if headless else None, requests=None, **start)
        check_baseline(base, session)
        watch_metrics(metrics, session)
        if headless:
            say_baseline_headless(base, session)
            session.start_ramp(plan, on_end=lambda _ramp: session.stop())
            code = run_headless(session, describe=f"ramp over {len(plan.levels())} levels of "
                                                  f"{plan.step_duration_s:g} s")
        else:
            session.start_ramp(plan)
            code = run_dashboard(session, args.theme, base)
        if session.ramp_report is not None:
            print_ramp(session.ramp_report, sys.stdout)
        return code
