"""The headless front end's voice: one progress line per second of ticks, and the summary at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from mlstress_tui.results.interval_stats import CLOSED, IntervalStats, WindowMerger
from mlstress_tui.results.run_stats import FAULT_ACTIONS
from mlstress_tui.results.units import format_ms


def fault_line(event: dict) -> str:
    """A fault of the tool or of the load, as one line a person reads."""
    action = event["action"]
    if action == "worker_died":
        where = f" on node {event['node']}" if event.get("node") else ""
        return (f"worker {event['worker']}{where} died at {event['t']:.1f} s ({event['how']}) carrying "
                f"{event['carried']}; {event['inflight_lost']} requests in flight lost; {event['then']}")
    if action == "worker_replacement_failed":
        return f"worker {event['worker']} could not be replaced: {event['error']}"
    if action == "harness_stall":
        stall = f"the harness stalled for {format_ms(event['stall_ms'])} at {event['t']:.1f} s"
        if event.get("stopped"):
            return (f"{stall} (the tool or the machine was stopped): latencies then include the stall; "
                    "that time is not counted as load time")
        return f"{stall} (starved of CPU or paused): latencies then include the stall, not only the target's"
    if action == "clock_skew":
        return (f"node {event['node']}'s clock is {event['offset_ms']:+.2f} ms off this machine's: the start and "
                "plan changes are shifted by it, but check its time sync (NTP)")
    if action == "user_died":
        return f"a virtual user in worker {event.get('worker')} died and was replaced: {event['error']}"
    return event.get("reason", action)


def node_lines(nodes: list[dict]) -> list[str]:
    """The per-node table of a Ray run."""
    if not nodes:
        return []
    lines = [f"  {'node':<18} {'actors':>6} {'offered':>11} {'achieved':>11} {'p99':>8}  verdict"]
    for node in nodes:
        offered = f"{node['rate']:,.0f} req/s" if "rate" in node else f"{node['concurrency']} users"
        lines.append(f"  {node['node'][:18]:<18} {node['actors_alive']:>3}/{node['actors']:<2} {offered:>11} "
                     f"{node['throughput_rps']:>7,.0f} r/s {format_ms(node['p99_ms']):>8}  {node['harness_verdict']}")
    return lines


def say_waiting(seconds: float, ready: int, workers: int) -> None:
    """While the workers open the target (a model's import): a line a second on stderr, so start-up is never silence."""
    print(f"starting: {ready} of {workers} worker processes ready after {seconds:.0f} s "
          "(opening the target: imports, connections)", file=sys.stderr, flush=True)


def progress_line(window: IntervalStats) -> str:
    """One second of the run: the level commanded, throughput, percentiles, errors."""
    load = f"c={window.concurrency}" if window.mode == CLOSED else f"rate={window.rate or 0:g}/s"
    summary = window.latency.summary_ms()
    errors = f"  errors {window.errors}" if window.errors else ""
    late = f"  late {window.late_starts}" if window.late_starts else ""
    paused = "  (paused)" if window.paused else ""
    if window.stuck_users:
        paused += f"  stuck {window.stuck_users}"
    stall = window.harness_stall_ms()
    if stall is not None:
        paused += f"  (harness stalled {format_ms(stall)})"
    return (f"{window.t_end:7.1f}s  {window.mode:6} {load:12} {window.throughput_rps:10,.0f} req/s  "
            f"p50 {format_ms(summary['p50']):>8}  p95 {format_ms(summary['p95']):>8}  "
            f"p99 {format_ms(summary['p99']):>8}  max {format_ms(summary['max']):>8}{errors}{late}{paused}")


class HeadlessPrinter:
    """A run-session consumer printing a progress line per second of ticks (and what the ramp did)."""

    def __init__(self, out: TextIO, window_s: float = 1.0) -> None:
        self.out = out
        self._windows = WindowMerger(window_s)

    def on_tick(self, tick: IntervalStats) -> None:
        window = self._windows.add(tick)
        if window is not None:
            print(progress_line(window), file=self.out, flush=True)
        for event in tick.events:
            if event["action"] in ("ramp_step", "ramp_end"):
                print(f"         {event['text']}", file=self.out, flush=True)
            elif event["action"] in FAULT_ACTIONS:
                print(f"  !! {fault_line(event)}", file=self.out, flush=True)


def print_summary(summary: dict, run_dir: Path, out: TextIO, write_errors: list[str] = ()) -> None:
    """The summary as a person reads it at the end of a headless run or after the dashboard closes."""
    load = summary["load"]["final"]
    shape = f"concurrency {load['concurrency']}" if load["mode"] == CLOSED else f"rate {load['rate']:g}/s"
    running = summary.get("users_running_max")
    short = any(event["action"] == "cannot_hold_load" for event in summary.get("faults", {}).get("events", []))
    if load["mode"] == CLOSED and short and running is not None and running < load["concurrency"]:
        shape += f" (at most {running} ran)"
    print(f"\n{summary['target']['label']}  {load['mode']} loop, {shape}, {summary['duration_s']:.1f} s"
          + ("  (interrupted)" if summary["interrupted"] else ""), file=out)
    print(f"  requests {summary['requests']:,}  ok {summary['ok']:,}  errors {summary['errors']:,}"
          f" ({summary['error_rate']:.2%})  throughput {summary['throughput_rps']:,.1f} req/s", file=out)
    for kind, count in summary["errors_by_kind"].items():
        print(f"    {kind}: {count:,}", file=out)
    for label, key in (("latency", "latency_ms"), ("service", "service_ms"), ("pool wait", "pool_wait_ms")):
        values = summary[key]
        print(f"  {label:9}  " + "  ".join(f"{name} {format_ms(values[name])}" for name in
                                          ("p50", "p90", "p95", "p99", "p999", "max", "mean")), file=out)
    levels = summary.get("levels", [])
    if len(levels) > 1:
        # The headline is where the knobs ended; a run that visited several levels says each of them.
        print(f"  levels visited ({len(levels)}):  mode    level       seconds      req/s       p95       p99   errors",
              file=out)
        for level in levels:
            shown = f"{level['level']:g} users" if level["mode"] == CLOSED else f"{level['level']:g}/s"
            latency = level["latency_ms"]
            print(f"  {'':20}{level['mode']:7} {shown:>11} {level['seconds']:>9.1f} {level['throughput_rps']:>10,.1f} "
                  f"{format_ms(latency['p95']):>9} {format_ms(latency['p99']):>9} {level['errors']:>8,}", file=out)
    ramp = summary.get("ramp")
    if ramp:
        unit = "req/s" if load["mode"] != CLOSED and ramp.get("knee_rate") is not None else "users"
        knee = ramp.get("knee_concurrency") if unit == "users" else ramp.get("knee_rate")
        safe = ramp.get("safe_concurrency") if unit == "users" else ramp.get("safe_rate")
        print(f"  ramp: knee {'none' if knee is None else f'{knee:g} {unit}'}, safe "
              f"{'none' if safe is None else f'{safe:g} {unit}'}: {ramp.get('reason')}", file=out)
    late = summary.get("harness", {}).get("late_starts")
    if late:
        print(f"  late starts {late:,} (open loop: sent more than 1 ms after their due time, because no connection or "
              "executor was free; their latency counts from the due time)", file=out)
    if summary.get("bottleneck"):
        print(f"  >> {summary['bottleneck']}", file=out)
    if summary.get("unfinished") or summary.get("unsent"):
        print(f"  unfinished {summary['unfinished']:,} (still in a call at the end)  unsent {summary['unsent']:,} "
              "(due in the open loop, never sent)", file=out)
    if summary.get("latency_with_unsent_ms"):
        values = summary["latency_with_unsent_ms"]
        print("  latency with the unsent backlog (lower bound)  " + "  ".join(
            f"{name} {format_ms(values[name])}" for name in ("p50", "p95", "p99", "max")), file=out)
    faults = summary.get("faults", {})
    if faults.get("late_returns") or faults.get("stuck_users_max"):
        print(f"  stuck in the target: up to {faults['stuck_users_max']} users at once; "
              f"{faults['late_returns']:,} calls returned after their deadline (counted once, as timeouts)", file=out)
    for event in faults.get("events", []):
        print(f"  !! {fault_line(event)}", file=out)
    for line in node_lines(summary.get("nodes") or []):
        print(line, file=out)
    harness = summary["harness"]
    lag = harness["hiccup_ms"]
    stalled = f"  stalled {harness['stalled_s']:.2f} s" if harness.get("stalled_s") else ""
    print(f"  harness lag  p50 {format_ms(lag['p50'])}  p99 {format_ms(lag['p99'])}  max {format_ms(lag['max'])}"
          f"{stalled}  (how late the workers' own timer woke)  verdict: {harness['verdict']}", file=out)
    if harness.get("note"):
        print(f"  harness: {harness['note']}", file=out)
    written = [run_dir / "summary.json", run_dir / "intervals.jsonl"]
    if "ramp" in summary:
        written.append(run_dir / "ramp.json")
    if summary.get("target_output", {}).get("lines"):
        written.append(run_dir / "target.log")
        print(f"  the target wrote {summary['target_output']['lines']:,} lines of output: in {run_dir / 'target.log'}",
              file=out)
    for error in write_errors:
        print(f"  !! {error} (the figures above are the run's; they are not on disk)", file=out)
    if not write_errors:
        print("  written: " + ", ".join(str(path) for path in written), file=out)
