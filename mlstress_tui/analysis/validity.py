"""Whether the harness vouches for a run's latencies, by one rule, in the words every artefact uses.

The rule (README, "What it measures"): a run's numbers are *measurement
suspect* when the load asked for was not held (`load_not_held`), when the
harness was stopped for a tick or more (`stopped`: Ctrl-Z, SIGSTOP, a VM
pause), or, for a target outside the worker processes, when a worker used a
whole core (`cpu_bound`) or its own timer woke late (`timer_lag`: the tool was
slow to look); also when the run was too short to judge (`unknown`). SQLite
runs inside the workers: the cores it takes and the timer lag its threads cause
are the system's cost, so for it `cpu_bound` and `timer_lag` are advice and
the numbers are vouched for. The acceptance panel, report.md, report.json,
junit.xml and the printed stage lines all take their words from `validity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlstress_tui.results.harness_verdict import CPU_BOUND, LOAD_NOT_HELD, OK, STOPPED, TIMER_LAG, UNKNOWN

# Targets that run inside the worker processes, whose CPU use is the system's cost rather than the harness's.
IN_WORKER_TARGETS = frozenset({"sqlite"})
ADVICE_IN_WORKERS = ("advice only: SQLite runs inside the worker processes, so the cores it takes and the timer lag "
                     "its threads cause are the system's cost, not a harness that fell behind")
VOUCHED = "vouched for"
SUSPECT = "measurement suspect"


@dataclass(frozen=True)
class Validity:
    """Whether the harness vouches for a run, the harness verdict it rests on, and one clause saying why."""

    vouched: bool
    kind: str  # ok | unknown | timer_lag | cpu_bound | stopped | load_not_held
    text: str

    @property
    def line(self) -> str:
        """`measurement suspect: stopped: …`, `vouched for: cpu_bound: advice only: …`: how every artefact says it."""
        return f"{VOUCHED if self.vouched else SUSPECT}: " + (f"{self.kind}: " if self.kind != OK else "") + self.text

    @property
    def suspect_reason(self) -> str | None:
        """What follows `measurement suspect: ` in a suspect run's criteria notes (so they read as `line`); None when vouched for."""
        return None if self.vouched else f"{self.kind}: {self.text}"

    def to_json(self) -> dict[str, Any]:
        return {"vouched": self.vouched, "kind": self.kind, "text": self.text, "line": self.line}


def validity(summary: Mapping[str, Any]) -> Validity:
    """The one rule applied to a summary.json document (schema mlstress.summary/1)."""
    harness = summary.get("harness") or {}
    verdict = harness.get("verdict") or UNKNOWN
    note = harness.get("note") or ""
    if verdict == LOAD_NOT_HELD:
        # The note ends with why the load was not held; what comes before it is about the cores or the timer.
        return Validity(False, LOAD_NOT_HELD, note.split("; ")[-1] or "the load applied fell below the load asked for")
    stop = _longest_stop(summary)
    if stop is not None:
        return Validity(False, STOPPED, f"the harness was stopped for {stop['stall_ms'] / 1000:.2f} s at "
                                        f"{stop['t']:.1f} s (Ctrl-Z, SIGSTOP or a VM pause): latencies then include "
                                        "the stop, not only the target's time")
    if verdict == STOPPED:
        return Validity(False, STOPPED, note)
    if verdict in (CPU_BOUND, TIMER_LAG):
        if (summary.get("target") or {}).get("kind") in IN_WORKER_TARGETS:
            return Validity(True, verdict, f"{ADVICE_IN_WORKERS} ({note})" if note else ADVICE_IN_WORKERS)
        return Validity(False, verdict, note)
    if verdict == OK:
        lag = (harness.get("hiccup_ms") or {}).get("p99")
        cpu = harness.get("worker_cpu_max")
        evidence = []
        if lag is not None:
            evidence.append(f"timer lag p99 {lag:.2f} ms")
        if cpu is not None:
            evidence.append(f"busiest worker {cpu:.0%} of a core")
        return Validity(True, OK, ", ".join(evidence) or "the harness kept up")
    return Validity(False, UNKNOWN, note or "no harness figures: the harness cannot vouch for it")


def _longest_stop(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The longest stop of the harness among the run's fault events, None when it never stood still a tick."""
    stops = [event for event in (summary.get("faults") or {}).get("events", [])
             if event.get("action") == "harness_stall" and event.get("stopped")]
    return max(stops, key=lambda event: event["stall_ms"], default=None)
