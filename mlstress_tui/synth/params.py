"""What a user asks the generator for, and the checks that turn bad asks into one-line errors."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlstress_tui.errors import UsageError
from mlstress_tui.synth.event_counts import TAIL_INDEX
from mlstress_tui.synth.mixes import REFERENCE, Population

# Without --max-events the cap sits 1000x above the mean (45,000 events at the
# default mean of 45): far past where the power law's natural maximum lands for
# 100,000 users (about 20,000 events), so it trims only the rare outlier of very
# large populations and never creates a pile-up.
DEFAULT_CAP_FACTOR = 1000
# A cap closer to the mean than this leaves no room for a heavy tail that still
# averages to the mean.
MIN_CAP_FACTOR = 3
# The id formats ('USR00000001', 'EVT000000001') have fixed widths.
MAX_USERS = 99_999_999
MAX_EVENTS = 999_999_999
# Near 1 the tail holds most of the events; above 5 it is hardly a tail.
TAIL_INDEX_RANGE = (1.1, 5.0)


@dataclass(frozen=True)
class CountQuantiles:
    """Events per user as a profile gives them: (level, events) knots and the share of users without events."""

    knots: tuple[tuple[float, float], ...]
    zero_share: float


@dataclass(frozen=True)
class GenerateParams:
    """Generation parameters; the same parameters and seed give the same database."""

    users: int = 100_000
    mean_events: float = 45.0
    max_events: int | None = None
    seed: int = 42
    locale: str = "en_IN"
    edge_cases: bool = True
    tail_index: float = TAIL_INDEX
    # A twin's shape (synth/twin.py); the defaults are design.md's reference population.
    population: Population = REFERENCE
    count_quantiles: CountQuantiles | None = None

    @property
    def event_cap(self) -> int:
        """The most events one user may have: --max-events, else 1000x the mean."""
        if self.max_events is not None:
            return self.max_events
        return min(MAX_EVENTS, math.ceil(DEFAULT_CAP_FACTOR * self.mean_events))

    @property
    def total_events(self) -> int:
        """Events in the whole database: users x mean, rounded."""
        return round(self.users * self.mean_events)

    def validate(self) -> None:
        """Raise UsageError naming the first bad parameter and what to do about it."""
        if not _is_int(self.users) or self.users < 1:
            raise UsageError(f"--users must be a whole number of at least 1 (got {self.users!r})")
        if self.users > MAX_USERS:
            raise UsageError(f"--users {self.users:,} is more than the {MAX_USERS:,} the user id format holds")
        if self.count_quantiles is None:
            self._validate_power_law()
        if self.total_events > MAX_EVENTS:
            raise UsageError(
                f"--users x --mean-events is {self.total_events:,} events, more than the {MAX_EVENTS:,} "
                "the event id format holds; lower one of them"
            )
        if not _is_int(self.seed) or self.seed < 0:
            raise UsageError(f"--seed must be a whole number of 0 or more (got {self.seed!r})")
        from faker.config import AVAILABLE_LOCALES

        if self.locale not in AVAILABLE_LOCALES:
            raise UsageError(f"--locale {self.locale!r} is not a Faker locale; try en_IN, en_US or de_DE")

    def _validate_power_law(self) -> None:
        if (
            isinstance(self.mean_events, bool)
            or not isinstance(self.mean_events, (int, float))
            or not math.isfinite(self.mean_events)
            or self.mean_events < 1
        ):
            raise UsageError(f"--mean-events must be a number of at least 1 (got {self.mean_events!r})")
        low, high = TAIL_INDEX_RANGE
        if not isinstance(self.tail_index, (int, float)) or not low <= self.tail_index <= high:
            raise UsageError(f"--tail-index must be between {low:g} (heaviest) and {high:g} (lightest tail); "
                             f"got {self.tail_index!r}")
        if self.max_events is not None:
            if not _is_int(self.max_events) or self.max_events < self.mean_events:
                raise UsageError(
                    f"--max-events {self.max_events!r} is below --mean-events {self.mean_events:g}; "
                    "raise it or leave it out"
                )
            if self.max_events < MIN_CAP_FACTOR * self.mean_events:
                raise UsageError(
                    f"--max-events {self.max_events} must be at least {MIN_CAP_FACTOR * self.mean_events:g} "
                    f"({MIN_CAP_FACTOR}x --mean-events) to leave room for the heavy tail; raise it or leave it out"
                )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
