"""The headless front end's voice: one progress line per second of ticks, and the summary at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any, TextIO

from mlstress_tui.load.failures import printable
from mlstress_tui.results.interval_stats import IntervalStats, WindowMerger
from mlstress_tui.results.kinds import CLOSED, EventKind, RunEvent
from mlstress_tui.results.units import counted, format_ms
from mlstress_tui.session.snapshot import RunSnapshot


def fault_line(event: RunEvent) -> str:
    """A fault of the tool or of the load, as one line a person reads."""
    kind, get = event.kind, event.get
    if kind == EventKind.WORKER_DIED:
        where = f" on node {get('node')}" if get("node") else ""
        return (f"worker {get('worker')}{where} died at {event.t:.1f} s ({get('how')}) carrying "
                f"{get('carried')}; {counted(get('inflight_lost') or 0, 'request')} it had sent were lost; "
                f"{get('then')}")
    if kind == EventKind.WORKER_REPLACEMENT_FAILED:
        return f"worker {event.worker} could not be replaced: {get('error')}"
    if kind == EventKind.WORKER_SILENT:
        if get("back"):
            return f"worker {get('worker')} is sending ticks again at {event.t:.1f} s"
        if get("killed"):
            return (f"worker {get('worker')} was still silent at the end ({get('silent_s'):g} s): killed; its "
                    f"{counted(get('timeouts') or 0, 'call')} in flight counted as timeouts at their deadline")
        return (f"worker {get('worker')} has sent nothing for {get('silent_s'):g} s (the target holds it: the GIL, a "
                f"wedged call): its {counted(get('users') or 0, 'user')} count as stuck")
    if kind == EventKind.HARNESS_STALL:
        workers = get("workers") or []
        who = f"worker{'s' * (len(workers) != 1)} {', '.join(map(str, workers))}" if workers else "the harness"
        stall = f"{who} stalled for {format_ms(get('stall_ms'))} at {event.t:.1f} s"
        if get("stopped"):
            return (f"{stall} (stopped: Ctrl-Z, SIGSTOP, a VM pause): latencies then include the stall; time in "
                    "which every worker stood still is not load time")
        return f"{stall} (starved of CPU): latencies then include the stall, not only the target's"
    if kind == EventKind.CLOCK_SKEW:
        return (f"node {get('node')}'s clock is {get('offset_ms'):+.2f} ms off this machine's: the start and "
                "plan changes are shifted by it, but check its time sync (NTP)")
    if kind == EventKind.USER_DIED:
        return f"a virtual user in worker {event.worker} died and was replaced: {get('error')}"
    if kind == EventKind.TARGET_FORKED:
        return (f"the target forked {get('forks')} child process(es) in worker {event.worker}: a child that comes back "
                "into the harness exits at once, so it sends nothing and takes no --requests ticket")
    if kind == EventKind.OUTPUT_DROPPED:
        return (f"target.log cannot be written ({get('reason')}): the target's output is dropped and counted, "
                "the target never waits on it")
    return str(get("reason", kind.value))


def event_line(event: RunEvent) -> str:
    """Any event of a run as one whole line (the dashboard's run log): a fault, a ramp's step, a change of load."""
    kind, get = event.kind, event.get
    if event.is_fault:
        return fault_line(event)
    if kind in (EventKind.RAMP_STEP, EventKind.RAMP_END):
        return str(get("text") or kind.value)
    if kind == EventKind.CONCURRENCY:
        return f"users {get('from')} → {get('to')}"
    if kind == EventKind.RATE:
        before, after = get("from"), get("to")
        return f"rate {before or 0:,.1f} → {after or 0:,.1f} req/s"
    if kind == EventKind.MODE:
        return f"{get('from')} loop → {get('to')} loop"
    if kind == EventKind.PAUSE:
        return "paused"
    if kind == EventKind.RESUME:
        return "resumed"
    if kind == EventKind.DURATION_REACHED:
        return "the run's duration was reached"
    details = ", ".join(f"{key} {value}" for key, value in event.details.items())
    return f"{kind.value}: {details}" if details else kind.value


def node_lines(nodes: list[dict[str, Any]], *, run_verdict: str | None = None) -> list[str]:
    """The per-node table of a Ray run; with the run's harness verdict, a line when a node's own differs from it."""
    if not nodes:
        return []
    lines = [f"  {'node':<18} {'actors':>6} {'offered':>11} {'achieved':>11} {'p99':>8}  node's harness"]
    for node in nodes:
        offered = f"{node['rate']:,.0f} req/s" if "rate" in node else counted(node["concurrency"], "user")
        lines.append(f"  {node['node'][:18]:<18} {node['actors_alive']:>3}/{node['actors']:<2} {offered:>11} "
                     f"{node['throughput_rps']:>7,.0f} r/s {format_ms(node['p99_ms']):>8}  {node['harness_verdict']}")
    if run_verdict is not None and any(node["harness_verdict"] != run_verdict for node in nodes):
        # A node's column judges that node's own timer and cores; the run's verdict also weighs the load held.
        lines.append(f"  the run's harness verdict is {run_verdict}: a node's column judges only that node's "
                     "timer and cores")
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
            if event.kind in (EventKind.RAMP_STEP, EventKind.RAMP_END):
                print(f"         {event.get('text')}", file=self.out, flush=True)
            elif event.is_fault:
                print(f"  !! {fault_line(event)}", file=self.out, flush=True)


def print_summary(snapshot: RunSnapshot, run_dir: Path, out: TextIO, write_errors: Sequence[str] = (),
                  *, interrupted: bool = False) -> None:
    """The run's final snapshot as a person reads it at the end of a headless run or after the dashboard closes."""
    figures = snapshot.figures
    level = snapshot.level
    shape = (f"concurrency {level.concurrency}" if level.mode == CLOSED else f"rate {level.rate or 0:g}/s")
    short = any(event.kind == EventKind.CANNOT_HOLD_LOAD for event in snapshot.faults)
    if level.mode == CLOSED and short and snapshot.users_running_max < level.concurrency:
        shape += f" (at most {snapshot.users_running_max} ran)"
    print(f"\n{snapshot.target['label']}  {level.mode.value} loop, {shape}, {snapshot.elapsed_s:.1f} s"
          + ("  (interrupted)" if interrupted else ""), file=out)
    load_note = f" over {snapshot.load_s:.1f} s of load" if abs(snapshot.load_s - snapshot.elapsed_s) >= 0.05 else ""
    print(f"  requests {figures.requests:,}  ok {figures.ok:,}  errors {figures.errors:,}"
          f" ({figures.error_rate:.2%})  throughput {figures.throughput_rps:,.1f} req/s{load_note}", file=out)
    for kind, count in figures.errors_by_kind.items():
        sample = next((message for _, seen, message in reversed(snapshot.recent_errors) if seen == kind), None)
        print(f"    {kind}: {count:,}" + (f"  (e.g. {printable(sample, 160)})" if sample else ""), file=out)
    for label, values in (("latency", figures.latency_ms), ("service", figures.service_ms),
                          ("pool wait", figures.pool_wait_ms)):
        if label == "pool wait" and snapshot.total.connections_owned:
            print(f"  {label:9}  owned: each virtual user held its own connection, no pool to wait for", file=out)
            continue
        print(f"  {label:9}  " + "  ".join(f"{name} {format_ms(values[name])}" for name in
                                          ("p50", "p90", "p95", "p99", "p999", "max", "mean")), file=out)
    paths = snapshot.total.paths
    if paths:
        # A target with several paths (--cache): which way the requests went, and what each cost.
        print("  paths      " + "  ".join(
            f"{name} {group.requests:,} (p95 {format_ms(group.latency.percentile_ms(95))}"
            + (f", {group.errors:,} errors" if group.errors else "") + ")"
            for name, group in sorted(paths.items())), file=out)
    levels = snapshot.levels
    if len(levels) > 1:
        # The headline is where the knobs ended; a run that visited several levels says each of them.
        print(f"  levels visited ({len(levels)}):  mode    level       seconds      req/s       p95       p99   errors",
              file=out)
        for entry in levels:
            step = entry.figures
            shown = f"{step.level:g} user{'s' * (step.level != 1)}" if step.mode == CLOSED else f"{step.level:g}/s"
            print(f"  {'':20}{step.mode:7} {shown:>11} {step.seconds:>9.1f} {step.throughput_rps:>10,.1f} "
                  f"{format_ms(step.p95_ms):>9} {format_ms(step.p99_ms):>9} {step.errors:>8,}", file=out)
    ramp = snapshot.ramp
    if ramp:
        unit = "req/s" if level.mode != CLOSED and ramp.get("knee_rate") is not None else "users"
        knee = ramp.get("knee_concurrency") if unit == "users" else ramp.get("knee_rate")
        safe = ramp.get("safe_concurrency") if unit == "users" else ramp.get("safe_rate")
        if knee is None and safe is None:
            # The analysis's reason starts "none: …" when no step held the SLA; said once here, not twice.
            reason = str(ramp.get("reason") or "").removeprefix("none: ")
            print(f"  ramp: no knee and no safe level: {reason}", file=out)
        else:
            print(f"  ramp: knee {'none' if knee is None else f'{knee:g} {unit}'}, safe "
                  f"{'none' if safe is None else f'{safe:g} {unit}'}: {ramp.get('reason')}", file=out)
    if figures.late_starts:
        print(f"  late starts {figures.late_starts:,} (open loop: sent more than 1 ms after their due time, because no "
              "connection or executor was free; their latency counts from the due time)", file=out)
    if snapshot.bottleneck:
        print(f"  >> {snapshot.bottleneck}", file=out)
    if snapshot.point_missed:
        print(f"  >> {snapshot.point_missed}", file=out)
    accounted = [f"unfinished {figures.unfinished:,} (still in a call at the end)" if figures.unfinished else "",
                 f"unsent {figures.unsent:,} (due in the open loop, never sent)" if figures.unsent else "",
                 f"paused arrivals {figures.paused_arrivals:,} (fell in a pause: not owed)"
                 if figures.paused_arrivals else "",
                 f"lost {figures.lost:,} (sent by a worker that died, outcome unknown)" if figures.lost else ""]
    if any(accounted):
        print("  " + "  ".join(part for part in accounted if part), file=out)
    if figures.latency_with_unsent_ms:
        values = figures.latency_with_unsent_ms
        print("  latency with the unsent backlog (lower bound)  " + "  ".join(
            f"{name} {format_ms(values[name])}" for name in ("p50", "p95", "p99", "max")), file=out)
    if figures.late_returns or snapshot.stuck_users_max:
        print(f"  stuck in the target: up to {counted(snapshot.stuck_users_max, 'user')} at once; "
              f"{counted(figures.late_returns, 'call')} returned after their deadline (counted once, as timeouts)",
              file=out)
    for event in snapshot.faults:
        print(f"  !! {fault_line(event)}", file=out)
    for line in node_lines(snapshot.nodes or [], run_verdict=snapshot.harness["verdict"]):
        print(line, file=out)
    harness = snapshot.harness
    lag = harness["hiccup_ms"]
    stopped = (f"  every worker stood still {harness['stopped_s']:.2f} s (not load time)"
               if harness.get("stopped_s") else "")
    print(f"  harness lag  p50 {format_ms(lag['p50'])}  p99 {format_ms(lag['p99'])}  max {format_ms(lag['max'])}"
          f"{stopped}  (how late the workers' own timer woke)  verdict: {harness['verdict']}", file=out)
    if harness.get("note"):
        print(f"  harness: {harness['note']}", file=out)
    print(f"  {snapshot.validity.line}", file=out)
    written = [run_dir / "summary.json", run_dir / "intervals.jsonl"]
    if ramp:
        written.append(run_dir / "ramp.json")
    if figures.output_lines:
        written.append(run_dir / "target.log")
        print(f"  the target wrote {figures.output_lines:,} lines of output: in {run_dir / 'target.log'}", file=out)
    for error in write_errors:
        print(f"  !! {error} (the figures above are the run's; they are not on disk)", file=out)
    if not write_errors:
        print("  written: " + ", ".join(str(path) for path in written), file=out)
