"""The synthetic twin: a profile of aggregates only, a twin generated from it, and the fit between them."""

from __future__ import annotations

import sqlite3
import tomllib
from datetime import date

import numpy as np
import pytest

from mlstress_tui.cli import main
from mlstress_tui.synth import GenerateParams, generate_sqlite, read_meta
from mlstress_tui.synth.event_counts import draw_event_counts
from mlstress_tui.synth.fitted_counts import draw_fitted_counts
from mlstress_tui.synth.production_profile import (
    COUNT_LEVELS,
    SchemaMap,
    SQLiteSource,
    level_key,
    read_profile,
)
from mlstress_tui.synth.twin import fit_rows, twin_fit_check, twin_params
from postgres_fixtures import pg_dsn, pg_small  # noqa: F401  (fixtures)

LEVELS = [level / 100 for level in COUNT_LEVELS]


def profile_of(path, schema: SchemaMap | None = None, exact: bool = False) -> dict:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return read_profile(SQLiteSource(connection, path.name), schema, exact=exact)


@pytest.mark.parametrize("tail_index", [1.3, 3.5])
@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_fitted_counts_follow_the_quantiles_not_a_fixed_power_law(tail_index, scale):
    source = draw_event_counts(np.random.default_rng(1), 100_000, 20.0, 20_000, True, tail_index).counts
    knots = [(0.03 + 1e-9, 1.0), *zip(LEVELS, np.percentile(source, COUNT_LEVELS))]
    users = round(100_000 * scale)
    twin = draw_fitted_counts(np.random.default_rng(2), users, knots, 0.03, round(users * 20.0), int(source.max()))
    wanted, got = np.percentile(source, COUNT_LEVELS), np.percentile(twin.counts, COUNT_LEVELS)
    assert np.all(np.abs(got - wanted) <= np.maximum(1.0, 0.2 * wanted)), list(zip(wanted, got))
    assert abs(twin.counts.sum() - users * 20.0) <= 0.05 * users * 20.0
    # Production's heaviest user is kept when the twin's events leave room for it (always at full scale).
    assert twin.counts.max() <= source.max()
    if scale == 1.0:
        assert twin.counts.max() == source.max()
    assert np.count_nonzero(twin.counts == 0) == round(0.03 * users)


@pytest.fixture(scope="module")
def heavy_source(tmp_path_factory):
    """20,000 users, mean 20, a heavier tail than the default, and its profile."""
    path = tmp_path_factory.mktemp("twin") / "source.sqlite"
    generate_sqlite(GenerateParams(users=20_000, mean_events=20, tail_index=1.4, seed=3), path)
    return path, profile_of(path)


def test_profile_holds_the_shape(heavy_source):
    path, profile = heavy_source
    assert profile["schema"] == "mlstress.profile/1"
    assert profile["rows"] == {"users": 20_000, "events": 400_000}
    per_user = profile["events_per_user"]
    assert per_user["mean"] == 20.0 and per_user["share_without_events"] == pytest.approx(0.03)
    assert per_user["quantiles"]["p99.9"] > 40 * per_user["quantiles"]["p50"]  # the heavier tail
    assert set(profile["mixes"]) == {"segment", "country", "device_type", "event_type"}
    assert profile["mixes"]["segment"]["premium"] == pytest.approx(0.10, abs=0.01)
    assert profile["purchases"]["share_of_events"] == pytest.approx(0.10, abs=0.01)
    assert profile["missing"]["users.city"] == pytest.approx(0.03, abs=0.005)
    assert profile["dates"]["signup_first"] == "2023-01-01"


def test_no_value_from_the_sources_text_columns_appears_in_the_profile(small_db, tmp_path):
    import tomli_w

    text = tomli_w.dumps(profile_of(small_db))
    with sqlite3.connect(small_db) as connection:
        values = {value for (value,) in connection.execute(
            "SELECT user_id FROM users UNION SELECT name FROM users UNION SELECT email FROM users "
            "UNION SELECT city FROM users UNION SELECT item_id FROM events UNION SELECT event_id FROM events "
            "UNION SELECT event_timestamp FROM events") if value}
    assert len(values) > 10_000
    leaked = sorted(value for value in values if value in text)
    assert leaked == []


def test_a_rare_category_is_not_named(tmp_path, small_db):
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(small_db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
        target.execute("UPDATE users SET segment = 'vip-' || user_id WHERE rowid <= 5")
    profile = profile_of(copy)
    assert not any(label.startswith("vip-") for label in profile["mixes"]["segment"])
    assert profile["mixes"]["segment"]["other"] == pytest.approx(5 / 2000)


def test_round_trip_stays_within_tolerance_at_full_and_half_scale(heavy_source, tmp_path):
    path, profile = heavy_source
    for scale in (1.0, 0.5):
        out = tmp_path / f"twin-{scale}.sqlite"
        result = generate_sqlite(twin_params(profile, scale=scale), out,
                                 after_load=twin_fit_check(profile, scale, path))
        twin = result.after_load["twin"]
        missed = [row for row in twin["fit"] if row["ok"] is False]
        assert missed == [], missed
        assert twin["within_tolerance"]
        # The same table is kept beside the data, and an independent profile of the twin agrees with it.
        with sqlite3.connect(out) as connection:
            assert read_meta(connection)["twin"]["fit"] == twin["fit"]
        again = fit_rows(profile, profile_of(out), scale)
        assert all(row.ok is not False for row in again)
        assert result.users == round(20_000 * scale)


def test_a_twin_keeps_the_profiles_dates_categories_and_missing_fields(heavy_source, tmp_path):
    _, profile = heavy_source
    profile = {**profile,
               "dates": {"signup_first": "2019-06-01", "signup_last": "2021-06-01",
                         "events_first": "2021-01-01", "events_last": "2021-12-31"},
               "mixes": {**profile["mixes"], "segment": {"gold": 0.2, "basic": 0.8}},
               "missing": {**profile["missing"], "events.item_id": 0.05, "events.amount": 0.5}}
    out = tmp_path / "shifted.sqlite"
    generate_sqlite(twin_params(profile, scale=0.25), out)
    twin = profile_of(out)
    assert twin["dates"]["signup_first"] >= "2019-06-01" and twin["dates"]["signup_last"] <= "2021-06-01"
    assert twin["dates"]["events_first"] >= "2021-01-01" and twin["dates"]["events_last"] == "2021-12-31"
    assert set(twin["mixes"]["segment"]) == {"gold", "basic"}
    assert twin["missing"]["events.item_id"] == pytest.approx(0.05, abs=0.01)
    assert twin["missing"]["events.amount"] == pytest.approx(0.5, abs=0.02)
    with sqlite3.connect(out) as connection:
        # NULL amounts fall on events without spend; purchases keep theirs.
        lost = connection.execute("SELECT COUNT(*) FROM events WHERE event_type = 'purchase' AND amount IS NULL")
        assert lost.fetchone()[0] == 0
        before_signup = connection.execute(
            "SELECT COUNT(*) FROM events e JOIN users u USING (user_id) WHERE e.event_timestamp < u.signup_date")
        assert before_signup.fetchone()[0] == 0
    assert date.fromisoformat(twin["dates"]["events_first"]) <= date(2021, 1, 2)


def test_a_mapping_reads_a_database_named_differently(small_db, tmp_path):
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as connection:
        connection.execute("ATTACH DATABASE ? AS source", (str(small_db),))
        connection.execute("CREATE TABLE customers AS SELECT user_id AS id, signup_date AS created, segment AS plan, "
                           "country, device_type, name, email, city FROM source.users")
        connection.execute("CREATE TABLE activity AS SELECT event_id, user_id AS customer, event_type AS kind, "
                           "event_timestamp AS at, item_id, session_duration_seconds, amount FROM source.events")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[users]\ntable = "customers"\nuser_id = "id"\nsignup_date = "created"\nsegment = "plan"\n'
                       '[events]\ntable = "activity"\nuser_id = "customer"\nevent_type = "kind"\n'
                       'event_timestamp = "at"\n')
    mapped = profile_of(foreign, SchemaMap.from_toml(mapping))
    reference = profile_of(small_db)
    for key in ("rows", "events_per_user", "mixes", "dates", "missing", "purchases"):
        assert mapped[key] == reference[key], key


def test_profile_and_generate_commands(heavy_source, tmp_path, capsys):
    path, _ = heavy_source
    profile = tmp_path / "profile.toml"
    assert main(["profile", "--db", str(path), "--out", str(profile)]) == 0
    assert "aggregates only" in capsys.readouterr().out
    assert tomllib.loads(profile.read_text())["rows"]["users"] == 20_000
    assert main(["profile", "--db", str(path), "--out", str(profile)]) == 2
    assert "pass --force" in capsys.readouterr().err
    out = tmp_path / "twin.sqlite"
    assert main(["generate", "--profile", str(profile), "--scale", "0.1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "profile vs twin" in printed and "events/user p99.9" in printed
    assert "within tolerance" in printed.splitlines()[-1]
    with sqlite3.connect(out) as connection:
        assert connection.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 2_000


@pytest.mark.parametrize("argv, words", [
    (["generate", "--profile", "{profile}", "--users", "10"], "--users cannot be given with it"),
    (["generate", "--scale", "0.5"], "give --profile FILE too"),
    (["generate", "--profile", "{missing}"], "cannot read --profile"),
    (["generate", "--profile", "{not_profile}"], "is not a profile"),
    (["profile", "--db", "{missing}"], "does not exist"),
    (["profile", "--db", "{small}", "--mapping", "{bad_mapping}"], "is not a column of the reference schema"),
    (["profile", "--db", "{small}", "--mapping", "{wrong_table}"], "has no table 'nowhere'"),
])
def test_bad_input_is_one_line_and_exit_2(argv, words, small_db, tmp_path, capsys):
    files = {"profile": tmp_path / "p.toml", "missing": tmp_path / "missing.toml",
             "not_profile": tmp_path / "preset.toml", "small": small_db, "bad_mapping": tmp_path / "bad.toml",
             "wrong_table": tmp_path / "wrong.toml"}
    files["profile"].write_text('schema = "mlstress.profile/1"\n')
    files["not_profile"].write_text('name = "smoke"\n')
    files["bad_mapping"].write_text('[users]\nshoe_size = "x"\n')
    files["wrong_table"].write_text('[events]\ntable = "nowhere"\n')
    argv = [part.format(**files) for part in argv] + ["--out", str(tmp_path / "out.any")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.any").exists()


def test_twin_on_postgres(pg_small, small_db, tmp_path, capsys):
    """Profile a PostgreSQL database, and generate a twin into one (its own schema), fit table in mlstress_meta."""
    import psycopg

    profile_path = tmp_path / "pg.toml"
    assert main(["profile", "--dsn", pg_small, "--out", str(profile_path)]) == 0
    pg_profile = tomllib.loads(profile_path.read_text())
    assert pg_profile["rows"] == {"users": 2000, "events": 40_000}
    assert pg_profile["events_per_user"]["quantiles"][level_key(50)] > 0
    # The same rows give the same profile, whether the quantiles come from numpy or from percentile_cont.
    same_seed = profile_of(small_db)
    for key in ("events_per_user", "mixes", "dates", "missing"):
        assert pg_profile[key] == same_seed[key], key
    for key, value in same_seed["purchases"]["spend"].items():
        assert pg_profile["purchases"]["spend"][key] == pytest.approx(value, rel=1e-6), key
    with psycopg.connect(pg_small, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS twin_test CASCADE")
        connection.execute("CREATE SCHEMA twin_test")
    twin_dsn = pg_small + ("&" if "?" in pg_small else "?") + "options=-csearch_path%3Dtwin_test"
    capsys.readouterr()
    assert main(["generate", "--profile", str(profile_path), "--dsn", twin_dsn, "--scale", "0.5"]) == 0
    assert "within tolerance" in capsys.readouterr().out
    with psycopg.connect(twin_dsn) as connection:
        assert connection.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1000
        fit = connection.execute("SELECT value FROM mlstress_meta WHERE key = 'twin'").fetchone()[0]
    assert '"fit"' in fit


def test_a_small_twin_deals_its_mixes_exactly():
    from mlstress_tui.synth.categories import draw_category

    shares = (0.6493, 0.2781, 0.0726)
    picks = draw_category(np.random.default_rng(5), shares, 2_000, exact=True)
    counts = np.bincount(picks, minlength=3)
    assert counts.sum() == 2_000
    assert np.all(np.abs(counts - np.array(shares) * 2_000) < 1.0)
    assert not np.all(np.diff(picks) >= 0)  # dealt in random order, not in blocks


def test_a_total_no_user_can_hold_does_not_hang():
    """All users at the cap (max 1 event) and more events than users: the twin settles what it can and ends."""
    twin = draw_fitted_counts(np.random.default_rng(1), 1_000, [(0.5 + 1e-9, 1.0), (0.9, 1.0)], 0.5, 505, 1)
    assert twin.counts.sum() == 500 and twin.counts.max() == 1


def test_text_in_the_amount_column_is_not_spend(tmp_path, capsys):
    source = tmp_path / "text_amounts.sqlite"
    with sqlite3.connect(source) as connection:
        connection.execute("CREATE TABLE users(user_id TEXT)")
        connection.execute("CREATE TABLE events(user_id TEXT, event_type TEXT, amount)")
        connection.executemany("INSERT INTO users VALUES (?)", [(f"u{i}",) for i in range(20)])
        connection.executemany("INSERT INTO events VALUES (?, 'purchase', ?)",
                               [(f"u{i}", 10.0 + i if i % 2 else "n/a") for i in range(20)])
    profile = profile_of(source, exact=True)
    assert profile["purchases"]["spend"]["min"] == 11.0 and profile["purchases"]["share_of_events"] == 1.0


def test_a_placeholder_date_in_a_profile_is_one_line(heavy_source, tmp_path, capsys):
    import tomli_w

    _, profile = heavy_source
    broken = tmp_path / "placeholder.toml"
    broken.write_text(tomli_w.dumps({**profile, "dates": {**profile["dates"], "events_last": "9999-12-31"}}))
    assert main(["generate", "--profile", str(broken), "--out", str(tmp_path / "t.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "placeholder date" in err and len(err.strip().splitlines()) == 1
