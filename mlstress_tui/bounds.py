"""The ranges every number a user gives must fall in (flags, preset keys, stage values), stated once.

Every number is checked against one of these before anything starts: finite,
and in the range stated in the one line that refuses it. Plain data that
imports nothing of ours, so the preset reader, the stages and the command
line share one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The most any control may ask for: past it, threads and memory, not the target, give out.
MAX_CONCURRENCY = 1024
MAX_RATE = 1_000_000.0
# A worker process's resident memory, measured: 41 MB driving sleep:1ms, 52 MB driving the SQLite target.
WORKER_MB = 45
MAX_WORKERS = 256
WEEK_S = 7 * 24 * 3600.0
HOUR_S = 3600.0


@dataclass(frozen=True)
class Bound:
    """A closed range (open at `low` when `above`), of whole numbers or not, in words for the line that refuses a value."""

    low: float
    high: float
    whole: bool = False
    above: bool = False  # `low` itself is out (a positive duration)
    noun: str = ""  # "seconds", "users": what the number counts
    note: str = ""  # why the high end is where it is
    lead: str = ""  # what the number is, when "a number of <noun>" does not say it ("a share")

    def __str__(self) -> str:
        positive = self.above and self.low == 0
        number = ("a positive " if positive else "a ") + ("whole number" if self.whole else "number")
        lead = self.lead or number + (f" of {self.noun}" if self.noun else "")
        span = (f"at most {_figure(self.high)}" if positive else
                f"above {_figure(self.low)} and at most {_figure(self.high)}" if self.above else
                f"at least {_figure(self.low)} and at most {_figure(self.high)}")
        note = f" ({self.note})" if self.note else ""
        return f"{lead}, {span}{note}"

    def holds(self, value: object) -> bool:
        """Whether `value` is a number of the right kind inside the range (a bool is not a number)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def parse(self, text: str) -> int | float:
        """The number `text` says, or ValueError with the line that says why not."""
        try:
            value: int | float = int(text) if self.whole else float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {'a whole number' if self.whole else 'a number'}: give {self}") from None
        if not self.holds(value):
            raise ValueError(f"must be {self}, got {text}")
        return value


def _figure(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.0f}" if value.is_integer() else f"{value:g}"


# Keyed as the load's own fields are (LoadSpec, a preset's [load]); each flag and key names its own.
BOUNDS = {
    "concurrency": Bound(1, MAX_CONCURRENCY, whole=True, noun="virtual users"),
    "rate": Bound(0, MAX_RATE, above=True, noun="requests/s"),
    "pool_size": Bound(1, MAX_CONCURRENCY, whole=True, noun="connection slots"),
    "duration_s": Bound(0, WEEK_S, above=True, noun="seconds", note="a week"),
    "requests": Bound(1, 10**12, whole=True, noun="requests"),
    "requests_per_group": Bound(1, 10**9, whole=True, noun="requests"),
    "timeout_s": Bound(0, HOUR_S, above=True, noun="seconds", note="an hour"),
    "startup_timeout_s": Bound(0, HOUR_S, above=True, noun="seconds", note="an hour"),
    "workers": Bound(1, MAX_WORKERS, whole=True, noun="worker processes",
                     note=f"each takes about {WORKER_MB} MB: {MAX_WORKERS} is about {MAX_WORKERS * WORKER_MB / 1000:.0f} GB"),
    "seed": Bound(0, 2**63 - 1, whole=True),
    "latency_ms": Bound(0, HOUR_S * 1000, above=True, noun="milliseconds", note="an hour"),
    "share": Bound(0, 1, lead="a share"),
    "factor": Bound(1, 100, above=True),
    "port": Bound(1, 65535, whole=True, lead="a TCP port number"),
    "linger_s": Bound(0, HOUR_S, noun="seconds", note="an hour"),
}
