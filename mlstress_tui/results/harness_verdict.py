"""Whether the harness can vouch for the latencies it measured: its own CPU use and timer lag."""

from __future__ import annotations

from typing import Any

from mlstress_tui.results.interval_stats import IntervalStats

# A worker process busier than this was CPU-bound: latency includes waiting for a core.
SATURATED_CPU = 0.95
# A worker timer late by this much (p99), and by a tenth of the measured p99, means the
# harness or the machine delayed requests enough to matter.
STALL_MS = 0.5
STALL_SHARE = 0.1
# Fewer wake-ups of the 5 ms timer than this (0.1 s of it) are too little evidence for any verdict.
MIN_TIMER_SAMPLES = 20


def harness_verdict(stats: IntervalStats, *, target_kind: str | None, workers: int) -> dict[str, Any]:
    """The `harness` block of summary.json (and of each ramp step): `ok`, `cpu_bound` or `stalled`, with a note."""
    hiccup = stats.hiccup.summary_ms()
    harness: dict[str, Any] = {
        "workers": workers,
        "worker_cpu_max": round(stats.worker_cpu, 3),
        "late_starts": stats.late_starts,
        "hiccup_ms": hiccup,
        "verdict": "ok",
    }
    if stats.hiccup.count < MIN_TIMER_SAMPLES:
        harness["verdict"] = "unknown"
        harness["note"] = (f"the run was too short to judge the harness ({stats.hiccup.count} timer samples, "
                           f"{MIN_TIMER_SAMPLES} needed)")
        return harness
    notes = []
    if stats.worker_cpu >= SATURATED_CPU:
        harness["verdict"] = "cpu_bound"
        if target_kind == "sqlite":
            notes.append("worker processes used whole cores: SQLite runs inside them, so the cores, not the "
                         "harness, bounded throughput; latency includes waiting for CPU")
        else:
            notes.append("worker processes used whole cores: the load generator was the bottleneck, "
                         "latency includes waiting for CPU; lower the load or add cores")
    latency_p99 = stats.latency.percentile_ms(99) or 0.0
    if hiccup["p99"] is not None and hiccup["p99"] >= max(STALL_MS, STALL_SHARE * latency_p99):
        harness["verdict"] = "cpu_bound" if harness["verdict"] == "cpu_bound" else "stalled"
        notes.append(f"the workers' own timer woke up to {hiccup['p99']:.1f} ms late (p99): latencies of that "
                     "order include the harness's or the machine's delay, not only the target's")
    stall_ms = stats.harness_stall_ms()
    if stall_ms is not None:
        harness["verdict"] = "cpu_bound" if harness["verdict"] == "cpu_bound" else "stalled"
        notes.append(f"the harness stalled for {stall_ms / 1000:.2f} s (stopped by Ctrl-Z or a VM pause, swapping, or "
                     "starved of CPU), longer than the latencies it measured: the slowest latencies are the "
                     "stall's, not the target's (intervals.jsonl marks them harness_stall_ms)")
    if notes:
        harness["note"] = "; ".join(notes)
    return harness
