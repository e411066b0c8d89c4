"""The dashboard's main screen: the widgets, laid out, and how a run snapshot is drawn on them.

It draws figures and never makes one: every number, line and chart point
comes from the session's `RunSnapshot`. At 80×24 the live numbers, p95 against
the level (what a ramp is about) and the errors are in view; the histogram, the
scatter and throughput against the level are one PgDn below, as the screen says.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Container, Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from mlstress_tui.report.run_curve import RunCurve
from mlstress_tui.results.kinds import OPEN
from mlstress_tui.results.units import counted
from mlstress_tui.session.headless_printer import fault_line
from mlstress_tui.session.snapshot import RunSnapshot
from mlstress_tui.tui.format import fmt_level, fmt_rate
from mlstress_tui.tui.widgets.errors_panel import ErrorsPanel
from mlstress_tui.tui.widgets.final_banner import FinalBanner
from mlstress_tui.tui.widgets.latency_histogram_chart import LatencyHistogramChart
from mlstress_tui.tui.widgets.latency_scatter_chart import LatencyScatterChart
from mlstress_tui.tui.widgets.level_latency_chart import LevelLatencyChart
from mlstress_tui.tui.widgets.level_throughput_chart import LevelThroughputChart
from mlstress_tui.tui.widgets.message_line import MessageLine
from mlstress_tui.tui.widgets.run_header import RunHeader
from mlstress_tui.tui.widgets.sla_light import SlaLight
from mlstress_tui.tui.widgets.stats_panel import StatsPanel
from mlstress_tui.tui.widgets.strata_panel import StrataPanel

# The scatter is a sample cloud: redrawn once per this many ticks (a second), not on every chart refresh.
SCATTER_TICKS = 4
# The newest faults shown above the errors.
FAULT_LINES = 3
MORE_BELOW = "PgDn ▾ latency histogram · latency vs events · throughput vs users"


class DashboardScreen(Screen[None]):
    """Header, SLA light and messages, live numbers, errors or the heavy-user table, and the charts."""

    class Ready(Message):
        """The widgets are mounted and the first snapshot drawn: the app may start its clock's work."""

    ready = False

    def __init__(self, first: RunSnapshot | None = None, *, id: str | None = None) -> None:  # noqa: A002
        """`first`: the snapshot drawn as the screen mounts, so that its first frame is whole."""
        super().__init__(id=id)
        self._first = first

    def compose(self) -> ComposeResult:
        yield RunHeader(id="run-header")
        with Horizontal(id="status"):
            yield SlaLight(id="sla")
            yield MessageLine(id="message")
        yield FinalBanner(id="final-banner")
        with VerticalScroll(id="body"):
            with Container(id="top"):
                with Container(id="left"):
                    yield StatsPanel(id="stats")
                    # Beside the numbers at 80 columns: p95 against the level, or the heavy-user table (o).
                    with Container(id="side"):
                        yield LevelLatencyChart(id="side-latency", classes="chart")
                        yield StrataPanel(id="strata")
                    yield ErrorsPanel(id="errors")
                    yield LatencyHistogramChart(id="histogram", classes="chart")
                with Container(id="charts"):
                    yield LatencyScatterChart(id="scatter", classes="chart")
                    yield LevelLatencyChart(id="level-latency", classes="chart")
                    yield LevelThroughputChart(id="level-throughput", classes="chart")
            yield Static(MORE_BELOW, id="more-below")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.header = self.query_one(RunHeader)
        self.sla = self.query_one(SlaLight)
        self.message = self.query_one(MessageLine)
        self.banner = self.query_one(FinalBanner)
        self.stats = self.query_one(StatsPanel)
        self.errors = self.query_one(ErrorsPanel)
        self.strata = self.query_one(StrataPanel)
        self.histogram = self.query_one(LatencyHistogramChart)
        self.scatter = self.query_one(LatencyScatterChart)
        self.level_latency = self.query_one("#level-latency", LevelLatencyChart)
        self.side_latency = self.query_one("#side-latency", LevelLatencyChart)
        self.level_throughput = self.query_one(LevelThroughputChart)
        self.query_one("#body").focus()
        if self._first is not None:
            self.show_header(self._first, state=self._first.state, level=None)
            self.show_numbers(self._first, replace_stuck=True)
        self.ready = True
        self.post_message(self.Ready())

    def say(self, message: str, *, seconds: float, warning: bool = False) -> None:
        self.message.say(message, seconds=seconds, warning=warning)

    def show_heavy_users(self, showing: bool) -> None:
        self.set_class(showing, "-heavy")

    def show_header(self, snapshot: RunSnapshot, *, state: str, level: tuple[str, float] | None) -> None:
        """`level`: a level the operator asked for that the engine has not reported yet (shown until it does)."""
        commanded = snapshot.level
        shown_rate, shown_users = commanded.rate, commanded.concurrency
        if level is not None:
            if commanded.mode == OPEN:
                shown_rate = level[1]
            else:
                shown_users = int(level[1])
        self.header.show(target_info=snapshot.target, mode=commanded.mode.value, concurrency=shown_users,
                         rate=shown_rate, pool_size=commanded.pool, elapsed_s=snapshot.elapsed_s,
                         duration_s=snapshot.duration_s, requests_limit=snapshot.requests_limit, state=state,
                         note=snapshot.note, running=snapshot.users_running)

    def show_numbers(self, snapshot: RunSnapshot, *, replace_stuck: bool) -> None:
        window = snapshot.window
        total = snapshot.total
        self.stats.show(window, total if total.requests else None, open_loop=snapshot.level.mode == OPEN,
                        run_throughput=snapshot.figures.throughput_rps)
        if total.paths:
            # A target with several paths (--cache): the share of the run's requests each took.
            served = sum(group.requests for group in total.paths.values()) or 1
            self.stats.border_subtitle = " · ".join(f"{name} {group.requests / served:.0%}"
                                                    for name, group in sorted(total.paths.items()))
        self.sla.show(window.latency.percentile_ms(95) if window else None, snapshot.sla_p95_ms,
                      window.stuck_users if window else 0)
        faults = [fault_line(event) for event in snapshot.faults[-FAULT_LINES:]]
        self.errors.show(window, total, snapshot.recent_errors, faults, self._state_lines(snapshot, replace_stuck))

    @staticmethod
    def _state_lines(snapshot: RunSnapshot, replace_stuck: bool) -> list[str]:
        """What holds now about the measurement (said in full, wrapped), most pressing first."""
        lines = []
        window = snapshot.window
        if window is not None and window.stuck_users:
            how = "replaced" if replace_stuck else "not replaced"
            lines.append(f"{counted(window.stuck_users, 'user')} stuck in the target past their deadline ({how})")
        lines += [line for line in (snapshot.backlog, snapshot.bottleneck, snapshot.point_missed) if line]
        if snapshot.figures.output_lines:
            lines.append(f"the target wrote {counted(snapshot.figures.output_lines, 'line')}: l shows them")
        return lines

    def show_charts(self, snapshot: RunSnapshot, *, heavy_users: bool, ticks: int, base: RunCurve | None = None,
                    force: bool = False) -> None:
        """`base`: a baseline run, whose levels in the current loop are drawn beside this run's."""
        mode = snapshot.level.mode
        before = base.curve(mode.value) if base is not None else ()
        current = snapshot.current_level
        if current is not None:
            label = (f"{fmt_rate(current.level)} req/s" if current.mode == OPEN
                     else f"{fmt_level(current.level)} user{'s' * (current.level != 1)}")
            histogram = current.latency if current.latency.count else None
        else:
            label, histogram = "this level", None
        # Requests measured, none at a settled level yet: the level's first ticks are its warm-up.
        waiting = "the level is warming up" if snapshot.total.requests else "no requests yet"
        now_level = current.level if current is not None and current.mode == mode else None
        curve = snapshot.curve
        knee = curve.knee.knee_level if curve.knee is not None else None
        self.histogram.show(histogram, label, snapshot.sla_p95_ms, waiting=waiting, force=force)
        breach = None
        if heavy_users:
            heavy = snapshot.heavy_users
            self.strata.show(heavy, sla_p95_ms=snapshot.sla_p95_ms, reason=snapshot.heavy_users_why)
            breach = heavy["breach_event_count"] if heavy else None
        self.scatter.show(snapshot.scatter, generation=ticks // SCATTER_TICKS, breach_events=breach,
                          open_loop=mode == OPEN, force=force)
        # One of the two p95 charts is on screen (beside the numbers at 80 columns, among the charts above): only it is
        # drawn, and the other when the layout brings it in (force on resize).
        for chart in (self.level_latency, self.side_latency):
            if chart.display:
                chart.show(curve.points, mode.value, now_level, snapshot.sla_p95_ms, knee, base=before,
                           new_name="live", force=force)
        self.level_throughput.show(curve.points, mode.value, now_level, knee, curve.usl, base=before,
                                   new_name="live", force=force)
