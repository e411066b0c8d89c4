"""The live dashboard: pumps the run session's ticks on a clock, renders them, and turns its knobs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.logging import TextualHandler
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from mlstress_tui.analysis.outliers import outliers_report, strata_results
from mlstress_tui.analysis.ramp import find_knee, fit_usl
from mlstress_tui.errors import EXIT_INTERRUPTED, EXIT_OK
from mlstress_tui.load.limits import DEFAULT_OPEN_POOL, MAX_CONCURRENCY, MAX_RATE
from mlstress_tui.results.bottleneck import pool_bottleneck
from mlstress_tui.session import RampController, RunSession
from mlstress_tui.session.headless_printer import fault_line
from mlstress_tui.session.ramp_controller import ramp_step
from mlstress_tui.session.run_acceptance import run_acceptance
from mlstress_tui.session.run_session import OPEN_START_SHARE
from mlstress_tui.tui.format import fmt_elapsed, fmt_level, fmt_rate
from mlstress_tui.tui.live_stats import LiveWindow
from mlstress_tui.tui.screens.acceptance_screen import AcceptanceScreen
from mlstress_tui.tui.screens.help_screen import HelpScreen
from mlstress_tui.tui.screens.nodes_screen import NodesScreen
from mlstress_tui.tui.screens.target_log_screen import TargetLogScreen
from mlstress_tui.tui.themes import DEFAULT_THEME, load_themes
from mlstress_tui.tui.widgets.errors_panel import ErrorsPanel
from mlstress_tui.tui.widgets.final_banner import FinalBanner
from mlstress_tui.tui.widgets.latency_histogram_chart import LatencyHistogramChart
from mlstress_tui.tui.widgets.latency_scatter_chart import LatencyScatterChart
from mlstress_tui.tui.widgets.level_latency_chart import LevelLatencyChart
from mlstress_tui.tui.widgets.level_throughput_chart import LevelThroughputChart
from mlstress_tui.tui.widgets.run_header import RunHeader
from mlstress_tui.tui.widgets.sla_light import SlaLight
from mlstress_tui.tui.widgets.stats_panel import StatsPanel
from mlstress_tui.tui.widgets.strata_panel import StrataPanel

log = logging.getLogger(__name__)

OPEN = "open"
CLOSED = "closed"
STARTING = "starting"
RUNNING = "running"
PAUSED = "paused"
RAMPING = "ramping"
STOPPING = "stopping"
FINISHED = "finished"
MIN_RATE = 1.0
RATE_STEP = 1.10
FINISH_WORKER = "finish-engine"
SCATTER_TICKS = 4
HEAVY_USERS_REFIT_S = 2.0
COMPACT_FOOTER_BELOW = 100
TERMINAL_LOST_GRACE_S = 5.0

# Actions that change the load; they cannot apply once the run is over or while it starts or stops.
LOAD_ACTIONS = {"more", "fewer", "double", "halve", "toggle_mode", "toggle_ramp", "toggle_pause"}
# Actions the engine's ramp owns while it runs.
RAMP_OWNED = {"more", "fewer", "double", "halve", "toggle_mode"}


class DashboardApp(App[int]):
    """Live latency, throughput and errors of a load run, with keys to turn the load up and down."""

    TITLE = "mlstress-tui"
    # Absolute, so subclasses defined in other modules (benchmarks, tests) find it too.
    CSS_PATH = Path(__file__).parent / "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    BINDINGS = [
        # Quit and help first: a narrow terminal's footer cuts from the right, and these must stay visible.
        Binding("q", "quit", "Quit", id="quit", tooltip="Stop the run, write summary.json and quit"),
        Binding("question_mark", "help", "Help", key_display="?", id="help", tooltip="Show the keys"),
        Binding("plus,equals_sign", "more", "More", key_display="+", id="load-more",
                tooltip="Concurrency +1 (closed loop) or rate +10% (open loop)"),
        Binding("minus", "fewer", "Fewer", key_display="-", id="load-fewer",
                tooltip="Concurrency -1 (closed loop) or rate -10% (open loop)"),
        Binding("right_square_bracket", "double", "×2", key_display="]", id="load-double",
                tooltip="Double the concurrency or rate"),
        Binding("left_square_bracket", "halve", "÷2", key_display="[", id="load-halve",
                tooltip="Halve the concurrency or rate"),
        Binding("m", "toggle_mode", "Mode", id="toggle-mode", tooltip="Switch closed loop / open loop"),
        Binding("r", "toggle_ramp", "Ramp", id="toggle-ramp", tooltip="Start or stop the automatic ramp"),
        Binding("p", "toggle_pause", "Pause", id="toggle-pause", tooltip="Pause or resume the load"),
        Binding("s", "save_svg", "Shot", id="save-svg", tooltip="Save an SVG screenshot into the run directory"),
        Binding("t", "next_theme", "Theme", id="next-theme", tooltip="Next theme from themes/"),
        Binding("l", "target_log", "Log", id="target-log", tooltip="What the target printed or logged (target.log)"),
        Binding("o", "heavy_users", "Heavy", id="heavy-users",
                tooltip="Heavy users: latency by stratum of event count and the breach line on the scatter"),
        Binding("a", "acceptance", "Accept", id="acceptance", tooltip="The acceptance panel of the whole run"),
        # Shown only in a Ray run (check_action hides it otherwise).
        Binding("n", "nodes", "Nodes", id="nodes",
                tooltip="Per node (--ray): actors, offered and achieved load, p99, harness verdict, liveness"),
        Binding("ctrl+c", "interrupt", "Stop", show=False, priority=True, id="interrupt"),
    ]

    # Mirrors of engine state; bindings=True re-evaluates check_action (and the footer) when they change.
    run_state: var[str] = var(STARTING, bindings=True)
    load_mode: var[str] = var(CLOSED, bindings=True)
    load_level: var[float] = var(0.0, bindings=True)
    show_heavy_users: var[bool] = var(False)
    shutting_down: var[bool] = var(False, bindings=True)

    def __init__(self, session: RunSession, *, theme: str | None = None,
                 refresh_hz: float = 4.0, chart_hz: float = 1.5, handle_signals: bool = False) -> None:
        super().__init__()
        self.session = session
        self.engine = session.engine
        self.sla_p95_ms = session.sla_p95_ms
        self.refresh_hz = refresh_hz
        self.chart_hz = chart_hz
        self.handle_signals = handle_signals
        self.live = LiveWindow()
        self._ramp_ended: RampController | None = None
        self.summary: dict[str, Any] | None = None
        self.summary_path: Path | None = None
        self.interrupted = False
        self.dashboard_done = threading.Event()
        self._tty_fds: list[int] = []
        self._watching = False
        self._requested_theme = theme
        self._theme_names: list[str] = []
        self._theme_problems: list[str] = []
        self._requested: tuple[str, float] | None = None
        # Level keys between two clock ticks are coalesced into one change (a held key, a burst of 200).
        self._pending_level: tuple[str, float, str] | None = None
        self._pending_presses = 0
        self._level_applied_at = float("-inf")
        self._last_chart_at: float | None = None
        self._exit_code = EXIT_OK
        self._quit_requested = False
        self._finish_started = False
        self._screenshot_serial = 0
        self._heavy_cache: tuple[float, dict | None] | None = None
        self._register_themes()

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield RunHeader(id="run-header")
        yield SlaLight(id="sla")
        yield FinalBanner(id="final-banner")
        with VerticalScroll(id="body"):
            with Container(id="top"):
                # The errors panel takes only the lines it has; the histogram takes the rest of the column.
                with Container(id="left"):
                    yield StatsPanel(id="stats")
                    yield ErrorsPanel(id="errors")
                    yield StrataPanel(id="strata")
                    yield LatencyHistogramChart(id="histogram", classes="chart")
                with Container(id="charts"):
                    yield LatencyScatterChart(id="scatter", classes="chart")
                    yield LevelLatencyChart(id="level-latency", classes="chart")
                    yield LevelThroughputChart(id="level-throughput", classes="chart")
        yield Footer()

    def _register_themes(self) -> None:
        loaded = load_themes()
        for theme in loaded.themes:
            self.register_theme(theme)
        self._theme_names = [theme.name for theme in loaded.themes]
        self._theme_problems = loaded.problems
        wanted = self._requested_theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        elif self._theme_names:
            self.theme = self._theme_names[0]

    def on_resize(self) -> None:
        # Below 100 columns the footer drops its padding so that more keys fit.
        self.query_one(Footer).compact = self.size.width < COMPACT_FOOTER_BELOW

    def on_mount(self) -> None:
        for problem in self._theme_problems:
            self.notify(f"{problem}; skipped", title="Theme", severity="warning", timeout=8)
        if self._requested_theme and self._requested_theme not in self.available_themes:
            self.notify(f"unknown theme {self._requested_theme!r}: using {self.theme}. "
                        f"Known: {', '.join(self._theme_names)}", title="Theme", severity="warning", timeout=8)
        # Kept, not queried: `App.query_one` searches the top screen, which may be the help overlay.
        self._header = self.query_one(RunHeader)
        self._sla = self.query_one(SlaLight)
        self._banner = self.query_one(FinalBanner)
        self._stats = self.query_one(StatsPanel)
        self._errors = self.query_one(ErrorsPanel)
        self._histogram = self.query_one(LatencyHistogramChart)
        self._scatter = self.query_one(LatencyScatterChart)
        self._strata = self.query_one(StrataPanel)
        self._level_latency = self.query_one(LevelLatencyChart)
        self._level_throughput = self.query_one(LevelThroughputChart)
        self.theme_changed_signal.subscribe(self, lambda _theme: self._update_charts(force=True))
        if self.handle_signals:
            self._install_signal_handlers()
        self.query_one("#body").focus()
        self._on_clock()
        self.set_interval(1.0 / self.refresh_hz, self._on_clock, name="dashboard-clock")

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        # A hung-up terminal stops being a tty; SIGHUP does not always arrive (e.g. the tmux server dies).
        self._tty_fds = [fd for fd in (0, 1, 2) if os.isatty(fd)]

    def _terminal_is_lost(self) -> bool:
        return any(not os.isatty(fd) for fd in self._tty_fds)

    def _on_signal(self, signum: int) -> None:
        # Leave the screen at once; run_dashboard finishes the engine once the app is gone.
        log.warning("received %s: stopping the run", signal.Signals(signum).name)
        self._mark_interrupted()
        if signum == signal.SIGHUP and not self._watching:
            self._watching = True
            # With the terminal gone, Textual's shutdown can block for ever writing to it (its writer
            # queue fills once the writer thread fails). Finish the engine now, beside the shutdown,
            # and end the process if the shutdown is still stuck after a grace period.
            threading.Thread(target=self._finish_then_watch, name="terminal-lost", daemon=True).start()
        self.exit(return_code=EXIT_INTERRUPTED)

    def _finish_then_watch(self) -> None:
        try:
            self.session.finish()
        except Exception:  # The summary is best effort here; run_dashboard tries again.
            log.exception("finishing the run after the terminal was lost")
        if not self.dashboard_done.wait(TERMINAL_LOST_GRACE_S):
            log.error("the terminal is gone and the dashboard did not close: exiting")
            os._exit(EXIT_INTERRUPTED)

    # ------------------------------------------------------------------ clock

    def _on_clock(self) -> None:
        """Drain the engine's ticks and refresh the numbers; the charts only every 1/chart_hz seconds."""
        if not self._header.is_attached:
            return  # The app is shutting down and its screen is gone.
        if self._tty_fds and self._terminal_is_lost():
            self._tty_fds = []
            self._on_signal(signal.SIGHUP)
            return
        engine = self.engine
        if self._finish_started:
            # The finish worker drains the last ticks into the session's stats: only the header moves.
            with self.batch_update():
                self._sync_engine_state()
                self._show_header()
            return
        self._apply_pending_level()
        ticks = self.session.pump()
        self.live.add(ticks)
        if self._ramp_ended is not None:
            ramp, self._ramp_ended = self._ramp_ended, None
            self.notify(ramp.progress(), title="Ramp", timeout=10)
        now = time.monotonic()
        charts_due = self._last_chart_at is None or now - self._last_chart_at >= 1.0 / self.chart_hz
        with self.batch_update():
            self._sync_engine_state()
            self._show_header()
            if ticks or self.live.ticks_seen == 0:
                self._update_numbers()
            if charts_due:
                self._last_chart_at = now
                self._update_charts()
        if engine.finished and not self._finish_started:
            self._start_finish()

    def _show_header(self) -> None:
        engine = self.engine
        ramp = self.session.ramp
        last = self.session.stats.last
        # Only a tick at a settled level says how many users run; one in a change is still starting them.
        steady = last is not None and last.level_id is not None and self.run_state in (RUNNING, RAMPING)
        pool_size = engine.pool_size
        if pool_size is None and engine.mode == OPEN:
            pool_size = DEFAULT_OPEN_POOL
        self._header.show(
            target_info=engine.target_info, mode=engine.mode, concurrency=engine.concurrency,
            rate=engine.rate, pool_size=pool_size, elapsed_s=engine.elapsed_s,
            duration_s=engine.duration_s, requests_limit=engine.requests_limit, state=self.run_state,
            note=ramp.progress() if ramp is not None and ramp.active else None,
            running=last.users_running if steady else None,
        )

    def _sync_engine_state(self) -> None:
        engine = self.engine
        self.run_state = FINISHED if self.summary is not None else (STOPPING if self.shutting_down and
                                                                     engine.state != FINISHED else self.session.state)
        self.load_mode = engine.mode
        level = float(engine.rate or 0.0) if engine.mode == OPEN else float(engine.concurrency)
        if self._requested is not None and self._requested == (engine.mode, level):
            self._requested = None
        self.load_level = self._requested[1] if self._requested else level

    def _update_numbers(self) -> None:
        interval = self.live.interval()
        run = self.session.stats
        total = run.total
        open_loop = self.engine.mode == OPEN
        self._stats.show(interval, total if total.requests else None, open_loop=open_loop)
        self._sla.show(interval.latency.percentile_ms(95) if interval else None, self.sla_p95_ms,
                       interval.stuck_users if interval else 0)
        self._errors.show(interval, total, run.recent_errors, self._fault_lines(interval))

    def _fault_lines(self, interval: Any) -> list[str]:
        """What went wrong with the measurement itself, newest state first, one line each."""
        run = self.session.stats
        lines = [fault_line(event) for event in list(run.faults)[-3:]]
        if interval is not None and interval.stuck_users:
            how = "replaced" if self.engine.load_description().get("replace_stuck", True) else "not replaced"
            lines.append(f"{interval.stuck_users} users stuck in the target past their deadline ({how})")
        if interval is not None:
            engine = self.engine
            pool = engine.pool_size or (DEFAULT_OPEN_POOL if engine.mode == OPEN else None)
            bottleneck = pool_bottleneck(interval, mode=engine.mode, pool_size=pool, concurrency=engine.concurrency,
                                         offered_rps=engine.rate, target_kind=engine.target_info.get("kind"))
            if bottleneck:
                lines.append(bottleneck)
        if run.total.output_lines:
            lines.append(f"the target wrote {run.total.output_lines:,} lines: in target.log (l to view)")
        return lines

    def _update_charts(self, *, force: bool = False) -> None:
        mode = self.engine.mode
        run = self.session.stats
        levels = run.levels_by_value(mode)
        current = run.current_level()
        if current is not None:
            label = (f"{fmt_rate(current.level)} req/s" if current.mode == OPEN
                     else f"{fmt_level(current.level)} users")
            histogram = current.latency
        else:
            label, histogram = "this level", None
        now_level = current.level if current is not None and current.mode == mode else None
        # The knee and the USL curve from every level visited, by the ramp or by hand alike.
        target_kind, workers = self.engine.target_info.get("kind"), self.engine.worker_count
        steps = [ramp_step(level.mode, level.level, level.seconds, level.totals, target_kind=target_kind,
                           workers=workers) for level in levels if level.requests]
        knee = find_knee(steps, sla_p95_ms=self.sla_p95_ms).knee_level if steps else None
        usl = fit_usl([step.level for step in steps], [step.throughput_rps for step in steps]) if mode == CLOSED else None
        self._histogram.show(histogram, label, self.sla_p95_ms, force=force)
        # The scatter is a sample cloud: redrawn once per second of new ticks, not on every chart tick.
        breach = None
        if self.show_heavy_users:
            heavy = self._heavy_users_report()
            self._strata.show(heavy, sla_p95_ms=self.sla_p95_ms, reason=self._no_strata_reason())
            breach = heavy["breach_event_count"] if heavy else None
        self._scatter.show(run.scatter, generation=self.live.ticks_seen // SCATTER_TICKS, breach_events=breach,
                           force=force)
        self._level_latency.show(levels, mode, now_level, self.sla_p95_ms, knee, force=force)
        self._level_throughput.show(levels, mode, now_level, knee, usl, force=force)

    # ------------------------------------------------------------- finishing

    def _start_finish(self) -> None:
        self._finish_started = True
        self._banner.show_stopping()
        self._finish_engine()

    @work(thread=True, name=FINISH_WORKER, exit_on_error=False, exclusive=True, group="finish")
    def _finish_engine(self) -> dict[str, Any]:
        # Blocking: joins worker processes and writes summary.json. Never touches widgets.
        return self.session.finish()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != FINISH_WORKER:
            return
        if event.state == WorkerState.SUCCESS:
            self.summary = event.worker.result or {}
            self.summary_path = Path(self.session.run_dir) / "summary.json"
            with self.batch_update():
                self._sync_engine_state()
                self._update_numbers()
                self._update_charts()
                requests = self.summary.get("requests", self.session.stats.total.requests)
                if self.session.write_errors:
                    self._banner.show_failed(self.session.write_errors[0])
                else:
                    self._banner.show_written(
                        str(self.summary_path), requests, fmt_elapsed(self.summary.get("duration_s",
                                                                                       self.engine.elapsed_s)))
            log.info("summary written to %s", self.summary_path)
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            self.summary = {}
            self._banner.show_failed(f"{type(error).__name__}: {error}")
            log.error("engine.finish() failed: %r", error)
        else:
            return
        if self._quit_requested:
            self.exit(return_code=self._exit_code)

    # ---------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim (None) the keys that cannot apply in the current state; everything else stays live."""
        if action == "nodes":
            return True if self._node_report() is not None else False
        if action not in LOAD_ACTIONS:
            return True
        state = self.run_state
        if self.shutting_down or self.engine.finished or state in (FINISHED, STOPPING, STARTING):
            return None
        if action in RAMP_OWNED and state == RAMPING:
            return None
        if action == "toggle_ramp" and state == PAUSED:
            return None
        if action in ("fewer", "halve"):
            floor = MIN_RATE if self.load_mode == OPEN else 1
            if self.load_level <= floor:
                return None
        return True

    @property
    def controls_pending(self) -> bool:
        """A level key pressed since the last clock tick, not yet sent to the engine."""
        return self._pending_level is not None

    @property
    def _level_to_change(self) -> float:
        return self._pending_level[1] if self._pending_level is not None else self.load_level

    def _change_level(self, new_level: float, how: str) -> None:
        if self.load_mode == OPEN:
            level = min(max(MIN_RATE, round(new_level, 1)), MAX_RATE)
        else:
            level = float(min(max(1, int(round(new_level))), MAX_CONCURRENCY))
        self._pending_level = (self.load_mode, level, how)
        self._pending_presses += 1
        # One press applies at once; a burst is one change a clock tick, so the screen never stalls.
        if time.monotonic() - self._level_applied_at >= 1.0 / self.refresh_hz:
            self._apply_pending_level()

    def _apply_pending_level(self) -> None:
        if self._pending_level is None:
            return
        (mode, level, how), presses = self._pending_level, self._pending_presses
        self._pending_level, self._pending_presses = None, 0
        self._level_applied_at = time.monotonic()
        if mode != self.engine.mode:
            return  # the loop changed under a stale key press
        how = how if presses == 1 else f"{presses} key presses"
        old = self.load_level
        if mode == OPEN:
            self.session.set_rate(level)
            message = f"rate {fmt_rate(old)} → {fmt_rate(level)} req/s ({how})"
        else:
            self.session.set_concurrency(int(level))
            message = f"concurrency {int(old)} → {int(level)} ({how})"
        self._requested = (mode, level)
        self.load_level = level
        log.info(message)
        self.notify(message, title="Load", timeout=2)

    def action_more(self) -> None:
        level = self._level_to_change
        self._change_level(level * RATE_STEP if self.load_mode == OPEN else level + 1,
                           "+10%" if self.load_mode == OPEN else "+1")

    def action_fewer(self) -> None:
        level = self._level_to_change
        self._change_level(level / RATE_STEP if self.load_mode == OPEN else level - 1,
                           "-10%" if self.load_mode == OPEN else "-1")

    def action_double(self) -> None:
        self._change_level(self._level_to_change * 2, "×2")

    def action_halve(self) -> None:
        self._change_level(self._level_to_change / 2, "÷2")

    def action_toggle_mode(self) -> None:
        self._apply_pending_level()
        new_mode = CLOSED if self.load_mode == OPEN else OPEN
        self.session.set_mode(new_mode)
        self._requested = None
        self.load_mode = new_mode
        if new_mode == OPEN:
            message = (f"load mode → open loop at {fmt_rate(self.engine.rate or 0)} req/s "
                       f"({OPEN_START_SHARE:.0%} of the throughput just measured, so the queue can drain)")
        else:
            message = f"load mode → closed loop, {self.engine.concurrency} users"
        log.info(message)
        self.notify(message, title="Load", timeout=3)
        self._sync_engine_state()

    def action_toggle_ramp(self) -> None:
        self._apply_pending_level()
        if self.run_state == RAMPING:
            self.session.stop_ramp()
            message = "ramp stopped: the load stays at the safe level found so far"
        else:
            plan = self.session.start_ramp(on_end=self._on_ramp_end).plan
            factor = f"×{plan.factor:g}" if plan.factor else f"+{plan.step:g}"
            message = (f"ramp started: {factor} every {plan.step_duration_s:g} s until past the cliff "
                       f"(SLA p95 {plan.sla_p95_ms:g} ms)")
        log.info(message)
        self.notify(message, title="Load", timeout=3)
        self._sync_engine_state()

    def _on_ramp_end(self, ramp: RampController) -> None:
        # Called from inside a pump (the clock, or the finish worker): the clock shows it.
        self._ramp_ended = ramp

    def action_toggle_pause(self) -> None:
        if self.run_state == PAUSED:
            self.session.resume()
            message = "resumed"
        else:
            self.session.pause()
            message = "paused: no requests are sent"
        log.info(message)
        self.notify(message, title="Load", timeout=3)
        self._sync_engine_state()

    def action_save_svg(self) -> None:
        run_dir = Path(self.session.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._screenshot_serial += 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        filename = f"screenshot-{stamp}-{self._screenshot_serial}.svg"
        # Explicit path: the built-in screenshot command writes to ~/Downloads.
        path = self.save_screenshot(filename=filename, path=str(run_dir))
        log.info("screenshot saved to %s", path)
        self.notify(f"screenshot saved to {path}", title="Screenshot", timeout=6)

    def action_next_theme(self) -> None:
        names = self._theme_names or [self.theme]
        index = names.index(self.theme) + 1 if self.theme in names else 0
        self.theme = names[index % len(names)]
        self.notify(f"theme {self.theme}", title="Theme", timeout=2)

    def watch_show_heavy_users(self, showing: bool) -> None:
        self.query_one(ErrorsPanel).display = not showing
        self._strata.display = showing

    def _no_strata_reason(self) -> str:
        if not getattr(self.engine, "strata", None):
            return "the target's users have no event counts: pass --users-db for a python or sleep target"
        return "no requests yet"

    def _heavy_users_report(self) -> dict | None:
        """The heavy-user analysis of the whole run so far, refitted at most every few seconds (the fit takes ~25 ms)."""
        strata = getattr(self.engine, "strata", None)
        if not strata:
            return None
        now = time.monotonic()
        if self._heavy_cache is not None and now - self._heavy_cache[0] < HEAVY_USERS_REFIT_S:
            return self._heavy_cache[1]
        results = strata_results(strata, self.session.stats.total.strata)
        report = outliers_report(results, threshold_ms=self.sla_p95_ms,
                                 event_counts_population=self.engine.population_event_counts,
                                 concurrency=self.engine.concurrency) if results else None
        self._heavy_cache = (now, report)
        return report

    def action_heavy_users(self) -> None:
        self.show_heavy_users = not self.show_heavy_users
        self._heavy_cache = None
        self._update_charts(force=True)

    def action_acceptance(self) -> None:
        if isinstance(self.screen, AcceptanceScreen):
            self.screen.dismiss()
            return
        summary = self.summary or self.session.snapshot_summary()
        ramp = self.session.ramp_report or (self.session.ramp.report() if self.session.ramp is not None else None)
        self.push_screen(AcceptanceScreen(run_acceptance(summary, sla_p95_ms=self.sla_p95_ms, ramp=ramp,
                                                         outliers=self._heavy_users_report())))

    def action_target_log(self) -> None:
        if isinstance(self.screen, TargetLogScreen):
            self.screen.dismiss()
            return
        self.push_screen(TargetLogScreen(Path(self.session.run_dir) / "target.log"))

    def _node_report(self) -> list[dict] | None:
        report = getattr(self.engine, "node_report", None)
        return report() if report is not None else None

    def action_nodes(self) -> None:
        if isinstance(self.screen, NodesScreen):
            self.screen.dismiss()
            return
        self.push_screen(NodesScreen(self._node_report))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        rows = []
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or not binding.show:
                continue
            allowed = self.check_action(binding.action, ())
            if allowed is False:
                continue  # a key this run has no use for (the per-node view without --ray)
            enabled = allowed is True
            rows.append((binding.key_display or binding.key, binding.description, binding.tooltip, enabled))
        self.push_screen(HelpScreen(rows, self.sla_p95_ms))

    async def action_quit(self) -> None:
        self._request_exit(EXIT_OK)

    def action_interrupt(self) -> None:
        self._mark_interrupted()
        self._request_exit(EXIT_INTERRUPTED)

    def _mark_interrupted(self) -> None:
        self.interrupted = True
        self.session.interrupted = True

    def _request_exit(self, exit_code: int) -> None:
        """Stop the run and write the summary (in a thread), then exit; a second request exits at once."""
        self._exit_code = exit_code
        if self.summary is not None or self._quit_requested:
            self.exit(return_code=self._exit_code)
            return
        self._quit_requested = True
        self.shutting_down = True
        self.run_state = STOPPING
        if not self._finish_started:
            self._start_finish()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # The dashboard's own keys, minus the built-in screenshot (it writes to ~/Downloads).
        for command in super().get_system_commands(screen):
            if command.title not in ("Screenshot", "Quit"):
                yield command
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.show and self.check_action(binding.action, ()) is True:
                yield SystemCommand(f"{binding.description} ({binding.key_display or binding.key})", binding.tooltip,
                                    lambda action=binding.action: self.run_action(action))


def run_dashboard(session: RunSession, *, theme: str | None) -> int:
    """Run the dashboard until q or a signal; the session is finished either way. 0, or 130 if interrupted."""
    app = DashboardApp(session, theme=theme, handle_signals=True)
    root = logging.getLogger()
    # Log lines on stderr would scribble over the screen; route them to Textual's devtools console instead.
    saved_handlers = root.handlers[:]
    root.handlers = [TextualHandler()]
    return_code: int | None = None
    try:
        return_code = app.run()
    finally:
        root.handlers = saved_handlers
        if app.summary is None:
            # Signals, a lost terminal or a crash leave the app without finishing: do it here.
            session.finish()
        app.dashboard_done.set()
    if app.interrupted or (return_code not in (None, EXIT_OK)):
        return EXIT_INTERRUPTED
    return EXIT_OK
