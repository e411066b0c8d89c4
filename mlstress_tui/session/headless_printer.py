"""The headless front end's voice: one progress line per second of ticks, and the summary at the end."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from mlstress_tui.results.interval_stats import CLOSED, IntervalStats, WindowMerger


def format_ms(value: float | None) -> str:
    """A latency with its unit, µs to s, for lines a person reads."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 10:
        return f"{value:.1f}ms"
    if value >= 0.1:
        return f"{value:.2f}ms"
    return f"{value * 1000:.1f}µs"


def progress_line(window: IntervalStats) -> str:
    """One second of the run: the level commanded, throughput, percentiles, errors."""
    load = f"c={window.concurrency}" if window.mode == CLOSED else f"rate={window.rate or 0:g}/s"
    summary = window.latency.summary_ms()
    errors = f"  errors {window.errors}" if window.errors else ""
    late = f"  late {window.late_starts}" if window.late_starts else ""
    paused = "  (paused)" if window.paused else ""
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


def print_summary(summary: dict, run_dir: Path, out: TextIO) -> None:
    """The summary as a person reads it at the end of a headless run or after the dashboard closes."""
    load = summary["load"]["final"]
    shape = f"concurrency {load['concurrency']}" if load["mode"] == CLOSED else f"rate {load['rate']:g}/s"
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
    harness = summary["harness"]
    lag = harness["hiccup_ms"]
    print(f"  harness lag  p50 {format_ms(lag['p50'])}  p99 {format_ms(lag['p99'])}  max {format_ms(lag['max'])}"
          f"  (how late the workers' own timer woke)  verdict: {harness['verdict']}", file=out)
    if harness.get("note"):
        print(f"  harness: {harness['note']}", file=out)
    written = [run_dir / "summary.json", run_dir / "intervals.jsonl"]
    if "ramp" in summary:
        written.append(run_dir / "ramp.json")
    print("  written: " + ", ".join(str(path) for path in written), file=out)
