"""Whether the harness can vouch for the latencies it measured: its own CPU use, its timer's lag, a stop.

The verdicts keep four things apart that a reader must not confuse: `timer_lag`
(the workers' own timer woke late: the tool was slow to look, by fractions of a
millisecond or a short stall), `cpu_bound` (a worker used a whole core),
`stopped` (the harness stood still for a tick or more: Ctrl-Z, SIGSTOP, a VM
pause) and, set by the summary, `load_not_held`. `ok` when none applies,
`unknown` when the run was too short to tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlstress_tui.results.interval_stats import STOP_MS, IntervalStats

OK = "ok"
UNKNOWN = "unknown"
TIMER_LAG = "timer_lag"
CPU_BOUND = "cpu_bound"
STOPPED = "stopped"
LOAD_NOT_HELD = "load_not_held"
# When several apply, the verdict is the gravest: a stop distorts more than a busy core, a busy core more than lag.
_GRAVITY = (OK, TIMER_LAG, CPU_BOUND, STOPPED)

# A worker process busier than this was CPU-bound: latency includes waiting for a core.
SATURATED_CPU = 0.95
# A run (or level) is cpu_bound when this share of its ticks were: one busy second (a model loading on its first
# call) does not condemn a minute of measurement.
CPU_BOUND_SHARE = 0.25
# A worker timer late by this much (p99), and by a tenth of the measured p99, means the
# harness or the machine delayed requests enough to matter.
LAG_MS = 0.5
LAG_SHARE = 0.1
# Fewer wake-ups of the 5 ms timer than this (0.1 s of it) are too little evidence for any verdict.
MIN_TIMER_SAMPLES = 20


def harness_verdict(stats: IntervalStats, *, target_kind: str | None, workers: int,
                    busy: Sequence[tuple[float, float]] | None = None) -> dict[str, Any]:
    """The `harness` block of summary.json (and of each ramp step): `ok`, `timer_lag`, `cpu_bound` or `stopped`, with a note.

    `busy`: (tick start s, busiest worker's share of a core) per tick, to judge CPU over the run rather than its
    worst moment; without it the busiest tick decides.
    """
    hiccup = stats.hiccup.summary_ms()
    harness: dict[str, Any] = {
        "workers": workers,
        "worker_cpu_max": round(stats.worker_cpu, 3),
        "late_starts": stats.late_starts,
        "hiccup_ms": hiccup,
        "verdict": OK,
    }
    if stats.hiccup.count < MIN_TIMER_SAMPLES:
        harness["verdict"] = UNKNOWN
        harness["note"] = (f"the run was too short to judge the harness ({stats.hiccup.count} timer samples, "
                           f"{MIN_TIMER_SAMPLES} needed)")
        return harness
    found: list[str] = []
    notes = []
    busy_ticks = [t for t, cpu in busy or () if cpu >= SATURATED_CPU]
    cpu_share = len(busy_ticks) / len(busy) if busy else (1.0 if stats.worker_cpu >= SATURATED_CPU else 0.0)
    if busy:
        harness["cpu_bound_share"] = round(cpu_share, 3)
    if cpu_share >= CPU_BOUND_SHARE:
        found.append(CPU_BOUND)
        when = f" ({cpu_share:.0%} of the run, from {busy_ticks[0]:.1f} s)" if busy_ticks else ""
        if target_kind == "sqlite":
            notes.append(f"worker processes used whole cores{when}: SQLite runs inside them, so the cores, not the "
                         "harness, bounded throughput; latency includes waiting for CPU")
        else:
            notes.append(f"worker processes used whole cores{when}: the load generator was the bottleneck, "
                         "latency includes waiting for CPU; lower the load or add cores")
    # Against the service time, not the latency: in an overloaded open loop latency is mostly queueing, and a
    # lagging timer hides behind it.
    service_p99 = stats.service.percentile_ms(99) or 0.0
    if hiccup["p99"] is not None and hiccup["p99"] >= max(LAG_MS, LAG_SHARE * service_p99):
        found.append(TIMER_LAG)
        notes.append(f"the workers' own timer woke up to {hiccup['p99']:.1f} ms late (p99): latencies of that "
                     "order include the harness's or the machine's delay, not only the target's")
    stall_ms = stats.harness_stall_ms()
    if stall_ms is not None and stall_ms >= STOP_MS:
        found.append(STOPPED)
        notes.append(f"the harness was stopped for {stall_ms / 1000:.2f} s (Ctrl-Z, SIGSTOP or a VM pause): the "
                     "slowest latencies are the stop's, not the target's (intervals.jsonl marks them "
                     "harness_stall_ms)")
    elif stall_ms is not None:
        found.append(TIMER_LAG)
        notes.append(f"the workers' own timer woke up once {stall_ms:.0f} ms late (starved of CPU, or swapping), "
                     "longer than the latencies it measured: those requests include the delay "
                     "(intervals.jsonl marks them harness_stall_ms)")
    if found:
        harness["verdict"] = max(found, key=_GRAVITY.index)
        harness["note"] = "; ".join(notes)
    return harness
