"""A synthetic twin: generation parameters from a production profile, and the fit of what was generated.

The twin keeps the profile's shape at any --scale: row counts scale, quantiles,
mixes, dates and missing-field rates do not. The fit table compares the
profile with a profile of the generated data (the same reader), each row with
its tolerance: row counts within 5% (scaled), events-per-user and spend
quantiles within 20% (or one event: counts are whole numbers), shares within
2 points, dates within a day or 1% of their span.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from mlstress_tui.errors import UsageError
from mlstress_tui.synth.fitted_counts import MAX_ROOM_SHARE
from mlstress_tui.synth.mixes import NULLABLE_EVENT_COLUMNS, NULLABLE_USER_COLUMNS, REFERENCE, Mix, Population
from mlstress_tui.synth.params import MAX_USERS, CountQuantiles, GenerateParams
from mlstress_tui.synth.production_profile import (
    COUNT_LEVELS,
    SPEND_LEVELS,
    USER_MIXES,
    SchemaMap,
    Source,
    level_key,
    read_profile,
)

ROW_TOLERANCE = 0.05
QUANTILE_TOLERANCE = 0.20
SHARE_TOLERANCE = 0.02
DATE_SPAN_TOLERANCE = 0.01
# Dates: within this many of the twin's own spacings (see _dates) when that is wider than 1% of the span.
DATE_SPACINGS = 3
# A twin's quantile is judged when at least this many of its rows lie beyond it (as a profile's is written exact).
MIN_TWIN_ROWS = 10
# Signups to the last event; longer is a placeholder date (9999-12-31), not a history.
MAX_SPAN_DAYS = 100 * 365


def twin_params(profile: dict, *, scale: float = 1.0, seed: int = 42, locale: str = "en_IN") -> GenerateParams:
    """Parameters that generate `profile`'s shape with round(users x scale) users."""
    if not 0 < scale <= 1000:
        raise UsageError(f"--scale must be above 0 and at most 1000 (got {scale:g}); 0.1 makes a twin a tenth the size")
    rows, per_user = profile["rows"], profile["events_per_user"]
    users = round(rows["users"] * scale)
    if not 1 <= users <= MAX_USERS:
        raise UsageError(f"--scale {scale:g} of {rows['users']:,} users is {users:,} users; the twin needs 1 to "
                         f"{MAX_USERS:,}: choose another --scale")
    zero_share = float(per_user.get("share_without_events", 0.0))
    knots = [(float(key[1:]) / 100, float(value)) for key, value in per_user["quantiles"].items()]
    if per_user.get("min_with_events"):
        # The smallest non-zero count sits just above the users without events.
        knots.append((min(0.999999, zero_share + 1e-9), float(per_user["min_with_events"])))
    return GenerateParams(
        users=users,
        mean_events=rows["events"] / rows["users"],
        max_events=max(1, int(per_user["max"])),
        seed=seed,
        locale=locale,
        population=population_from_profile(profile),
        count_quantiles=CountQuantiles(knots=tuple(sorted(knots)), zero_share=zero_share),
    )


def population_from_profile(profile: dict) -> Population:
    """Mixes, dates, spend and missing fields from the profile; what it lacks stays the reference's."""
    mixes = profile.get("mixes", {})
    dates = profile.get("dates", {})
    missing = profile.get("missing", {})
    purchases = profile.get("purchases", {})
    signup_first = _date(dates.get("signup_first"), REFERENCE.signup_first)
    signup_last = max(signup_first, _date(dates.get("signup_last"), REFERENCE.signup_last))
    events_first = _date(dates.get("events_first"), signup_first)
    # Every user needs a day to have events in, even one who signed up on the last day.
    last = max(_date(dates.get("events_last"), REFERENCE.events_end - timedelta(days=1)), signup_last, events_first)
    first = min(signup_first, events_first)
    if last >= date.max or (last - first).days > MAX_SPAN_DAYS:
        raise UsageError(f"the profile's dates run from {first} to {last}, more than {MAX_SPAN_DAYS // 365} years: "
                         "a placeholder date in the source? Edit [dates] in the profile to the real range")
    events_end = last + timedelta(days=1)
    return Population(
        segment=_mix(mixes.get("segment"), REFERENCE.segment),
        country=_mix(mixes.get("country"), REFERENCE.country),
        device_type=_mix(mixes.get("device_type"), REFERENCE.device_type),
        event_type=_mix(twin_event_types(profile), REFERENCE.event_type),
        purchase=REFERENCE.purchase,
        spend_knots=_spend_knots(purchases.get("spend"),
                                 round(purchases.get("share_of_events", 0.0) * profile["rows"]["events"])),
        user_nulls=tuple((name, float(missing[f"users.{name}"])) for name in NULLABLE_USER_COLUMNS
                         if missing.get(f"users.{name}")),
        event_nulls=tuple((name, float(missing[f"events.{name}"])) for name in NULLABLE_EVENT_COLUMNS
                          if missing.get(f"events.{name}")),
        signup_first=signup_first,
        signup_last=signup_last,
        events_first=events_first,
        events_end=events_end,
        exact_shares=True,
    )


def twin_event_types(profile: dict) -> dict[str, float] | None:
    """The event-type mix in the reference schema's words: the profiled purchase type is called 'purchase'.

    The twin is read by the reference feature query, which counts purchases as event_type = 'purchase'
    whatever production calls them; a production type that is already called 'purchase' but carries no spend
    becomes 'purchase (not spend)'.
    """
    shares = profile.get("mixes", {}).get("event_type")
    if not shares:
        return shares
    return {twin_event_type(profile, label): share for label, share in shares.items()}


def twin_event_type(profile: dict, label: str) -> str:
    """One profiled event type's name in the twin (see twin_event_types)."""
    mapped = profile.get("purchases", {}).get("event_type", REFERENCE.purchase)
    if label == mapped:
        return REFERENCE.purchase
    if label == REFERENCE.purchase:
        return f"{REFERENCE.purchase} (not spend)"
    return label


def _mix(shares: dict | None, default: Mix) -> Mix:
    if not shares:
        return default
    labels = tuple(str(label) for label in shares)
    return Mix(labels, tuple(float(shares[label]) for label in labels))


def _spend_knots(spend: dict | None, purchases: int) -> tuple[tuple[float, float], ...] | None:
    """(level, amount) knots; the smallest and largest amounts sit half a purchase in from either end."""
    if not spend or "min" not in spend or "max" not in spend:
        return None
    edge = 0.5 / max(purchases, 1000)
    knots = [(edge, spend["min"]), *((level / 100, spend[level_key(level)]) for level in SPEND_LEVELS
                                     if level_key(level) in spend), (1.0 - edge, spend["max"])]
    amounts = [max(0.01, float(amount)) for _, amount in knots]
    for at in range(1, len(amounts)):
        amounts[at] = max(amounts[at], amounts[at - 1])
    return tuple((level, amount) for (level, _), amount in zip(knots, amounts))


def _date(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        raise UsageError(f"the profile's date {text!r} is not YYYY-MM-DD; write the profile again") from None


@dataclass(frozen=True)
class FitRow:
    """One line of the fit table: what, the profile's value (scaled), the twin's, the tolerance and the verdict."""

    what: str
    profile: float | str
    twin: float | str | None
    tolerance: str
    ok: bool | None  # None: not judged (said why in `tolerance`)

    def as_dict(self) -> dict:
        return {"what": self.what, "profile": self.profile, "twin": self.twin, "tolerance": self.tolerance,
                "ok": self.ok}


def fit_rows(profile: dict, twin: dict, scale: float) -> list[FitRow]:
    """The profile against the twin's own profile (taken exact, with every category named), row by row.

    A figure the profile holds coarsened says so in its tolerance; a quantile that rests on less than one of the
    twin's users (p99.9 of 500 users is the heaviest user's neighbourhood) is shown, not judged.
    """
    coarsened = set(profile.get("coarsened", ()))

    def note(key: str, tolerance: str) -> str:
        return tolerance + (" (profile coarsened)" if key in coarsened else "")

    rows: list[FitRow] = []
    for name in ("users", "events"):
        wanted = profile["rows"][name] * scale
        got = twin["rows"][name]
        rows.append(FitRow(f"{name}", round(wanted), got, "±5%", _relative(got, wanted, ROW_TOLERANCE)))
    source, made = profile["events_per_user"], twin["events_per_user"]
    rows.append(_share("users without events", source.get("share_without_events"), made.get("share_without_events")))
    twin_users = twin["rows"]["users"]
    for level in COUNT_LEVELS:
        key = level_key(level)
        wanted, got = source["quantiles"].get(key), made["quantiles"].get(key)
        if wanted is None:
            continue
        ok = None if got is None else abs(got - wanted) <= max(1.0, QUANTILE_TOLERANCE * wanted)
        tolerance, ok = _resting(level, twin_users, "users", note(f"events_per_user.quantiles.{key}", "±20% or ±1"),
                                 ok)
        rows.append(FitRow(f"events/user {key}", wanted, got, tolerance, ok))
    rows.append(_heaviest(source["max"], made["max"], "events_per_user.max" in coarsened))
    for mix, shares in profile.get("mixes", {}).items():
        generated = twin.get("mixes", {}).get(mix, {})
        for label, share in shares.items():
            named = twin_event_type(profile, label) if mix == "event_type" else label
            what = f"{mix} {named}" + (f" (profile's {label!r})" if named != label else "")
            rows.append(_share(what, share, generated.get(named, 0.0)))
    source_purchases, made_purchases = profile.get("purchases", {}), twin.get("purchases", {})
    if "share_of_events" in source_purchases:
        rows.append(_share("purchases (share of events)", source_purchases["share_of_events"],
                           made_purchases.get("share_of_events", 0.0)))
    source_spend, made_spend = source_purchases.get("spend", {}), made_purchases.get("spend", {})
    twin_purchases = round(twin["rows"]["events"] * made_purchases.get("share_of_events", 0.0))
    for level in SPEND_LEVELS:
        key = level_key(level)
        if key in source_spend:
            got = made_spend.get(key)
            ok = None if got is None else abs(got - source_spend[key]) <= QUANTILE_TOLERANCE * source_spend[key]
            tolerance, ok = _resting(level, twin_purchases, "purchases", note(f"purchases.spend.{key}", "±20%"), ok)
            rows.append(FitRow(f"spend {key}", source_spend[key], got, tolerance, ok))
    never_null = []
    for column, share in profile.get("missing", {}).items():
        table, name = column.split(".", 1)
        generated = twin.get("missing", {}).get(column)
        if not share:
            never_null.append(generated or 0.0)
        elif name not in (NULLABLE_USER_COLUMNS if table == "users" else NULLABLE_EVENT_COLUMNS):
            rows.append(FitRow(f"missing {column}", share, generated, "not generated: the column is never NULL",
                               None))
        else:
            rows.append(_share(f"missing {column}", share, generated))
    if never_null:
        rows.append(_share(f"missing, the other {len(never_null)} columns", 0.0, max(never_null)))
    rows.extend(_dates(profile.get("dates", {}), twin.get("dates", {}), coarsened, twin["rows"]))
    return rows


def _resting(level: float, rows: int, noun: str, tolerance: str, ok: bool | None) -> tuple[str, bool | None]:
    """A tail quantile the twin holds on fewer than MIN_TWIN_ROWS rows beyond it is shown, not judged.

    The sample quantile of so few rows sits between them (p99.5 of 200 users is the second-heaviest
    user's neighbourhood), a measure of the twin's size rather than of its fit.
    """
    beyond = rows * min(level / 100, 1 - level / 100)
    if beyond >= MIN_TWIN_ROWS:
        return tolerance, ok
    return f"not judged: rests on fewer than {MIN_TWIN_ROWS} of the twin's {rows:,} {noun}", None


def _heaviest(wanted: int, got: int, coarsened: bool) -> FitRow:
    """Production's heaviest user: kept, or why not (fitted_counts.MAX_ROOM_SHARE)."""
    what = "events/user max"
    if got == wanted:
        return FitRow(what, wanted, got, "kept" + (" (profile coarsened)" if coarsened else ""), True)
    return FitRow(what, wanted, got, f"not kept: the other users would give up more than {MAX_ROOM_SHARE:.0%} "
                                     "of their events to make room", None)


def _relative(got: float, wanted: float, tolerance: float) -> bool:
    return abs(got - wanted) <= tolerance * max(wanted, 1.0)


def _share(what: str, wanted: float | None, got: float | None) -> FitRow:
    wanted = wanted or 0.0
    ok = None if got is None else abs(got - wanted) <= SHARE_TOLERANCE
    return FitRow(what, wanted, got, "±2 points", ok)


def _dates(source: dict, made: dict, coarsened: set[str], twin_rows: dict) -> list[FitRow]:
    """First and last days, each within 1% of the span or a few of the twin's own spacings, whichever is wider.

    A small twin's first signup is span / users after production's first, and its first event about
    span / sqrt(events) (early on, few users have signed up to have any).
    """
    if not source.get("signup_first") or not source.get("events_last"):
        return []
    span = (date.fromisoformat(source["events_last"]) - date.fromisoformat(source["signup_first"])).days
    spacing = {"signup": span / max(twin_rows["users"], 1), "events": span / math.sqrt(max(twin_rows["events"], 1))}
    rows = []
    for key in ("signup_first", "signup_last", "events_first", "events_last"):
        if key in source:
            allowed = max(1, round(DATE_SPAN_TOLERANCE * span), math.ceil(DATE_SPACINGS * spacing[key.split("_")[0]]))
            got = made.get(key)
            ok = None if got is None else abs((date.fromisoformat(got) - date.fromisoformat(source[key])).days) <= allowed
            tolerance = f"±{allowed} day{'s' * (allowed > 1)}" + (" (profile coarsened)" if f"dates.{key}" in coarsened
                                                                    else "")
            rows.append(FitRow(key.replace("_", " "), source[key], got, tolerance, ok))
    return rows


def twin_fit_check(profile: dict, scale: float, path: Path):
    """The after-load step of a twin's generation: profile what was made, compare, keep the table in mlstress_meta."""

    def check(source: Source, schema: SchemaMap) -> dict:
        # The twin is read exactly as it is: the privacy rules are production's, not a synthetic twin's.
        rows = fit_rows(profile, read_profile(source, schema, exact=True), scale)
        return {"twin": {
            "profile": Path(path).name,
            "profile_source": profile.get("source", "?"),
            "profile_taken_at": profile.get("taken_at", "?"),
            "scale": scale,
            "fit": [row.as_dict() for row in rows],
            "summary": fit_summary(rows),
            "within_tolerance": all(row.ok is not False for row in rows),
        }}

    return check


def fit_summary(rows: list[FitRow]) -> str:
    """'41 of 42 within tolerance (1 not judged)' or the misses named."""
    judged = [row for row in rows if row.ok is not None]
    missed = [row.what for row in judged if not row.ok]
    text = f"{len(judged) - len(missed)} of {len(judged)} within tolerance"
    if len(judged) < len(rows):
        text += f" ({len(rows) - len(judged)} not judged)"
    if missed:
        text += "; outside: " + ", ".join(missed)
    return text


def format_fit_table(rows: list[FitRow], width: int = 80) -> str:
    """The side-by-side table: what, profile, twin, tolerance, ok — fitting `width` columns."""
    what_width = max(len(row.what) for row in rows) if rows else 10
    what_width = min(what_width, max(16, width - 52))
    lines = [f"  {'':<{what_width}}  {'profile':>12}  {'twin':>12}  {'':<4} tolerance"]
    for row in rows:
        mark = {True: "ok", False: "MISS", None: "-"}[row.ok]
        lines.append(f"  {row.what[:what_width]:<{what_width}}  {_cell(row.profile, row.what):>12}  "
                     f"{_cell(row.twin, row.what):>12}  {mark:<4} {row.tolerance}")
    return "\n".join(lines)


def _cell(value: float | str | None, what: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if what.startswith(("users without", "purchases", "missing")) or what.split(" ")[0] in (*USER_MIXES, "event_type"):
        return f"{100 * value:.2f}%"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"

