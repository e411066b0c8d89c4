"""The session's live figures at /metrics for Prometheus, read from an immutable view the session's pump publishes.

Each tick the pump hands its consumers, a `MetricsFeed` copies what the
endpoint shows out of the session's own consumers (`RunTotals` for the counts
and histograms, `LiveWindow` for the last second, the commanded level, the
ramp) into a frozen `MetricsView`, and swaps one reference. A scrape, on the
HTTP server's thread in the front end's process, reads that reference and
nothing else: no lock, nothing it reads is ever changed, and the measured path
is in other processes. So the figures are the dashboard's and summary.json's,
and the counters at the last scrape are summary.json's.

Histograms are classic ones with fixed `le` edges (1, 1.5, 2, 3, 5, 7.5 per
decade from 10 µs to 100 s), the run's 1% log buckets folded onto them by each
bucket's reported value, as `LatencyHistogram.share_above_ms` judges one. Not
native histograms: prometheus_client 0.26 marks them experimental and writes
them only in the OpenMetrics 2.0 text, which Prometheus 2.x does not read
(it takes native histograms over protobuf only).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from mlstress_tui.errors import UsageError
from mlstress_tui.results.histogram import BUCKETS, LatencyHistogram, bucket_value_ns
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import OPEN
from mlstress_tui.session.live_window import SLA_STATES, sla_state

if TYPE_CHECKING:
    from mlstress_tui.session.run_session import RunSession

log = logging.getLogger(__name__)

# The `le` edges in seconds: 10 µs (a no-op, a free pool slot) to 100 s (past any deadline the tool keeps by default).
EDGES_S: tuple[float, ...] = tuple(round(step * 10.0 ** power, 9) for power in range(-5, 2)
                                   for step in (1.0, 1.5, 2.0, 3.0, 5.0, 7.5)) + (100.0,)
# How many of the run's buckets each edge holds: those whose reported value (the geometric midpoint) is at most it.
_BUCKETS_UP_TO = np.searchsorted(np.asarray(bucket_value_ns(np.arange(BUCKETS))),
                                 np.array(EDGES_S) * 1e9, side="right")
# The labels every series carries: which run, of what kind of target, under which preset and --label. Never a URL,
# a DSN, a header or a user id.
RUN_LABELS = ("run", "target", "preset", "label")
# How soon the server notices it is to stop (the command's exit waits for it).
SHUTDOWN_POLL_S = 0.05
# The last second's latency percentiles, as the dashboard's live numbers show them: quantile label -> percent.
WINDOW_QUANTILES = {"0.5": 50.0, "0.95": 95.0, "0.99": 99.0}
# A scraper that stops reading cannot hold the server's thread longer than this.
SCRAPE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class HistogramView:
    """One histogram as Prometheus reads it: the count at or below each edge, the total count and the sum."""

    cumulative: tuple[int, ...]
    count: int
    sum_s: float

    @classmethod
    def of(cls, histogram: LatencyHistogram) -> HistogramView:
        running = np.cumsum(histogram.counts)
        at_edges = np.where(_BUCKETS_UP_TO > 0, running[np.maximum(_BUCKETS_UP_TO - 1, 0)], 0)
        return cls(tuple(int(value) for value in at_edges), histogram.count, histogram.sum_ns / 1e9)

    def buckets(self) -> list[tuple[str, float]]:
        # `g` writes an edge as Go does (1e-05, 0.0015, 100), the form Prometheus's own clients give `le`.
        edges = [(f"{edge:g}", float(count)) for edge, count in zip(EDGES_S, self.cumulative)]
        return [*edges, ("+Inf", float(self.count))]


@dataclass(frozen=True)
class MetricsView:
    """Everything one scrape shows, copied out of the session at one tick; never changed after."""

    labels: tuple[str, str, str, str]  # RUN_LABELS' values
    ok: int
    errors_by_kind: tuple[tuple[str, int], ...]
    # Requests without an outcome, as summary.json books them: in a call when the run ended, due and never sent
    # (the open loop), lost with a worker that died.
    unfinished: int
    unsent: int
    lost: int
    latency: HistogramView
    service: HistogramView
    pool_wait: HistogramView
    open_loop: bool
    level: float  # users commanded (closed loop) or requests/s offered (open loop)
    users_running: int
    stuck_users: int
    harness_lag_s: float | None  # the workers' timer lateness, p99 of the last second
    ramp_step: int  # 1-based while a ramp runs, else 0
    sla: str  # one of SLA_STATES
    sla_p95_s: float
    window_latency_s: tuple[tuple[str, float], ...]  # the last second's percentiles: (quantile, seconds)

    @property
    def requests(self) -> int:
        return self.ok + sum(count for _, count in self.errors_by_kind)


def metrics_view(session: RunSession, *, run: str) -> MetricsView:
    """The view of `session` now: read only from the pump's thread while the run goes, from any once it finished."""
    total = session.totals.total
    last = session.totals.last
    figures = session.snapshot.figures
    window: IntervalStats | None = session.live.interval()
    percentiles = {quantile: window.latency.percentile_ms(percent) if window is not None else None
                   for quantile, percent in WINDOW_QUANTILES.items()}
    p95_ms = percentiles["0.95"]
    stuck = window.stuck_users if window is not None else 0
    lag_ms = window.hiccup.percentile_ms(99) if window is not None else None
    level = session.level
    ramp = session.ramp
    return MetricsView(
        labels=(run, str(session.target_info.get("kind") or ""), session.preset or "", session.label or ""),
        ok=total.ok, errors_by_kind=tuple(sorted(total.errors_by_kind.items())),
        unfinished=figures.unfinished, unsent=figures.unsent, lost=figures.lost,
        latency=HistogramView.of(total.latency), service=HistogramView.of(total.service),
        pool_wait=HistogramView.of(total.pool_wait),
        open_loop=level.mode == OPEN, level=float(level.value),
        users_running=last.users_running if last is not None else 0, stuck_users=stuck,
        harness_lag_s=lag_ms / 1000 if lag_ms is not None else None,
        ramp_step=ramp.index + 1 if ramp is not None and ramp.active else 0,
        sla=sla_state(p95_ms, session.sla_p95_ms, stuck), sla_p95_s=session.sla_p95_ms / 1000,
        window_latency_s=tuple((quantile, ms / 1000) for quantile, ms in percentiles.items() if ms is not None),
    )


class MetricsFeed:
    """A session consumer: after each tick the session's consumers took, a fresh view for the endpoint."""

    def __init__(self, session: RunSession, *, run: str, publish: Callable[[MetricsView], None]) -> None:
        self._session = session
        self._run = run
        self._publish = publish
        self._failed = False

    def on_tick(self, tick: IntervalStats) -> None:
        try:
            self.refresh()
        except Exception as error:  # noqa: BLE001 - the endpoint keeps its last view; the measurement goes on
            if not self._failed:
                log.warning("/metrics keeps its last figures: building the next view failed (%r)", error)
            self._failed = True

    def refresh(self) -> None:
        self._publish(metrics_view(self._session, run=self._run))


class SessionCollector(Collector):
    """The families of /metrics, built on each scrape from the newest view (nothing before the first)."""

    def __init__(self) -> None:
        self._view: MetricsView | None = None

    def publish(self, view: MetricsView) -> None:
        self._view = view  # one reference swapped: a scrape reads the old view or the new, never half of one

    def collect(self) -> Iterator[Metric]:
        view = self._view
        if view is None:
            return
        labels = list(view.labels)
        requests = CounterMetricFamily("mlstress_requests", "Requests with an outcome: ok, or an error by kind",
                                       labels=[*RUN_LABELS, "outcome", "kind"])
        requests.add_metric([*labels, "ok", ""], view.ok)
        for kind, count in view.errors_by_kind:
            requests.add_metric([*labels, "error", kind], count)
        yield requests
        unanswered = CounterMetricFamily("mlstress_requests_without_outcome", "Requests the books count without an "
                                         "outcome: unfinished (in a call when the run ended), unsent (due in the open "
                                         "loop, never sent), lost (with a worker that died)",
                                         labels=[*RUN_LABELS, "why"])
        for why, count in (("unfinished", view.unfinished), ("unsent", view.unsent), ("lost", view.lost)):
            unanswered.add_metric([*labels, why], count)
        yield unanswered
        for name, text, histogram in (
                ("mlstress_latency_seconds", "Latency from the scheduled start to done (open loop: "
                                             "coordinated omission corrected)", view.latency),
                ("mlstress_service_seconds", "Service time, from the actual send to done", view.service),
                ("mlstress_pool_wait_seconds", "Wait for a connection slot of the pool", view.pool_wait)):
            family = HistogramMetricFamily(name, text, labels=RUN_LABELS)
            family.add_metric(labels, histogram.buckets(), histogram.sum_s)
            yield family
        if view.window_latency_s:
            window = GaugeMetricFamily("mlstress_latency_last_second_seconds", "The last second's latency "
                                       "percentiles, to 1% (the dashboard's live numbers; the SLA light judges p95)",
                                       labels=[*RUN_LABELS, "quantile"])
            for quantile, seconds in view.window_latency_s:
                window.add_metric([*labels, quantile], seconds)
            yield window
        level_name, level_text = (("mlstress_offered_requests_per_second", "Requests/s offered: the open loop's "
                                   "commanded level") if view.open_loop else
                                  ("mlstress_commanded_users", "Virtual users commanded: the closed loop's level"))
        yield _gauge(level_name, level_text, labels, view.level)
        yield _gauge("mlstress_users_running", "Virtual users running, as the workers last reported", labels,
                     view.users_running)
        yield _gauge("mlstress_stuck_users", "Users stuck in the target past their deadline (the last second's most)",
                     labels, view.stuck_users)
        if view.harness_lag_s is not None:
            yield _gauge("mlstress_harness_lag_seconds", "How late the workers' own 5 ms timer woke "
                         "(p99 of the last second): delay the harness or machine adds", labels, view.harness_lag_s)
        yield _gauge("mlstress_ramp_step", "The ramp's step (1-based) while a ramp runs, else 0", labels,
                     view.ramp_step)
        sla = GaugeMetricFamily("mlstress_sla_state", "The SLA light: 1 for the state the last second's p95 is in",
                                labels=[*RUN_LABELS, "state"])
        for state in SLA_STATES:
            sla.add_metric([*labels, state], 1.0 if state == view.sla else 0.0)
        yield sla
        yield _gauge("mlstress_sla_p95_seconds", "The SLA's p95 threshold", labels, view.sla_p95_s)


def _gauge(name: str, text: str, labels: list[str], value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=RUN_LABELS)
    family.add_metric(labels, float(value))
    return family


class _Server(ThreadingMixIn, WSGIServer):
    """One thread a scrape, none of them keeping the process alive."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log over the headless progress lines; a stalled scraper times out."""

    timeout = SCRAPE_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return


class _Delivered:
    """A response body that says when the server has written all of it (WSGI calls `close` after the last byte, and
    after a failed write too: only a body written to its end counts)."""

    def __init__(self, body: Iterable[bytes], delivered: Callable[[], None]) -> None:
        self._body = body
        self._delivered = delivered
        self._written = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._written = True

    def close(self) -> None:
        if self._written:
            self._delivered()


class MetricsEndpoint:
    """/metrics for the life of a command: bound at once (a port in use is bad input), fed by each session it watches."""

    def __init__(self, addr: str, port: int) -> None:
        self.collector = SessionCollector()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        self._feed: MetricsFeed | None = None
        self._lingering = False
        self._final_delivered = threading.Event()
        self._server = _bind(addr, port, self._app(make_wsgi_app(registry)))
        self.url = f"http://{_host(addr)}:{self._server.server_address[1]}/metrics"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S},
                                        name="mlstress-metrics", daemon=True)
        self._thread.start()

    def _app(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            final = self._lingering  # read before the figures: this scrape shows the final ones
            body = app(environ, start_response)
            return _Delivered(body, self._final_delivered.set) if final else body
        return serve

    @property
    def watching(self) -> bool:
        """Whether a session has been given to serve yet."""
        return self._feed is not None

    def watch(self, session: RunSession, *, run: str) -> None:
        """Serve `session`'s figures from now on (from its first tick; zeros until then), under the run id `run`."""
        self._feed = MetricsFeed(session, run=run, publish=self.collector.publish)
        session.subscribe(self._feed)
        self._feed.refresh()

    def linger(self, seconds: float) -> bool:
        """After the command's last figures: serve until one scrape has delivered them, at most `seconds`."""
        if self._feed is not None:
            self._feed.refresh()  # the run has finished: nothing changes what it reads any more
        self._lingering = True
        return self._final_delivered.wait(seconds) if seconds > 0 else False

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=SCRAPE_TIMEOUT_S)


def _bind(addr: str, port: int, app: Callable[..., Iterable[bytes]]) -> WSGIServer:
    """The server on `addr:port` (IPv4 or IPv6), or one line: a taken port, an address not of this machine."""
    try:
        family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or "not an address"
        raise UsageError(f"--metrics-addr {addr!r} is not an address to listen on ({reason}): use 127.0.0.1, "
                         "0.0.0.0 or an address of this machine") from None

    class Server(_Server):
        address_family = family

    try:
        return make_server(addr, port, app, Server, handler_class=_QuietHandler)
    except OSError as error:
        raise UsageError(f"cannot serve metrics on {_host(addr)}:{port} ({(error.strerror or str(error)).lower()}): "
                         "stop what holds it, or pick another --metrics-port") from None


def _host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr
