"""`mlstress-tui outliers`: which users (by event count) break the latency budget, and what to do about them."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from mlstress_tui.analysis.outliers import strata_table
from mlstress_tui.commands.options import (add_metrics_arguments, add_output_arguments, add_ray_arguments,
                                           add_target_arguments, bounded, build_session, metrics_served,
                                           watch_metrics)
from mlstress_tui.commands.run import (add_front_end_arguments, check_baseline, check_theme, read_baseline,
                                       run_dashboard, run_headless, say_baseline_headless)
from mlstress_tui.errors import UsageError
from mlstress_tui.session import RunSession

DEFAULT_THRESHOLD_MS = 200.0
DEFAULT_REQUESTS_PER_STRATUM = 200


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "outliers", help="find the heavy users who break the latency budget",
        description="Send the same number of requests to every stratum of users by event count (log-spaced, "
                    "plus the top 1%, the top 0.1% and the heaviest users), then fit latency against events: "
                    "the event count past which p95 breaks --threshold-ms, and how many users are past it "
                    "(outliers.json).")
    add_target_arguments(parser)
    group = parser.add_argument_group("heavy users")
    group.add_argument("--threshold-ms", type=bounded("latency_ms"), default=DEFAULT_THRESHOLD_MS, metavar="X",
                       help=f"the p95 budget a user must stay within (default {DEFAULT_THRESHOLD_MS:g})")
    group.add_argument("--concurrency", type=bounded("concurrency"), default=1, metavar="N",
                       help="virtual users while measuring (default 1: a user's cost alone; higher: under load)")
    group.add_argument("--requests-per-stratum", type=bounded("requests_per_group"), default=DEFAULT_REQUESTS_PER_STRATUM, metavar="N",
                       help=f"requests sent to each stratum (default {DEFAULT_REQUESTS_PER_STRATUM})")
    group.add_argument("--seed", type=bounded("seed"), default=42, metavar="S", help="seed of the request sequence (default 42)")
    group.add_argument("--production-users", type=bounded("requests"), metavar="N",
                       help="behind --cache: what the cache would cost at N users of the same shape")
    group.add_argument("--workers", type=bounded("workers"), metavar="N", help="worker processes (default: one per core)")
    add_ray_arguments(group)
    group.add_argument("--preset", metavar="NAME|FILE", help=argparse.SUPPRESS)
    add_output_arguments(parser)
    add_metrics_arguments(parser)
    add_front_end_arguments(parser)
    parser.set_defaults(func=run)


def attach_outliers(session: RunSession) -> None:
    """Write outliers.json at the end of `session`: the session's heavy-user report on its whole run."""

    def build(finished: RunSession) -> dict:
        report = finished.heavy_users.report(fresh=True)
        if report is None:
            raise UsageError(finished.heavy_users.why_none)
        return report

    session.add_report("outliers.json", build)


def print_outliers(report: dict, out: TextIO) -> None:
    """The strata table (the evidence), then the breach count, who is past it, and the action."""
    table = strata_table(report)
    print("\n" + table.to_string(index=False), file=out)
    breach = report["breach_event_count"]
    fit = report.get("fit") or {}
    if report.get("failing"):
        print(f"\n  failing: {report['failing']['text']} (a failure is past any budget)", file=out)
    if not report.get("judged", True):
        print("\n  breach event count: not judged (too few requests per stratum)", file=out)
    elif breach is None:
        print(f"\n  breach event count: none (no user's p95 is predicted above {report['threshold_ms']:g} ms)", file=out)
    else:
        print(f"\n  breach event count: {breach:,} events (past p95 {report['threshold_ms']:g} ms from there on; "
              f"{report['population_share_above']:.3%} of users, {report['users_above']:,} users)", file=out)
    if fit.get("method"):
        print(f"  fit: {fit.get('model', '')} ({fit['method']})", file=out)
    print(f"  action: {report['action']}", file=out)


def run(args: argparse.Namespace) -> int:
    headless = args.headless or not sys.stdout.isatty()
    check_theme(args.theme)  # the same answer headless: a typo is bad input either way
    base = read_baseline(args)
    with metrics_served(args) as metrics:
        session, _ = build_session(args, headless=False, sla_p95_ms=args.threshold_ms, mode="closed",
                                   concurrency=args.concurrency, user_mix="stratified",
                                   requests_per_group=args.requests_per_stratum, duration_s=None, requests=None)
        check_baseline(base, session)
        attach_outliers(session)
        watch_metrics(metrics, session)
        describe = (f"{args.requests_per_stratum} requests to each of {len(session.strata)} strata, "
                    f"{args.concurrency} user(s) at a time")
        if headless:
            say_baseline_headless(base, session)
        code = run_headless(session, describe=describe) if headless else run_dashboard(session, args.theme, base)
        report = session.reports.get("outliers.json")
        if report is not None:
            print_outliers(report, sys.stdout)
            cost = cache_cost(report, session, getattr(args, "cache", None), args.production_users)
            if cost is not None:
                report["cache_cost"] = cost
                session.rewrite_report("outliers.json", report)
                print(f"  cache: {cost['text']}", file=sys.stdout)
            print(f"  written: {session.run_dir / 'outliers.json'}", file=sys.stdout)
        return code


def cache_cost(report: dict, session: RunSession, cache_url: str | None, production_users: int | None) -> dict | None:
    """Behind --cache: whether the breach is gone, and what the cache costs here and at production's user count."""
    cache = (report.get("target") or {}).get("cache")
    if not cache or not cache_url:
        return None
    from mlstress_tui.pipeline.feature_store import read_meta
    from mlstress_tui.redis_url import connect_checked

    client = connect_checked(cache_url, "--cache")
    try:
        meta = read_meta(client)
    finally:
        client.close()
    users = int(meta.get("users", 0)) if meta else 0
    seconds = float(meta.get("seconds", 0.0)) if meta else 0.0
    memory = int(meta.get("keys_bytes", 0)) if meta else 0
    gone = report["breach_event_count"] is None and report.get("judged", True)
    cost: dict = {"breach_gone": gone, "users_cached": users, "redis_bytes": memory, "precompute_s": seconds}
    said = (f"the breach is gone behind the cache (users with {cache['at_least_events']:,}+ events)" if gone else
            f"users from {report['breach_event_count']:,} events still breach behind the cache"
            if report["breach_event_count"] is not None else "too few requests to judge the cache")
    cost_words = f"{users:,} users cached in {memory / 1e6:,.1f} MB of Redis, precomputed in {seconds:,.1f} s"
    population = int(session.database.get("users") or 0)
    if production_users and population:
        scale = production_users / population
        cost["at_production"] = {"users": production_users, "users_cached": round(users * scale),
                                 "redis_bytes": round(memory * scale), "precompute_s": round(seconds * scale, 1)}
        cost_words += (f"; at {production_users:,} users of the same shape: {users * scale:,.0f} users, "
                       f"{memory * scale / 1e6:,.1f} MB, {seconds * scale:,.0f} s")
    cost["text"] = f"{said}; {cost_words}"
    return cost
