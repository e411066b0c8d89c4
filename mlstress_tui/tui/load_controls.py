"""The keys that turn the load (level, loop, ramp, pause): when each may apply, what it does, what the operator is told.

The dashboard's actions call these and put the returned line on the message
line; nothing here draws. The rule for when a key applies is the one help,
the footer and the command palette all read (`why_not`).
"""

from __future__ import annotations

from collections.abc import Callable

from mlstress_tui.load.limits import MIN_CONCURRENCY, MIN_RATE
from mlstress_tui.results.kinds import CLOSED, OPEN, LoadMode
from mlstress_tui.session import RampController, RunSession
from mlstress_tui.session.ramp_controller import level_name
from mlstress_tui.session.run_session import OPEN_START_SHARE
from mlstress_tui.tui.format import fmt_rate
from mlstress_tui.tui.level_keys import LevelChange

# The dashboard's states: the session's (running, paused, ramping, finished) and the app's own around them.
STARTING = "starting"
RUNNING = "running"
PAUSED = "paused"
RAMPING = "ramping"
STOPPING = "stopping"
FINISHED = "finished"

# Actions that change the load; they cannot apply once the run is over or while it starts or stops.
LOAD_ACTIONS = {"more", "fewer", "double", "halve", "toggle_mode", "toggle_ramp", "toggle_pause"}
# Actions the ramp owns while it runs.
RAMP_OWNED = {"more", "fewer", "double", "halve", "toggle_mode"}


def why_not(action: str, *, state: str, ended: bool, mode: str, level: float) -> str:
    """Why a key cannot apply now (help shows it beside the dimmed key), empty when it can."""
    if action not in LOAD_ACTIONS:
        return ""
    if ended or state in (FINISHED, STOPPING):
        return "the run has ended"
    if state == STARTING:
        return "the run is starting"
    if action in RAMP_OWNED and state == RAMPING:
        return "the ramp sets the level: r stops it"
    if action == "toggle_ramp" and state == PAUSED:
        return "paused: p resumes first"
    if action in ("fewer", "halve"):
        floor = MIN_RATE if mode == OPEN else MIN_CONCURRENCY
        if level <= floor:
            return "already at the lowest level"
    return ""


def level_said(change: LevelChange) -> str:
    """A level key's change, as the message line says it."""
    if change.mode == OPEN:
        return f"rate {fmt_rate(change.before)} → {fmt_rate(change.after)} req/s ({change.how})"
    return f"users {int(change.before)} → {int(change.after)} ({change.how})"


class LoadControls:
    """The session's knobs as the dashboard's keys turn them; each returns what the message line says."""

    def __init__(self, session: RunSession) -> None:
        self.session = session

    def toggle_mode(self) -> str:
        """`m`: the other loop; the open loop starts at a share of what the last settled level measured."""
        session = self.session
        new_mode = CLOSED if session.level.mode == OPEN else OPEN
        start = session.open_loop_start() if new_mode == OPEN else None
        session.set_mode(LoadMode(new_mode))
        level = session.level
        if new_mode == OPEN and start is not None:
            return (f"open loop at {fmt_rate(level.rate or 0)} req/s: {OPEN_START_SHARE:.0%} of "
                    f"{fmt_rate(start.measured_rps)} req/s, the median second of {start.seconds:.0f} s at "
                    f"{level_name(start.mode, start.level)}; said here if the queue does not drain")
        if new_mode == OPEN:
            return (f"open loop at {fmt_rate(level.rate or 0)} req/s (no level had settled to start from); "
                    "said here if the queue does not drain")
        return f"closed loop, {level_name(CLOSED, level.concurrency)}"

    def toggle_ramp(self, *, ramping: bool, on_end: Callable[[RampController], None]) -> str:
        """`r`: stop the ramp that runs, or start one from the level that stands (`on_end` hears how it ended)."""
        session = self.session
        if ramping:
            ramp = session.ramp
            session.stop_ramp()
            return self.ramp_done(ramp) if ramp is not None else "ramp stopped"
        plan = session.start_ramp(on_end=on_end).plan
        factor = f"×{plan.factor:g}" if plan.factor else f"+{plan.step:g}"
        return (f"ramp: {factor} every {plan.step_duration_s:g} s from "
                f"{level_name(plan.mode, plan.start)} until past the cliff (SLA p95 {plan.sla_p95_ms:g} ms); "
                "down by halves if this level already breaks it")

    def ramp_done(self, ramp: RampController) -> str:
        level = self.session.level
        return f"{ramp.progress()}. The load stands at {level_name(level.mode, level.value)}"

    def toggle_pause(self, *, paused: bool) -> str:
        """`p`: pause or resume the load."""
        if paused:
            self.session.resume()
            return "resumed"
        self.session.pause()
        return "paused: no requests are sent"
