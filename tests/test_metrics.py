"""/metrics and the Pushgateway: the session's own figures as Prometheus reads them, and a gate's verdict pushed."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from http_fixtures import free_port
from mlstress_tui.cli import main
from mlstress_tui.report.pushgateway import ACCEPT_JOB, PushError, push_verdict
from mlstress_tui.results.histogram import LatencyHistogram, bucket_index, bucket_value_ns
from mlstress_tui.results.kinds import CLOSED
from mlstress_tui.session import RampPlan
from mlstress_tui.session.live_window import sla_state
from mlstress_tui.session.metrics_exporter import EDGES_S, HistogramView, MetricsEndpoint
from pushgateway_fixtures import Scraper, pushgateway, scrape  # noqa: F401 (a fixture)
from tui_fakes import HISTORY, FakeEngine, fake_session

FAMILIES = {
    "mlstress_requests": "counter",
    "mlstress_requests_without_outcome": "counter",
    "mlstress_latency_seconds": "histogram",
    "mlstress_service_seconds": "histogram",
    "mlstress_pool_wait_seconds": "histogram",
    "mlstress_users_running": "gauge",
    "mlstress_stuck_users": "gauge",
    "mlstress_harness_lag_seconds": "gauge",
    "mlstress_ramp_step": "gauge",
    "mlstress_sla_state": "gauge",
    "mlstress_sla_p95_seconds": "gauge",
    "mlstress_latency_last_second_seconds": "gauge",
}
LEVEL = {"closed": "mlstress_commanded_users", "open": "mlstress_offered_requests_per_second"}
HISTOGRAMS = ("mlstress_latency_seconds", "mlstress_service_seconds", "mlstress_pool_wait_seconds")


def parsed(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def counts(family) -> dict[tuple[str, str], float]:
    """mlstress_requests_total by (outcome, kind)."""
    return {(sample.labels["outcome"], sample.labels["kind"]): sample.value for sample in family.samples
            if sample.name == "mlstress_requests_total"}


def buckets(family) -> list[tuple[float, float]]:
    found = [(float(sample.labels["le"]), sample.value) for sample in family.samples
             if sample.name.endswith("_bucket")]
    assert found
    return found


def only(family) -> float:
    values = [sample.value for sample in family.samples]
    assert len(values) == 1, family.samples
    return values[0]


def served(session, run: str = "r1") -> dict:
    """/metrics of `session` through a real endpoint on a free port, parsed."""
    endpoint = MetricsEndpoint("127.0.0.1", 0)
    try:
        endpoint.watch(session, run=run)
        return parsed(scrape(endpoint.url))
    finally:
        endpoint.close()


def served_families(session) -> list:
    return list(served(session).values())


# -- the figures -------------------------------------------------------------------------

def test_the_runs_buckets_fold_onto_the_edges_each_value_at_or_below_its_edge():
    values_s = [4e-5, 2.5e-3, 2.5e-3, 4e-3, 0.9, 200.0]  # none within 1% of an edge; 200 s is past the last
    histogram = LatencyHistogram()
    histogram.record_many([int(value * 1e9) for value in values_s])
    view = HistogramView.of(histogram)
    shown = view.buckets()
    assert [edge for edge, _ in shown] == [f"{edge:g}" for edge in EDGES_S] + ["+Inf"]
    assert [count for _, count in shown[:-1]] == [sum(value <= edge for value in values_s) for edge in EDGES_S]
    assert shown[-1][1] == view.count == 6
    assert view.sum_s == pytest.approx(sum(values_s), rel=1e-6)


def test_a_value_on_an_edge_goes_where_its_reported_value_does():
    histogram = LatencyHistogram()
    histogram.record_many([2_000_000, 3_000_000])  # on the edges 2 ms and 3 ms
    shown = dict(HistogramView.of(histogram).buckets())
    for edge, value_ns in (("0.002", 2_000_000), ("0.003", 3_000_000)):
        # The bucket's geometric midpoint, within 0.5% of the value, above or below it.
        reported_ns = bucket_value_ns(int(bucket_index(np.array([value_ns]))[0]))
        below = 1 if edge == "0.002" else 2
        assert shown[edge] == (below if reported_ns <= value_ns else below - 1)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_every_family_parses_and_says_what_the_session_says(mode, tmp_path):
    engine = FakeEngine(tmp_path, script=HISTORY if mode == "closed" else None, mode=mode,
                        rate=500.0 if mode == "open" else None)
    if mode == "open":
        engine._pending = [engine._tick(mode="open", concurrency=0, rate=500.0, level_id=0) for _ in range(8)]
    session = fake_session(engine)
    session.label, session.preset = "build 7", "smoke"
    session.pump()
    families = served(session)

    assert set(families) == {*FAMILIES, LEVEL[mode]}
    for name, kind in {**FAMILIES, LEVEL[mode]: "gauge"}.items():
        assert families[name].type == kind, name
        assert families[name].samples
        for sample in families[name].samples:
            assert {key: sample.labels[key] for key in ("run", "target", "preset", "label")} == \
                {"run": "r1", "target": "sqlite", "preset": "smoke", "label": "build 7"}
    total = session.totals.total
    requests = counts(families["mlstress_requests"])
    assert requests.pop(("ok", "")) == total.ok
    assert requests == {("error", kind): count for kind, count in total.errors_by_kind.items()}
    assert total.requests > 0 and (total.errors > 0 or mode == "open")  # the closed run's history has errors
    # The books' other columns, as summary.json has them: one place, the snapshot's figures.
    figures = session.snapshot.figures
    unanswered = {sample.labels["why"]: sample.value for sample in families["mlstress_requests_without_outcome"].samples
                  if sample.name == "mlstress_requests_without_outcome_total"}
    assert unanswered == {"unfinished": figures.unfinished, "unsent": figures.unsent, "lost": figures.lost}
    for name in HISTOGRAMS:
        shown = buckets(families[name])
        assert len(shown) >= 5
        assert [count for _, count in shown] == sorted(count for _, count in shown)
        assert shown[-1] == (float("inf"), total.requests)
        count = [sample.value for sample in families[name].samples if sample.name == f"{name}_count"]
        assert count == [total.requests]
    sums = {sample.name: sample.value for sample in families["mlstress_latency_seconds"].samples}
    assert sums["mlstress_latency_seconds_sum"] == pytest.approx(total.latency.sum_ns / 1e9)
    assert only(families[LEVEL[mode]]) == (500.0 if mode == "open" else engine.concurrency)
    assert only(families["mlstress_users_running"]) == session.totals.last.users_running
    assert only(families["mlstress_ramp_step"]) == 0
    assert only(families["mlstress_sla_p95_seconds"]) == 0.2
    # The SLA light's state is the dashboard's: the rule on the snapshot's last second.
    window = session.snapshot.window
    light = sla_state(window.latency.percentile_ms(95), session.sla_p95_ms, window.stuck_users)
    states = {sample.labels["state"]: sample.value for sample in families["mlstress_sla_state"].samples}
    assert states == {state: float(state == light) for state in ("ok", "breach", "idle")}
    last_second = {sample.labels["quantile"]: sample.value
                   for sample in families["mlstress_latency_last_second_seconds"].samples}
    assert last_second == {quantile: pytest.approx(window.latency.percentile_ms(percent) / 1000)
                           for quantile, percent in (("0.5", 50), ("0.95", 95), ("0.99", 99))}
    lag = only(families["mlstress_harness_lag_seconds"])
    assert lag == pytest.approx(window.hiccup.percentile_ms(99) / 1000)


def test_the_ramp_step_shows_while_a_ramp_runs(tmp_path):
    session = fake_session(FakeEngine(tmp_path, concurrency=1))
    session.start_ramp(RampPlan(mode=CLOSED, start=1.0, maximum=4.0, step=1.0, factor=None, step_duration_s=1.0,
                                sla_p95_ms=200.0))
    assert only(served(session)["mlstress_ramp_step"]) == 1
    session.stop_ramp()
    assert only(served(session)["mlstress_ramp_step"]) == 0


def test_a_scrape_does_not_wait_for_the_pump(tmp_path):
    session = fake_session(FakeEngine(tmp_path, script=HISTORY))
    endpoint = MetricsEndpoint("127.0.0.1", 0)
    try:
        endpoint.watch(session, run="r1")
        session.pump()
        with session._pump_lock:  # a pump in progress (or stuck) leaves /metrics answering with the last figures
            body = scrape(endpoint.url, timeout_s=5)
    finally:
        endpoint.close()
    assert counts(parsed(body)["mlstress_requests"])[("ok", "")] == session.totals.total.ok > 0


def test_the_counters_after_the_run_are_summary_json_s(tmp_path):
    session = fake_session(FakeEngine(tmp_path, script=HISTORY))
    endpoint = MetricsEndpoint("127.0.0.1", 0)
    try:
        endpoint.watch(session, run="r1")
        summary = session.finish()
        endpoint.linger(0)
        families = parsed(scrape(endpoint.url))
    finally:
        endpoint.close()
    requests = counts(families["mlstress_requests"])
    assert requests.pop(("ok", "")) == summary["ok"]
    assert requests == {("error", kind): count for kind, count in summary["errors_by_kind"].items()}
    assert sum(requests.values()) == summary["errors"] > 0
    assert buckets(families["mlstress_latency_seconds"])[-1][1] == summary["requests"]


def test_the_grafana_dashboard_asks_only_for_series_the_endpoint_serves(tmp_path):
    dashboard = json.loads((Path(__file__).parent.parent / "grafana" / "mlstress-tui.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(expressions) >= 8
    asked = set(re.findall(r"\bmlstress_[a-z0-9_]+", " ".join(expressions)))
    served = set()
    for mode, rate in (("closed", None), ("open", 500.0)):
        session = fake_session(FakeEngine(tmp_path / mode, script=HISTORY, mode=mode, rate=rate))
        session.pump()
        served |= {sample.name for family in served_families(session) for sample in family.samples}
    assert asked and asked <= served, asked - served
    assert {"mlstress_latency_seconds_bucket", "mlstress_requests_total", "mlstress_commanded_users"} <= asked


# -- the command line --------------------------------------------------------------------

COMMANDS = {
    "run": ["run", "--headless", "--target", "sleep:1ms", "--requests", "10"],
    "ramp": ["ramp", "--headless", "--target", "sleep:1ms"],
    "outliers": ["outliers", "--headless", "--target", "sleep:1ms"],
    "accept": ["accept", "--headless", "--target", "sleep:1ms", "--preset", "smoke"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_metrics_port_in_use_is_one_line_before_anything_starts(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main([*COMMANDS[command], "--metrics-port", str(port)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert f"cannot serve metrics on 127.0.0.1:{port} (address already in use)" in lines[0]
    assert "--metrics-port" in lines[0]
    assert not (tmp_path / "mlstress-runs").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["--metrics-linger", "5"], "--metrics-linger applies with --metrics-port only"),
    (["--metrics-addr", "0.0.0.0"], "--metrics-addr applies with --metrics-port only"),
    (["--metrics-port", "70000"], "argument --metrics-port: must be a TCP port number, at least 1 and at most 65,535"),
    (["--metrics-port", "9464", "--metrics-addr", "no-such-host.invalid"], "--metrics-addr 'no-such-host.invalid' is not an address"),
])
def test_bad_metrics_options_are_one_line(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main([*COMMANDS["run"], *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err


def until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s:g} s for {what}"
        time.sleep(0.05)


def run_clock_s(intervals: Path) -> float:
    """How far the run is by its own clock: the newest intervals.jsonl line's `t`."""
    if not intervals.exists():
        return 0.0
    lines = [line for line in intervals.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1])["t"] if lines else 0.0


@pytest.mark.slow
def test_a_run_serves_its_figures_while_it_runs_and_summary_json_s_at_the_end(tmp_path):
    port, out = free_port(), tmp_path / "run"
    url = f"http://127.0.0.1:{port}/metrics"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--target", "sleep:2ms", "--concurrency", "4",
         "--duration", "8", "--metrics-port", str(port), "--metrics-linger", "60", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: run_clock_s(out / "intervals.jsonl") >= 6.0 or process.poll() is not None, 60, "6 s of run")
        during = scrape(url)
        until(lambda: (out / "summary.json").exists() or process.poll() is not None, 30, "summary.json")
        # The endpoint lingers until a scrape has taken the final figures; the last body scraped is that one.
        with Scraper(url) as scraper:
            process.wait(60)
        stdout, stderr = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, stderr[-2000:]
    assert f"live figures for Prometheus at {url}" in stderr
    assert "no scrape took the final figures" not in stderr
    summary = json.loads((out / "summary.json").read_text())

    at_six = parsed(during)
    mid = sum(counts(at_six["mlstress_requests"]).values())
    assert summary["requests"] / 2 <= mid <= summary["requests"], (mid, summary["requests"])
    assert sum(line.startswith("mlstress_latency_seconds_bucket") for line in during.splitlines()) >= 5

    assert scraper.bodies
    final = parsed(scraper.bodies[-1])
    requests = counts(final["mlstress_requests"])
    assert requests.pop(("ok", "")) == summary["ok"] > 0
    assert requests == {("error", kind): count for kind, count in summary["errors_by_kind"].items()}
    for name in HISTOGRAMS:
        assert buckets(final[name])[-1][1] == summary["requests"]
    run_ids = {sample.labels["run"] for sample in final["mlstress_requests"].samples}
    assert run_ids == {"run"}


# -- the Pushgateway -----------------------------------------------------------------------

REPORT = {"verdict": "FAIL", "preset": "smoke", "label": "build 7", "target": {"kind": "http", "label": "x"},
          "duration_s": 12.5,
          "criteria": [{"stage": "load", "metric": "p95_ms", "op": "<=", "threshold": 200.0, "measured": 250.5,
                        "passed": False, "judged": True},
                       {"stage": "load", "metric": "error_rate", "op": "<=", "threshold": 0.01, "measured": None,
                        "passed": False, "judged": False}]}


def gate_series(text: str, job: str = ACCEPT_JOB) -> dict[str, dict[tuple, float]]:
    """The Pushgateway's mlstress_gate_* series of `job`, by name and (stage, metric, op, verdict)."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("mlstress_gate") and sample.labels.get("job") == job:
                key = tuple(sample.labels.get(name, "") for name in ("stage", "metric", "op", "verdict"))
                found.setdefault(sample.name, {})[key] = sample.value
                assert (sample.labels["preset"], sample.labels["label"]) == ("smoke", "build 7")
    return found


def test_the_verdict_and_each_criterion_reach_a_real_pushgateway(pushgateway):
    push_verdict(pushgateway, "mlstress_test_gate", REPORT)
    series = gate_series(scrape(f"{pushgateway}/metrics"), job="mlstress_test_gate")
    assert series["mlstress_gate_verdict"] == {("", "", "", "FAIL"): 1.0, ("", "", "", "PASS"): 0.0,
                                               ("", "", "", "INCOMPLETE"): 0.0}
    assert series["mlstress_gate_passed"] == {("", "", "", ""): 0.0}
    assert series["mlstress_gate_criterion_measured"] == {("load", "p95_ms", "<=", ""): 250.5}
    assert series["mlstress_gate_criterion_threshold"] == {("load", "p95_ms", "<=", ""): 200.0,
                                                           ("load", "error_rate", "<=", ""): 0.01}
    assert series["mlstress_gate_criterion_judged"] == {("load", "p95_ms", "<=", ""): 1.0,
                                                        ("load", "error_rate", "<=", ""): 0.0}
    assert series["mlstress_gate_criterion_passed"] == {("load", "p95_ms", "<=", ""): 0.0,
                                                        ("load", "error_rate", "<=", ""): 0.0}


class Receiver:
    """A minimal HTTP receiver of pushes: every request's method, path, headers and body, answered 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _take(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers), "body": body.decode()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_POST = _take

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_password_in_the_pushgateway_url_goes_as_basic_auth_only():
    password = "Tr0ub4dor:3xYz"
    with Receiver() as receiver:
        push_verdict(f"http://robot:{password.replace(':', '%3A')}@{receiver.host}/gw", ACCEPT_JOB, REPORT)
    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    assert sent["method"] == "PUT" and sent["path"] == f"/gw/metrics/job/{ACCEPT_JOB}/preset/smoke"
    assert sent["headers"]["Authorization"] == "Basic " + base64.b64encode(f"robot:{password}".encode()).decode()
    assert 'mlstress_gate_verdict{label="build 7",target="http",verdict="FAIL"} 1.0' in sent["body"]
    assert "Tr0ub4dor" not in sent["body"] + sent["path"]


def test_a_pushgateway_that_refuses_is_one_line_without_the_password():
    port = free_port()
    with pytest.raises(PushError) as refused:
        push_verdict(f"http://robot:Tr0ub4dor@127.0.0.1:{port}", ACCEPT_JOB, REPORT, timeout_s=2)
    assert str(refused.value) == (f"cannot push the verdict to http://127.0.0.1:{port} (job {ACCEPT_JOB}): "
                                  "[errno 111] connection refused")


def test_accept_with_a_pushgateway_where_nothing_answers_is_one_line_before_it_runs(tmp_path, capsys):
    port = free_port()
    code = main(["accept", "--headless", "--target", "sleep:1ms", "--preset", "smoke", "--report-dir",
                 str(tmp_path / "reports"), "--pushgateway", f"http://robot:Tr0ub4dor@127.0.0.1:{port}"])
    printed = capsys.readouterr()
    assert code == 2
    assert printed.err.strip() == (f"mlstress-tui accept: error: nothing answers at --pushgateway "
                                   f"http://127.0.0.1:{port} ([errno 111] connection refused): start the "
                                   "Pushgateway or correct the URL")
    assert "Tr0ub4dor" not in printed.out + printed.err
    assert not (tmp_path / "reports").exists()


TINY_SUITE = """
name = "smoke"
[[stages]]
name = "steady"
kind = "load"
concurrency = 2
requests_per_user = 100
[[criteria]]
stage = "steady"
metric = "error_rate"
op = "<="
value = 0.01
[[criteria]]
stage = "steady"
metric = "p95_ms"
op = "<"
value = 1000
"""


@pytest.mark.slow
def test_accept_pushes_its_verdict_and_serves_each_stage_while_it_runs(pushgateway, tmp_path, capsys):
    preset = tmp_path / "smoke.toml"
    preset.write_text(TINY_SUITE)
    reports, port = tmp_path / "reports", free_port()
    with Scraper(f"http://127.0.0.1:{port}/metrics") as scraper:
        code = main(["accept", "--headless", "--target", "sleep:1ms", "--workers", "1", "--preset", str(preset),
                     "--report-dir", str(reports), "--label", "build 7", "--pushgateway", pushgateway,
                     "--metrics-port", str(port), "--metrics-linger", "30"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert f"pushed to the Pushgateway at {pushgateway} (job {ACCEPT_JOB}, preset smoke)" in out
    report = json.loads((reports / "report.json").read_text())
    assert report["verdict"] == "PASS"
    series = gate_series(scrape(f"{pushgateway}/metrics"))
    assert series["mlstress_gate_passed"] == {("", "", "", ""): 1.0}
    measured = {(c["stage"], c["metric"], c["op"], ""): c["measured"] for c in report["criteria"]}
    assert series["mlstress_gate_criterion_measured"] == pytest.approx(measured)
    # The stage's figures were served under the run id report-dir/stage, and the last scrape has them all.
    final = parsed(scraper.bodies[-1])
    assert {sample.labels["run"] for sample in final["mlstress_requests"].samples} == {"reports/steady"}
    assert sum(counts(final["mlstress_requests"]).values()) == report["stages"][0]["metrics"]["requests"] == 200
