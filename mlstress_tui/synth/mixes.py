"""The reference population of design.md: categorical mixes, date ranges, item catalogue."""

from __future__ import annotations

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
