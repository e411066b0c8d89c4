"""The reference population of design.md: categorical mixes, date ranges, item catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SEGMENTS = ("free", "standard", "premium")
SEGMENT_SHARES = (0.55, 0.35, 0.10)
COUNTRIES = ("IN", "US", "GB", "DE", "SG")
COUNTRY_SHARES = (0.40, 0.25, 0.15, 0.10, 0.10)
DEVICE_TYPES = ("mobile", "desktop", "tablet")
DEVICE_SHARES = (0.65, 0.28, 0.07)
EVENT_TYPES = ("view", "click", "purchase", "add_to_cart", "search")
EVENT_TYPE_SHARES = (0.45, 0.25, 0.10, 0.12, 0.08)
PURCHASE = EVENT_TYPES.index("purchase")

ITEM_COUNT = 50_000
# Zipf exponent of item popularity: with s = 1 the top 1% of the catalogue
# draws about 60% of events, the shape of real catalogues.
ITEM_ZIPF_EXPONENT = 1.0

SESSION_MEAN_SECONDS = 180.0
# Purchase amounts are log-normal: median about 20, a long tail of big baskets.
AMOUNT_LOG_MEAN = 3.0
AMOUNT_LOG_SIGMA = 1.1

# Time is counted in days and seconds from EPOCH, midnight UTC.
EPOCH = date(2023, 1, 1)
SIGNUP_FIRST = date(2023, 1, 1)
SIGNUP_LAST = date(2026, 1, 1)
# Events fall before this instant (midnight UTC): the feature query's default
# reference date, so every event counts there.
EVENTS_END = date(2026, 3, 1)

SECONDS_PER_DAY = 86_400
SIGNUP_FIRST_DAY = (SIGNUP_FIRST - EPOCH).days
SIGNUP_LAST_DAY = (SIGNUP_LAST - EPOCH).days
END_DAY = (EVENTS_END - EPOCH).days
END_SECOND = END_DAY * SECONDS_PER_DAY

# Optional profile fields left NULL on purpose (edge cases), and how often.
USER_NULL_SHARES = {"email": 0.01, "city": 0.03, "device_type": 0.015}
# Columns a twin may leave NULL as production does; the others carry a row's identity, type and time.
NULLABLE_USER_COLUMNS = ("segment", "country", "device_type", "name", "email", "city")
NULLABLE_EVENT_COLUMNS = ("item_id", "session_duration_seconds", "amount")


@dataclass(frozen=True)
class Mix:
    """A categorical column's labels and the share of rows each gets."""

    labels: tuple[str, ...]
    shares: tuple[float, ...]


@dataclass(frozen=True)
class Population:
    """Everything about the rows' shape except events per user: mixes, dates, spend, missing fields.

    The reference population is design.md's; a profile of production gives a twin's (synth/twin.py).
    """

    segment: Mix = Mix(SEGMENTS, SEGMENT_SHARES)
    country: Mix = Mix(COUNTRIES, COUNTRY_SHARES)
    device_type: Mix = Mix(DEVICE_TYPES, DEVICE_SHARES)
    event_type: Mix = Mix(EVENT_TYPES, EVENT_TYPE_SHARES)
    # The event type whose events carry spend; None when no event type does.
    purchase: str | None = "purchase"
    # Spend quantile function as (u, amount) knots, interpolated in log(amount); None: the reference log-normal.
    spend_knots: tuple[tuple[float, float], ...] | None = None
    # Share of NULLs per column, applied when edge cases are on.
    user_nulls: tuple[tuple[str, float], ...] = tuple(USER_NULL_SHARES.items())
    event_nulls: tuple[tuple[str, float], ...] = ()
    signup_first: date = SIGNUP_FIRST
    signup_last: date = SIGNUP_LAST
    # Events fall between max(signup, events_first) and events_end (exclusive, midnight UTC).
    events_first: date = SIGNUP_FIRST
    events_end: date = EVENTS_END
    # Deal each mix (and each column's NULLs) exactly rather than drawing each row independently.
    exact_shares: bool = False

    @property
    def epoch(self) -> date:
        """Day 0 of the day and second counts: the earliest date any row carries."""
        return min(self.signup_first, self.events_first)

    def day(self, when: date) -> int:
        return (when - self.epoch).days

    @property
    def end_day(self) -> int:
        return self.day(self.events_end)


REFERENCE = Population()
