"""Hostile input, family by family: each case is one line and exit 2 before anything starts, or a clean run."""

from __future__ import annotations

from pathlib import Path

import pytest

from http_fixtures import TinyService
from mlstress_tui.cli import main

PIECES = ("Tr0ub4dor", "3xYzAbC")


def one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def everything_written(*roots: Path) -> str:
    files = [path for root in roots for path in root.rglob("*") if path.is_file()]
    return "".join(path.read_text(errors="replace") for path in files)


# Every reserved character, malformed percent-escapes and the right way to write one: (between the pieces,
# whether a URL can be read one way only, whether libpq reads the DSN one way only).
PASSWORDS = [("/", False, False), ("?", False, True), ("#", False, True), ("@", False, False), (":", True, True),
             ("%", False, False), ("+", True, True), ("=", True, True), ("%ZZ", False, False), ("%g1", False, False),
             ("%2F", True, True), ("/?#@:%+=", False, False)]


@pytest.fixture(scope="module")
def service():
    with TinyService() as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize("middle, url_readable, dsn_readable", PASSWORDS)
@pytest.mark.parametrize("where", ["url", "dsn"])
def test_a_password_with_any_reserved_character_reaches_no_output(where, middle, url_readable, dsn_readable, service,
                                                                 small_db, tmp_path, capsys, monkeypatch):
    from http_fixtures import free_port
    from pushgateway_fixtures import Scraper

    password = middle.join(PIECES)
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "run"
    if where == "url":
        host = service.base.removeprefix("http://")
        argv = ["--url", f"http://robot:{password}@{host}/features/{{user_id}}",
                "-H", f"Authorization: Bearer {password}", "--users-db", str(small_db)]
    else:
        argv = ["--dsn", f"postgresql://reader:{password}@127.0.0.1:1/features"]
    port = free_port()
    # /metrics is scraped throughout, and lingers at the end until a scrape has taken the final figures.
    with Scraper(f"http://127.0.0.1:{port}/metrics") as scraper:
        code = main(["run", "--headless", *argv, "--concurrency", "1", "--workers", "1", "--requests", "20",
                     "--out", str(out_dir), "--metrics-port", str(port), "--metrics-linger", "10"])
    printed = capsys.readouterr()
    shown = printed.out + printed.err + everything_written(tmp_path) + "".join(scraper.bodies)
    for secret in (password, *PIECES):
        assert secret not in shown
    if where == "url" and url_readable:
        assert code == 0, printed.err
        assert (out_dir / "summary.json").is_file() and (out_dir / "intervals.jsonl").is_file()
        from prometheus_client.parser import text_string_to_metric_families

        final = {family.name: family for family in text_string_to_metric_families(scraper.bodies[-1])}
        served = [(sample.labels, sample.value) for sample in final["mlstress_requests"].samples]
        assert served == [({"run": "run", "target": "http", "preset": "default", "label": "", "outcome": "ok",
                            "kind": ""}, 20.0)]
    elif where == "dsn" and dsn_readable:
        one_line_error(code, printed.err, "cannot connect to postgresql reader@127.0.0.1:1/features")
    else:  # refused before anything starts, saying how to write it
        one_line_error(code, printed.err, "percent-encode")


@pytest.mark.parametrize("bad", [-1, "lots\x1b[2J", 1.5])
def test_a_users_database_with_a_bad_event_count_is_one_line(bad, small_db, tmp_path, capsys):
    import shutil
    import sqlite3

    db = tmp_path / "bad.sqlite"
    shutil.copy(small_db, db)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE mlstress_user_stats SET event_count = ? WHERE rowid = 7", (bad,))
        user = connection.execute("SELECT user_id FROM mlstress_user_stats WHERE rowid = 7").fetchone()[0]
    code = main(["run", "--headless", "--db", str(db), "--requests", "5", "--out", str(tmp_path / "run")])
    line = one_line_error(code, capsys.readouterr().err, "event_count", user, "not a whole number of 0 or more")
    assert "\x1b" not in line


@pytest.mark.slow
@pytest.mark.parametrize("body, headers, sent_as", [
    ('{"user": "{user_id}"}', [], "application/json"),
    (' [ "{user_id}" ]', [], "application/json"),
    ('{"user": "{user_id}"}', ["Content-Type: application/vnd.features+json"], "application/vnd.features+json"),
    ('{"user": "{user_id}"}', ["content-type:text/plain"], "text/plain"),
    ("user={user_id}", [], "application/x-www-form-urlencoded"),
])
def test_a_json_body_is_sent_as_json_unless_a_header_says_otherwise(body, headers, sent_as, small_db, tmp_path,
                                                                   capsys):
    header_args = [arg for header in headers for arg in ("-H", header)]
    with TinyService() as service:
        code = main(["run", "--headless", "--url", f"{service.base}/features", "--method", "POST", "--body", body,
                     *header_args, "--users-db", str(small_db), "--concurrency", "1", "--workers", "1",
                     "--requests", "5", "--out", str(tmp_path / "run")])
        seen = list(service.requests)
    assert code == 0, capsys.readouterr().err
    assert len(seen) >= 6  # the pre-check and the load
    for request in seen:
        types = [value for name, value in request["headers"].items() if name.lower() == "content-type"]
        assert types == [sent_as]
        assert request["body"].decode().startswith(body.partition("{user_id}")[0])
        assert b"{user_id}" not in request["body"] and b"USR" in request["body"]


@pytest.mark.slow
@pytest.mark.parametrize("first_delay_s, timeout, code, fragment", [
    (1.5, "0.4", 2, "answered nothing within 0.4 s (something is listening)"),
    pytest.param(1.0, "4", 0, None, marks=pytest.mark.slow),
    (None, "2", 2, "nothing listening at http://127.0.0.1:"),
])
def test_the_pre_check_waits_the_request_timeout_and_says_what_it_found(first_delay_s, timeout, code, fragment,
                                                                        small_db, tmp_path, capsys):
    from http_fixtures import free_port

    argv = ["run", "--headless", "--users-db", str(small_db), "--timeout", timeout, "--concurrency", "1",
            "--workers", "1", "--requests", "5", "--out", str(tmp_path / "run")]
    if first_delay_s is None:
        got = main([*argv, "--url", f"http://127.0.0.1:{free_port()}/features/{{user_id}}"])
    else:
        with TinyService(first_delay_s=first_delay_s) as service:
            got = main([*argv, "--url", f"{service.base}/features/{{user_id}}"])
    err = capsys.readouterr().err
    if code == 2:
        one_line_error(got, err, fragment)
    else:
        assert got == 0, err


NUMBERS = [
    (["run", "--duration", "nan"], "argument --duration: must be a positive number of seconds, at most 604,800"),
    (["run", "--duration", "inf"], "argument --duration: must be a positive number of seconds"),
    (["run", "--duration", "1e300"], "argument --duration: must be a positive number of seconds"),
    (["run", "--timeout", "nan"], "argument --timeout: must be a positive number of seconds, at most 3,600"),
    (["run", "--startup-timeout", "nan"], "argument --startup-timeout: must be a positive number of seconds"),
    (["run", "--rate", "inf"], "argument --rate: must be a positive number of requests/s, at most 1,000,000"),
    (["run", "--concurrency", "5000"], "argument --concurrency: must be a whole number of virtual users"),
    (["run", "--requests", "10000000000000"], "argument --requests: must be a whole number of requests"),
    (["run", "--pool-size", "0"], "argument --pool-size: must be a whole number of connection slots, at least 1"),
    (["run", "--workers", "1000"], "argument --workers: must be a whole number of worker processes, at least 1 and "
                                   "at most 256 (each takes about 45 MB"),
    (["run", "--seed", "-1"], "argument --seed: must be a whole number, at least 0"),
    (["ramp", "--max", "nan"], "argument --max: must be a positive number"),
    (["ramp", "--start", "nan"], "argument --start: must be a positive number"),
    (["ramp", "--step", "nan"], "argument --step: must be a positive number"),
    (["ramp", "--factor", "nan"], "argument --factor: must be a number, above 1 and at most 100"),
    (["ramp", "--factor", "1"], "argument --factor: must be a number, above 1"),
    (["ramp", "--start", "2000"], "--start must be a whole number of virtual users, at least 1 and at most 1,024"),
    (["ramp", "--step", "2.5"], "--step must be a whole number of virtual users"),
    (["ramp", "--step-duration", "inf"], "argument --step-duration: must be a positive number of seconds"),
    (["ramp", "--sla-p95-ms", "nan"], "argument --sla-p95-ms: must be a positive number of milliseconds"),
    (["ramp", "--max-error-rate", "2"], "argument --max-error-rate: must be a share, at least 0 and at most 1"),
    (["outliers", "--threshold-ms", "nan"], "argument --threshold-ms: must be a positive number of milliseconds"),
    (["outliers", "--requests-per-stratum", "0"], "argument --requests-per-stratum: must be a whole number"),
    (["accept", "--workers", "0"], "argument --workers: must be a whole number of worker processes"),
    (["serve", "--port", "99999"], "argument --port: must be a TCP port number, at least 1 and at most 65,535"),
    (["serve", "--extra-latency-ms", "nan"], "argument --extra-latency-ms: must be a number of milliseconds"),
    (["serve", "--fail-rate", "inf"], "argument --fail-rate: must be a share"),
    (["batch", "--chunk-size", "1000000000000"], "argument --chunk-size: must be a whole number of rows"),
    (["selfcheck", "--seconds", "nan"], "argument --seconds: must be a positive number of seconds"),
]
PRESETS = [
    ("run", "[load]\nduration_s = 1e300\n", "[load] duration_s must be a positive number of seconds, at most 604,800"),
    ("run", "[load]\ntimeout_s = 1e300\n", "[load] timeout_s must be a positive number of seconds, at most 3,600"),
    ("run", "[load]\nrate = inf\n", "[load] rate must be a number"),
    ("run", "[load]\npool_size = 100000\n", "[load] pool_size must be a whole number of connection slots"),
    ("run", "[sla]\np95_ms = 1e300\n", "[sla] p95_ms must be a positive number of milliseconds"),
    ("accept", '[[stages]]\nname = "s"\nkind = "load"\nconcurrency = 2\nduration_s = 1e300\n'
               '[[criteria]]\nstage = "s"\nmetric = "p95_ms"\nop = "<"\nvalue = 100\n',
     "stage 's': duration_s must be a positive number of seconds, at most 604,800"),
    ("accept", '[[stages]]\nname = "r"\nkind = "ramp"\nstep = "x1e300"\nstep_duration_s = 1\n'
               '[[criteria]]\nstage = "r"\nmetric = "safe_concurrency"\nop = ">="\nvalue = 1\n',
     "stage 'r': step must be \"xF\" with F above 1 and at most 100"),
    ("accept", '[[stages]]\nname = "r"\nkind = "ramp"\nmax = 100000\n'
               '[[criteria]]\nstage = "r"\nmetric = "safe_concurrency"\nop = ">="\nvalue = 1\n',
     "stage 'r': max must be a whole number of virtual users, at least 1 and at most 1,024"),
]


@pytest.mark.parametrize("argv, fragment", NUMBERS)
def test_every_number_on_the_command_line_is_finite_and_in_its_range(argv, fragment, small_db, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = {"serve": ["--db", str(small_db)], "batch": ["--db", str(small_db)], "selfcheck": []}.get(
        argv[0], ["--target", "sleep:1ms", "--users-db", str(small_db)])
    out = ["--report-dir" if argv[0] == "accept" else "--out", str(tmp_path / "run")]
    code = main([*argv, *where, *(out if argv[0] != "serve" else [])])
    one_line_error(code, capsys.readouterr().err, fragment)
    assert list(tmp_path.iterdir()) == []  # refused before anything started


@pytest.mark.parametrize("command, toml, fragment", PRESETS)
def test_every_number_in_a_preset_is_finite_and_in_its_range(command, toml, fragment, tmp_path, capsys):
    preset = tmp_path / "absurd.toml"
    preset.write_text(toml, encoding="utf-8")
    out = "--report-dir" if command == "accept" else "--out"
    code = main([command, "--target", "sleep:1ms", "--preset", str(preset), out, str(tmp_path / "run")])
    line = one_line_error(code, capsys.readouterr().err, fragment)
    assert "absurd.toml" in line
    assert not (tmp_path / "run").exists()


def test_serve_on_a_port_in_use_says_so_before_serving(small_db, capsys):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(["serve", "--db", str(small_db), "--port", str(port)])
    printed = capsys.readouterr()
    one_line_error(code, printed.err, f"cannot listen on 127.0.0.1:{port} (address already in use)")
    assert printed.out == ""


BAD_THEMES = {
    "oops.toml": ('name = "oops"\nprimary = "#336699"\nvariables = "oops"\n', "variables = 'oops' must be a table"),
    "nc.toml": ('name = "nc"\nprimary = "#336699"\n[variables]\nfooter-key-foreground = "notacolour"\n',
                "variables.footer-key-foreground = 'notacolour' is not a colour"),
    "yes.toml": ('name = "yes"\nprimary = "#336699"\ndark = "yes"\n', "dark = 'yes' must be true or false"),
    "spread.toml": ('name = "spread"\nprimary = "#336699"\nluminosity_spread = inf\n',
                    "luminosity_spread = inf must be a number from 0 to 1"),
    "inject.toml": ('name = "inject"\nprimary = "#336699"\n[variables]\nborder = "red; } Screen { display: none"\n',
                    "variables.border = 'red; } Screen { display: none' holds ; { }"),
    "under.toml": ('name = "under"\nprimary = "#336699"\n[variables]\nfooter-background = "$primary 50%"\n',
                   "variables.footer-background = '$primary 50%' is not a background colour"),
    "latin1.toml": ("name = \"caf\xe9\"\nprimary = \"#336699\"\n".encode("latin-1"), "is not UTF-8 text"),
}
GOOD_THEME = ('name = "good"\nprimary = "#336699"\ndark = false\n[variables]\nblock-cursor-text-style = "bold reverse"\n'
              'footer-key-background = "red 50%"\ntext = "auto 87%"\nlink-style-hover = "bold not underline"\n')


@pytest.fixture
def bad_themes(tmp_path, monkeypatch) -> Path:
    """A themes directory holding one usable theme and every kind of broken one, in place of the shipped themes."""
    from mlstress_tui.tui import themes as themes_module

    directory = tmp_path / "themes"
    directory.mkdir()
    (directory / "good.toml").write_text(GOOD_THEME, encoding="utf-8")
    for name, (text, _) in BAD_THEMES.items():
        path = directory / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(themes_module, "data_dir", lambda what: directory)
    return directory


def test_a_bad_theme_is_skipped_with_one_line_naming_the_file_and_key(bad_themes) -> None:
    from mlstress_tui.tui.themes import load_themes

    loaded = load_themes()
    assert [theme.name for theme in loaded.themes] == ["good"]
    assert len(loaded.problems) == len(BAD_THEMES)
    for name, (_, fragment) in BAD_THEMES.items():
        [problem] = [problem for problem in loaded.problems if problem.startswith(f"theme {name}")]
        assert fragment in problem and "\n" not in problem


@pytest.mark.parametrize("theme", ["nc", "yes", "oops"])
def test_asking_for_a_skipped_theme_is_one_line(theme, bad_themes, tmp_path, capsys) -> None:
    code = main(["run", "--target", "sleep:1ms", "--theme", theme, "--out", str(tmp_path / "run")])
    one_line_error(code, capsys.readouterr().err, f"theme {theme}.toml: ", BAD_THEMES[f"{theme}.toml"][1], "good")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_show_with_bad_themes_beside_it_still_writes_the_panel(bad_themes, small_db, tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", "--headless", "--target", "sleep:1ms", "--users-db", str(small_db), "--workers", "1",
                 "--requests", "20", "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["show", str(run_dir), "--svg", "--theme", "good"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert (run_dir / "acceptance.svg").stat().st_size > 1000
    assert len(err) == len(BAD_THEMES) and all(line.endswith("; skipped") for line in err), err


@pytest.mark.slow
async def test_the_dashboard_with_bad_themes_beside_it_runs_to_its_end(bad_themes, tmp_path) -> None:
    from mlstress_tui.tui.app import DashboardApp
    from tui_fakes import HISTORY, FakeEngine, fake_session

    engine = FakeEngine(tmp_path / "run", script=HISTORY, concurrency=16)
    app = DashboardApp(fake_session(engine), theme="nc")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == "good"
        for _ in range(3):  # `t` goes round the themes that loaded; none of the broken ones is among them
            await pilot.press("t")
            await pilot.pause()
        # Said on the dashboard's message line (and kept for the run log), not in a toast over the charts.
        messages = [message for _, message, _ in app.said]
        assert any("nc.toml" in message and "footer-key-foreground" in message for message in messages)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--target", "sleep:1ms", "--preset", "{file}"], "preset '{file}' is not UTF-8 text (byte 11 is 0xe9)"),
    (["generate", "--profile", "{file}", "--out", "{dir}/twin.sqlite"], "--profile {file} is not UTF-8 text"),
    (["profile", "--db", "{db}", "--mapping", "{file}", "--out", "{dir}/p.toml"], "--mapping {file} is not UTF-8"),
    (["run", "--db", "{db}", "--query", "{file}"], "query file '{file}' is not UTF-8 text"),
])
def test_a_file_that_is_not_utf8_is_one_line(argv, fragment, small_db, tmp_path, capsys):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    fill = {"file": str(latin1), "dir": str(tmp_path), "db": str(small_db)}
    code = main([arg.format(**fill) for arg in argv] + (["--out", str(tmp_path / "run")] if argv[0] == "run" else []))
    one_line_error(code, capsys.readouterr().err, fragment.format(**fill), "UTF-8")


@pytest.mark.parametrize("sql, reason", [
    ("VACUUM INTO 'copy_' || :user_id", "it is VACUUM, not a SELECT"),
    ("ATTACH 'copy_' || :user_id AS other", "it is ATTACH, not a SELECT"),
    ("DELETE FROM users WHERE user_id = :user_id", "it is DELETE, not a SELECT"),
    ("INSERT INTO users (user_id) VALUES (:user_id)", "it is INSERT, not a SELECT"),
    ("UPDATE users SET city = 'x' WHERE user_id = :user_id", "it is UPDATE, not a SELECT"),
    ("WITH doomed AS (SELECT 1) DELETE FROM users WHERE user_id = :user_id", "it is DELETE, not a SELECT"),
    ("SELECT * FROM users WHERE user_id = :user_id; DELETE FROM users", "it holds more than one statement"),
    ("PRAGMA user_version = 7 -- :user_id", "it is PRAGMA, not a SELECT"),
    ("BEGIN IMMEDIATE -- :user_id", "it is TRANSACTION, not a SELECT"),
    ("CREATE TEMP TABLE t AS SELECT :user_id AS user_id", "it is CREATE TEMP TABLE, not a SELECT"),
    ("SELECT load_extension(:user_id)", "it calls load_extension()"),
])
def test_a_query_that_is_not_one_read_only_select_is_refused_before_the_run(sql, reason, small_db, tmp_path, capsys,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    query = tmp_path / "q.sql"
    query.write_text(sql, encoding="utf-8")
    before = small_db.stat().st_mtime_ns
    code = main(["run", "--headless", "--db", str(small_db), "--query", str(query), "--requests", "5",
                 "--out", str(tmp_path / "run")])
    one_line_error(code, capsys.readouterr().err, f"--query is not a single read-only SELECT ({reason}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["q.sql"]  # no copy_*, no run directory
    assert small_db.stat().st_mtime_ns == before


@pytest.mark.parametrize("sql", [
    "SELECT * FROM users WHERE user_id = :user_id",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
    "SELECT DISTINCT u.segment, count(*) FROM users AS u, n WHERE u.user_id = :user_id GROUP BY 1",
    "SELECT u.user_id, (SELECT count(*) FROM pragma_table_info('users')) AS columns FROM users AS u "
    "WHERE u.user_id = :user_id",
    "  -- a comment first\nSELECT user_id FROM users WHERE user_id = :user_id;  ",
])
def test_read_only_selects_are_not_mistaken_for_writes(sql, small_db):
    from mlstress_tui.load.targets.sqlite import open_read_only
    from mlstress_tui.pipeline.feature_query import check_database

    connection = open_read_only(small_db)
    try:
        check_database(connection, "small.sqlite", sql)
    finally:
        connection.close()


@pytest.mark.parametrize("command, address, fragment", [
    ("run", "127.0.0.1:{port}", "--ray: nothing listening at 127.0.0.1:{port} (connection refused)"),
    ("run", "ray://127.0.0.1:{port}", "--ray: nothing listening at 127.0.0.1:{port} (connection refused)"),
    ("ramp", "127.0.0.1:{port}", "--ray: nothing listening at 127.0.0.1:{port} (connection refused)"),
    ("outliers", "127.0.0.1:{port}", "--ray: nothing listening at 127.0.0.1:{port} (connection refused)"),
    ("accept", "ray://127.0.0.1:{port}", "--ray: nothing listening at 127.0.0.1:{port} (connection refused)"),
    ("run", "auto", "nothing listening at 127.0.0.1:{port} (--ray auto: from RAY_ADDRESS)"),
    ("run", "http://127.0.0.1:{port}", "--ray 'http://127.0.0.1:{port}' is not a Ray address: use auto, local"),
    ("run", "127.0.0.1", "--ray '127.0.0.1' is not a Ray address"),
    ("run", "no-such-host.invalid:6379", "--ray: the host of no-such-host.invalid:6379 is not known here"),
])
def test_a_ray_address_where_nothing_answers_is_one_line_at_once(command, address, fragment, small_db, tmp_path,
                                                                 capsys, monkeypatch):
    import time

    from http_fixtures import free_port

    port = free_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    out = ["--report-dir" if command == "accept" else "--out", str(tmp_path / "run")]
    started = time.monotonic()
    code = main([command, "--headless", "--ray", address.format(port=port), "--target", "sleep:1ms",
                 "--users-db", str(small_db), *out])
    one_line_error(code, capsys.readouterr().err, fragment.format(port=port))
    assert time.monotonic() - started < 15  # Ray's own wait here is minutes
    assert not (tmp_path / "run").exists()


def test_ray_reaches_the_sessions_of_outliers_and_of_every_accept_stage(small_db, tmp_path, capsys, monkeypatch):
    from mlstress_tui.cli import build_parser
    from mlstress_tui.commands import accept, options
    from mlstress_tui.errors import UsageError
    from mlstress_tui.presets import load_preset

    seen: list[tuple[str | None, str]] = []

    def engine(target, load, **_):
        seen.append((load.ray, load.on_node_loss))
        raise UsageError("stopped before any worker starts")

    monkeypatch.setattr(options, "check_ray_address", lambda address: None)
    monkeypatch.setattr(options, "LoadEngine", engine)
    ray = ["--ray", "10.0.0.7:6390", "--on-node-loss", "stop"]
    assert main(["outliers", "--headless", *ray, "--target", "sleep:1ms", "--users-db", str(small_db),
                 "--out", str(tmp_path / "outliers")]) == 2
    args = build_parser().parse_args(["accept", *ray, "--target", "sleep:1ms", "--users-db", str(small_db)])
    stages = load_preset(args.preset).stages
    assert len(stages) >= 4
    for stage in stages:
        with pytest.raises(UsageError):
            accept._stage_session(accept._stage_args(args, stage, tmp_path / "accept"), stage)
    assert seen == [("10.0.0.7:6390", "stop")] * (1 + len(stages))


@pytest.mark.slow
@pytest.mark.parametrize("how, kind", [
    ("int", "5"), ("tuple", "('a', 1)"), ("escapes", "kind\\x1b[31m"),
    ("kind_raises", "undescribable_error"), ("str_raises", "undescribable_error"),
])
def test_a_target_that_misreports_itself_is_counted_by_a_printable_kind(how, kind, small_db, tmp_path, capsys,
                                                                        monkeypatch):
    import json

    monkeypatch.setenv("MLSTRESS_HOSTILE", how)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    run_dir = tmp_path / "run"
    code = main(["run", "--headless", "--target", "python:pipeline_fixtures:misreports", "--users-db", str(small_db),
                 "--workers", "1", "--concurrency", "1", "--requests", "20", "--timeout", "2", "--out", str(run_dir)])
    printed = capsys.readouterr()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == 0, printed.err
    assert summary["requests"] == 20 and summary["errors_by_kind"] == {kind: 20}  # no pool_timeout, no dead user
    shown = printed.out + printed.err + everything_written(run_dir)
    assert "\x1b" not in shown and "\x07" not in shown and "died" not in printed.err
