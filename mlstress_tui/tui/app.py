"""The live dashboard: the app keeps the clock, the keys, the themes, the overlays and the exit code.

On its clock it pumps the run session and hands the session's snapshot to the
dashboard screen (tui/screens/dashboard_screen.py), which draws it; keys turn
the session's knobs (level keys through tui/level_keys.py, the loop, ramp and
pause through tui/load_controls.py); signals and a lost
terminal are watched by tui/terminal_watch.py. It never reaches the engine.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.logging import TextualHandler
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from mlstress_tui.errors import EXIT_INTERRUPTED, EXIT_OK
from mlstress_tui.report.run_curve import RunCurve
from mlstress_tui.results.kinds import CLOSED
from mlstress_tui.session import RampController, RunSession
from mlstress_tui.session.run_acceptance import run_acceptance
from mlstress_tui.session.headless_printer import event_line
from mlstress_tui.tui.format import fmt_elapsed
from mlstress_tui.tui.keys import DASHBOARD_KEYS
from mlstress_tui.tui.level_keys import LevelChange, LevelKeys
from mlstress_tui.tui.load_controls import (FINISHED, PAUSED, RAMPING, STARTING, STOPPING, LoadControls, level_said,
                                            why_not)
from mlstress_tui.tui.screens.acceptance_screen import AcceptanceScreen
from mlstress_tui.tui.screens.dashboard_screen import DashboardScreen
from mlstress_tui.tui.screens.help_screen import HelpScreen, KeyRow
from mlstress_tui.tui.screens.nodes_screen import NodesScreen
from mlstress_tui.tui.screens.overlay import Overlay
from mlstress_tui.tui.screens.run_log_screen import RunLogScreen
from mlstress_tui.tui.terminal_watch import TerminalWatch
from mlstress_tui.tui.themes import DEFAULT_THEME, load_themes

log = logging.getLogger(__name__)

FINISH_WORKER = "finish-engine"
COMPACT_FOOTER_BELOW = 100
# Messages said on the message line, kept for the run log.
SAID_KEPT = 100
NODES_ONLY_WITH_RAY = "the per-node table is for a --ray run; this run's workers are local processes"


class DashboardApp(App[int]):
    """Live latency, throughput and errors of a load run, with keys to turn the load up and down."""

    TITLE = "mlstress-tui"
    # Absolute, so subclasses defined in other modules (benchmarks, tests) find it too.
    CSS_PATH = Path(__file__).parent / "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    BINDINGS = DASHBOARD_KEYS

    # Mirrors of the session's state; bindings=True re-evaluates check_action (and the footer) when they change.
    run_state: var[str] = var(STARTING, bindings=True)
    load_mode: var[str] = var(CLOSED.value, bindings=True)
    load_level: var[float] = var(0.0, bindings=True)
    show_heavy_users: var[bool] = var(False)
    shutting_down: var[bool] = var(False, bindings=True)

    def __init__(self, session: RunSession, *, theme: str | None = None,
                 refresh_hz: float = 4.0, chart_hz: float = 1.5, handle_signals: bool = False,
                 baseline: RunCurve | None = None) -> None:
        """`baseline`: a finished run whose level curve is drawn beside this run's (read once, before the start)."""
        super().__init__()
        self.session = session
        self.baseline = baseline
        self.refresh_hz = refresh_hz
        self.chart_hz = chart_hz
        self.handle_signals = handle_signals
        self.keys = LevelKeys(session, 1.0 / refresh_hz)
        self.controls = LoadControls(session)
        self.watch_terminal = TerminalWatch(self._on_signal)
        self._ramp_ended: RampController | None = None
        self.summary: dict[str, Any] | None = None
        self.summary_path: Path | None = None
        self.interrupted = False
        self.dashboard_done = threading.Event()
        self._requested_theme = theme
        self._theme_names: list[str] = []
        self._theme_problems: list[str] = []
        self._last_chart_at: float | None = None
        self._exit_code = EXIT_OK
        self._quit_requested = False
        self._finish_started = False
        self._screenshot_serial = 0
        # What the dashboard said (the message line), newest last, for the run log.
        self.said: deque[tuple[float, str, bool]] = deque(maxlen=SAID_KEPT)
        # The session's warnings said once when they appear (they stay in the errors panel while they hold).
        self._warned: dict[str, bool] = {"backlog": False, "point_missed": False}
        # Kept by reference: `App.screen` may be an overlay, and the stack is empty while the app shuts down.
        # It draws the session's first snapshot as it mounts: the first frame is never blank or half drawn.
        self.dashboard = DashboardScreen(session.snapshot, id="dashboard")
        self._register_themes()

    # ----------------------------------------------------------------- layout

    def get_default_screen(self) -> Screen[Any]:
        return self.dashboard

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
        for footer in self.dashboard.query(Footer):
            footer.compact = self.size.width < COMPACT_FOOTER_BELOW

    def on_mount(self) -> None:
        for problem in self._theme_problems:
            self.say(f"theme file skipped: {problem}", seconds=8, warning=True)
        if self._requested_theme and self._requested_theme not in self.available_themes:
            self.say(f"unknown theme {self._requested_theme!r}: using {self.theme}. "
                     f"Known: {', '.join(self._theme_names)}", seconds=8, warning=True)
        self.theme_changed_signal.subscribe(self, lambda _theme: self._draw_charts(force=True))
        if self.handle_signals:
            self.watch_terminal.install()
        self.set_interval(1.0 / self.refresh_hz, self._on_clock, name="dashboard-clock")
        if self.baseline is not None:
            self.say(f"baseline {self.baseline.name} ({self.baseline.path}): its levels are the muted ◇ curve on "
                     "the level charts", seconds=8)

    def on_dashboard_screen_ready(self) -> None:
        self.dashboard.show_heavy_users(self.show_heavy_users)
        self._on_clock()

    def _on_signal(self, signum: int) -> None:
        # Leave the screen at once; run_dashboard finishes the run once the app is gone.
        log.warning("received %s: stopping the run", signal.Signals(signum).name)
        self._mark_interrupted()
        if signum == signal.SIGHUP:
            self.watch_terminal.finish_beside_shutdown(self.session.finish, self.dashboard_done)
        self.exit(return_code=EXIT_INTERRUPTED)

    # -------------------------------------------------------------- messages

    def say(self, message: str, *, seconds: float = 4.0, warning: bool = False) -> None:
        """A short message where the operator is looking: the dashboard's message line (never over a chart), and a
        toast only over an overlay that stays open. Every message is kept for the run log (`l`)."""
        log.info(message)
        self.said.append((self.session.elapsed_s, message, warning))
        if self.dashboard.ready:
            self.dashboard.say(message, seconds=seconds, warning=warning)
        screen = self.screen_stack[-1] if self.screen_stack else None
        if isinstance(screen, Overlay) and not screen.closing:
            self.notify(message, severity="warning" if warning else "information", timeout=seconds)

    def _say_warnings(self, snapshot: Any) -> None:
        """Say each of the session's warnings once, when it appears, on a free message line (the answer to a key is
        not pushed off it); the errors panel keeps the warning while it holds."""
        for name in self._warned:
            line = getattr(snapshot, name)
            if not line:
                self._warned[name] = False
            elif not self._warned[name] and not self.dashboard.message.busy:
                self.say(line, seconds=10, warning=True)
                self._warned[name] = True

    # ------------------------------------------------------------------ clock

    def _on_clock(self) -> None:
        """Pump the session's ticks and redraw its snapshot: the numbers every tick, the charts every 1/chart_hz s."""
        screen = self.dashboard
        if not screen.ready or not screen.is_attached:
            return  # Not mounted yet, or the app is shutting down and its screen is gone.
        if self.watch_terminal.lost():
            self._on_signal(signal.SIGHUP)
            return
        if self._finish_started:
            # The finish worker drains the last ticks into the session: only the header moves.
            with self.batch_update():
                self._sync_state()
                screen.show_header(self.session.snapshot, state=self.run_state, level=None)
            return
        self._say_level(self.keys.apply())
        ticks = self.session.pump()
        if self._ramp_ended is not None:
            ramp, self._ramp_ended = self._ramp_ended, None
            self.say(self.controls.ramp_done(ramp), seconds=12)
        snapshot = self.session.snapshot
        now = time.monotonic()
        charts_due = self._last_chart_at is None or now - self._last_chart_at >= 1.0 / self.chart_hz
        with self.batch_update():
            self._sync_state()
            screen.show_header(snapshot, state=self.run_state, level=self.keys.requested)
            if ticks or not self.session.totals.ticks:
                screen.show_numbers(snapshot, replace_stuck=self.session.replace_stuck)
                self._say_warnings(snapshot)
            if charts_due:
                self._last_chart_at = now
                self._draw_charts()
        if self.session.finished and not self._finish_started:
            self._start_finish()

    def _sync_state(self) -> None:
        session = self.session
        self.run_state = FINISHED if self.summary is not None else (
            STOPPING if self.shutting_down and session.state != FINISHED else session.state)
        self.keys.settled()
        level = session.level
        self.load_mode = level.mode.value
        requested = self.keys.requested
        self.load_level = requested[1] if requested is not None else level.value

    def _draw_charts(self, *, force: bool = False) -> None:
        self.dashboard.show_charts(self.session.snapshot, heavy_users=self.show_heavy_users,
                                   ticks=self.session.totals.ticks, base=self.baseline, force=force)

    # ------------------------------------------------------------- finishing

    def _start_finish(self) -> None:
        self._finish_started = True
        self.dashboard.banner.show_stopping()
        self._finish_session()

    @work(thread=True, name=FINISH_WORKER, exit_on_error=False, exclusive=True, group="finish")
    def _finish_session(self) -> dict[str, Any]:
        # Blocking: joins worker processes and writes summary.json. Never touches widgets.
        return self.session.finish()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != FINISH_WORKER:
            return
        screen = self.dashboard
        if event.state == WorkerState.SUCCESS:
            self.summary = event.worker.result or {}
            self.summary_path = Path(self.session.run_dir) / "summary.json"
            snapshot = self.session.snapshot
            with self.batch_update():
                self._sync_state()
                screen.show_header(snapshot, state=self.run_state, level=None)
                screen.show_numbers(snapshot, replace_stuck=self.session.replace_stuck)
                self._draw_charts()
                if self.session.write_errors:
                    screen.banner.show_failed(self.session.write_errors[0])
                else:
                    screen.banner.show_written(str(self.summary_path), snapshot.figures.requests,
                                               fmt_elapsed(snapshot.elapsed_s))
            log.info("summary written to %s", self.summary_path)
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            self.summary = {}
            screen.banner.show_failed(f"{type(error).__name__}: {error}")
            log.error("finishing the run failed: %r", error)
        else:
            return
        if self._quit_requested:
            self.exit(return_code=self._exit_code)

    # ---------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim (None) the keys that cannot apply in the current state; everything else stays live."""
        return None if self.why_not(action) else True

    def why_not(self, action: str) -> str:
        """Why a key cannot apply now (help shows it beside the dimmed key), empty when it can."""
        return why_not(action, state=self.run_state, ended=self.shutting_down or self.session.finished,
                       mode=self.load_mode, level=self.load_level)

    @property
    def controls_pending(self) -> bool:
        """A level key pressed since the last clock tick, not yet sent to the session."""
        return self.keys.pending

    def _say_level(self, change: LevelChange | None) -> None:
        if change is not None:
            self.load_level = change.after
            self.say(level_said(change), seconds=3)

    def action_more(self) -> None:
        self._say_level(self.keys.step("more"))

    def action_fewer(self) -> None:
        self._say_level(self.keys.step("fewer"))

    def action_double(self) -> None:
        self._say_level(self.keys.step("double"))

    def action_halve(self) -> None:
        self._say_level(self.keys.step("halve"))

    def action_toggle_mode(self) -> None:
        self._say_level(self.keys.apply())
        self.keys.forget()
        self.say(self.controls.toggle_mode(), seconds=8)
        self._sync_state()

    def action_toggle_ramp(self) -> None:
        self._say_level(self.keys.apply())
        ramping = self.run_state == RAMPING
        if ramping:
            self._ramp_ended = None  # said here, not again on the clock
        self.say(self.controls.toggle_ramp(ramping=ramping, on_end=self._on_ramp_end), seconds=6)
        self._sync_state()

    def _on_ramp_end(self, ramp: RampController) -> None:
        # Called from inside a pump (the clock, or the finish worker): the clock says it.
        self._ramp_ended = ramp

    def action_toggle_pause(self) -> None:
        self.say(self.controls.toggle_pause(paused=self.run_state == PAUSED), seconds=3)
        self._sync_state()

    def action_save_svg(self) -> None:
        # A screenshot is of what is on screen, not of a message about it: toasts and the message line go first,
        # the shot after the next frame.
        self.clear_notifications()
        if self.dashboard.ready:
            self.dashboard.message.clear()
        self.call_after_refresh(self._save_svg)

    def _save_svg(self) -> None:
        run_dir = Path(self.session.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._screenshot_serial += 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        filename = f"screenshot-{stamp}-{self._screenshot_serial}.svg"
        # Explicit path: the built-in screenshot command writes to ~/Downloads.
        path = self.save_screenshot(filename=filename, path=str(run_dir))
        self.say(f"screenshot: {path}", seconds=6)

    def action_next_theme(self) -> None:
        names = self._theme_names or [self.theme]
        index = names.index(self.theme) + 1 if self.theme in names else 0
        self.theme = names[index % len(names)]
        self.say(f"theme {self.theme}", seconds=2)

    def watch_show_heavy_users(self, showing: bool) -> None:
        if self.dashboard.ready:
            self.dashboard.show_heavy_users(showing)

    def action_heavy_users(self) -> None:
        self.show_heavy_users = not self.show_heavy_users
        self._draw_charts(force=True)

    def action_acceptance(self) -> None:
        session = self.session
        snapshot = session.snapshot
        ramp = session.ramp_report or (session.ramp.report() if session.ramp is not None else None)
        # The same points and knee as the dashboard's level charts.
        levels = snapshot.curve.as_ramp(session.sla_p95_ms)
        self.push_screen(AcceptanceScreen(run_acceptance(session.summary_so_far(), sla_p95_ms=session.sla_p95_ms,
                                                         ramp=ramp, outliers=snapshot.heavy_users, levels=levels)))

    def action_run_log(self) -> None:
        snapshot = self.session.snapshot
        lines = [(event.t, event_line(event), event.is_fault) for event in snapshot.events]
        lines += [(t, f"said: {message}", warning) for t, message, warning in self.said]
        lines.sort(key=lambda line: line[0])
        self.push_screen(RunLogScreen(lines, Path(self.session.run_dir) / "target.log"))

    def action_nodes(self) -> None:
        if self.session.node_report() is None:
            self.say(f"n: {NODES_ONLY_WITH_RAY}", seconds=5)
            return
        self.push_screen(NodesScreen(self.session.node_report,
                                     lambda: str(self.session.snapshot.harness.get("verdict"))))

    def help_rows(self) -> list[KeyRow]:
        """Every key the dashboard takes, dimmed with why when it cannot apply now."""
        rows = []
        local = self.session.node_report() is None
        for binding in DASHBOARD_KEYS:
            if binding.priority:
                continue
            why = NODES_ONLY_WITH_RAY if binding.action == "nodes" and local else self.why_not(binding.action)
            rows.append(KeyRow(binding.key_display or binding.key, binding.description, binding.tooltip or "",
                               enabled=not why, why=why))
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_rows(), self.session.sla_p95_ms))

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

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # The dashboard's own keys, minus the built-in screenshot (it writes to ~/Downloads).
        for command in super().get_system_commands(screen):
            if command.title not in ("Screenshot", "Quit"):
                yield command
        local = self.session.node_report() is None
        for binding in DASHBOARD_KEYS:
            if binding.priority or (binding.action == "nodes" and local) or self.why_not(binding.action):
                continue
            yield SystemCommand(f"{binding.description} ({binding.key_display or binding.key})", binding.tooltip,
                                lambda action=binding.action: self.run_action(action))


def run_dashboard(session: RunSession, *, theme: str | None, baseline: RunCurve | None = None) -> int:
    """Run the dashboard until q or a signal; the session is finished either way. 0, or 130 if interrupted."""
    app = DashboardApp(session, theme=theme, handle_signals=True, baseline=baseline)
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
