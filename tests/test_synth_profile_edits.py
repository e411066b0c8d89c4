"""Hand-edited profiles: each wrong edit is one line naming the key and what it must be, exit 2, nothing written."""

from __future__ import annotations

import copy
import math

import pytest
import tomli_w

from mlstress_tui.cli import main
from mlstress_tui.synth.production_profile import SQLiteSource, read_profile


@pytest.fixture(scope="module")
def base_profile(small_db) -> dict:
    import sqlite3

    with sqlite3.connect(f"file:{small_db}?mode=ro", uri=True) as connection:
        return read_profile(SQLiteSource(connection, small_db.name))


def edit(path: str, value=None, *, delete: bool = False):
    """An edit of one key ('events_per_user.quantiles.p50'), or its removal."""
    def apply(profile: dict) -> None:
        *parents, last = path.split("|") if "|" in path else path.split(".")
        node = profile
        for part in parents:
            node = node[part]
        if delete:
            del node[last]
        else:
            node[last] = value
    return apply


def rename(path: str, new: str):
    def apply(profile: dict) -> None:
        *parents, last = path.split(".")
        node = profile
        for part in parents:
            node = node[part]
        node[new] = node.pop(last)
    return apply


# (edit, words the one line must hold): what issue 25 found crashing or accepted silently, and more.
EDITS = {
    "quantile key pabc": (rename("events_per_user.quantiles.p50", "pabc"), "'events_per_user.quantiles.pabc' is not a quantile key"),
    "quantile level 150": (rename("events_per_user.quantiles.p50", "p150"), "'events_per_user.quantiles.p150' is not a quantile key"),
    "quantile level 0": (rename("events_per_user.quantiles.p1", "p0"), "events_per_user.quantiles.p0 is not a quantile key: the level must be above 0"),
    "share as text": (edit("events_per_user.share_without_events", "a lot"), "events_per_user.share_without_events must be a number from 0 to 1"),
    "share above one": (edit("events_per_user.share_without_events", 1.5), "events_per_user.share_without_events must be a number from 0 to 1 (got 1.5)"),
    "min as text": (edit("events_per_user.min_with_events", "1"), "events_per_user.min_with_events must be a whole number"),
    "max negative": (edit("events_per_user.max", -10), "events_per_user.max must be a whole number of at least 0 (got -10)"),
    "max below p99.9": (edit("events_per_user.max", 1), "events_per_user.max must be at least the highest quantile"),
    "nan quantile": (edit("events_per_user.quantiles.p50", math.nan), "events_per_user.quantiles.p50 must be a number"),
    "inf mean": (edit("events_per_user.mean", math.inf), "events_per_user.mean must be a number"),
    "quantiles falling": (edit("events_per_user.quantiles.p90", 0.5), "quantiles rise with their level"),
    "no quantiles": (edit("events_per_user.quantiles", {}), "events_per_user.quantiles must be a table of quantiles"),
    "quantiles missing": (edit("events_per_user.quantiles", delete=True), "events_per_user.quantiles is missing"),
    "events_per_user as text": (edit("events_per_user", "many"), "events_per_user must be a table with mean"),
    "mix as a string": (edit("mixes.segment", "free"), "mixes.segment must be a table of shares"),
    "mix with a text value": (edit("mixes.segment.free", "most"), "mixes.segment.free must be a number from 0 to 1"),
    "mix negative": (edit("mixes.segment.free", -0.5), "mixes.segment.free must be a number from 0 to 1 (got -0.5)"),
    "mix all zero": (edit("mixes.country", {"IN": 0.0, "US": 0.0}), "mixes.country must give at least one value a share above 0"),
    "mix empty": (edit("mixes.country", {}), "mixes.country must be a table of shares"),
    "unknown mix": (edit("mixes.shoe_size", {"42": 1.0}), "'mixes.shoe_size' is not one of segment"),
    "mixes as a string": (edit("mixes", "none"), "mixes must be a table of mixes"),
    "purchases as a string": (edit("purchases", "some"), "purchases must be a table with event_type"),
    "purchase share 2.0": (edit("purchases.share_of_events", 2.0), "purchases.share_of_events must be a number from 0 to 1 (got 2.0)"),
    "purchase type empty": (edit("purchases.event_type", ""), "purchases.event_type must be text in quotes"),
    "spend min above max": (edit("purchases.spend.min", 1e6), "purchases.spend.min (1e+06) must not be above purchases.spend.max"),
    "spend text": (edit("purchases.spend.p50", "twenty"), "purchases.spend.p50 must be a number"),
    "spend falling": (edit("purchases.spend.p99", 0.5), "purchases.spend.p99 (0.5) must not be below"),
    "spend unknown key": (edit("purchases.spend.median", 3.0), "'purchases.spend.median' is not min, mean, max or a quantile key"),
    "dates as a string": (edit("dates", "2024"), "dates must be a table of dates"),
    "date as an integer": (edit("dates.signup_first", 20230101), "dates.signup_first must be a date in quotes, YYYY-MM-DD (got 20230101)"),
    "date that does not exist": (edit("dates.signup_first", "2023-02-30"), "dates.signup_first must be a real date"),
    "dates in the wrong order": (edit("dates.events_first", "2027-01-01"), "dates.events_first (2027-01-01) must not be after dates.events_last"),
    "unknown date": (edit("dates.birthday", "2023-01-01"), "unknown key 'dates.birthday'"),
    "missing as a string": (edit("missing", "none"), "missing must be a table of shares"),
    "NULL share negative": (edit("missing|users.city", -0.1), "missing.users.city must be a number from 0 to 1 (got -0.1)"),
    "NULL share as text": (edit("missing|users.city", "3%"), "missing.users.city must be a number from 0 to 1"),
    "key without a dot": (edit("missing|city", 0.1), "'missing.city' is not a column such as"),
    "row counts as text": (edit("rows.users", "2000"), "rows.users must be a whole number of at least 1 (got '2000')"),
    "no users": (edit("rows.users", 0), "rows.users must be a whole number of at least 1 (got 0)"),
    "negative events": (edit("rows.events", -5), "rows.events must be a whole number of at least 0"),
    "rows missing": (edit("rows", delete=True), "rows is missing"),
    "unknown top-level key": (edit("purchses", {}), "unknown key 'purchses'"),
    "extremes bogus": (edit("extremes", "fuzzy"), "extremes must be \"exact\" or \"coarsened\""),
    "coarsened as a string": (edit("coarsened", "all"), "coarsened must be a list of keys in quotes"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", EDITS)
def test_a_hand_edited_profile_is_one_line_naming_the_key(name, base_profile, tmp_path, capsys):
    change, words = EDITS[name]
    profile = copy.deepcopy(base_profile)
    change(profile)
    path = tmp_path / "edited.toml"
    path.write_text(tomli_w.dumps(profile))
    out = tmp_path / "twin.sqlite"
    assert main(["generate", "--profile", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert words in err, err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["edited.toml"]


def test_the_unedited_profile_passes(base_profile, tmp_path):
    path = tmp_path / "profile.toml"
    path.write_text(tomli_w.dumps(base_profile))
    assert main(["generate", "--profile", str(path), "--scale", "0.1", "--out", str(tmp_path / "twin.sqlite")]) == 0
