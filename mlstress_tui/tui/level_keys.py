"""The level keys (`+ - ] [`): a press or a burst of them, coalesced into one change a clock tick.

A held key or a pasted burst of 200 presses is one change sent once per
clock tick, so the screen never stalls on them; the level asked for is
clamped by the session's one rule, never a rule of the screen's own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlstress_tui.results.kinds import OPEN, LoadMode
from mlstress_tui.session import RunSession

# The open loop's + and - move the rate by this factor.
RATE_STEP = 1.10


@dataclass(frozen=True)
class LevelChange:
    """One change sent: the loop, the level before and after, and what asked for it."""

    mode: LoadMode
    before: float
    after: float
    how: str


class LevelKeys:
    """Pending level presses for one session, applied at most once per `min_interval_s`."""

    def __init__(self, session: RunSession, min_interval_s: float) -> None:
        self._session = session
        self._min_interval_s = min_interval_s
        self._pending: tuple[LoadMode, float, str] | None = None
        self._presses = 0
        self._applied_at = float("-inf")
        # The level last asked for, shown until the engine reports it (a key applies at the next tick boundary).
        self.requested: tuple[LoadMode, float] | None = None

    @property
    def pending(self) -> bool:
        """A level key pressed since the last clock tick, not yet sent."""
        return self._pending is not None

    def level_now(self) -> float:
        """What the next press starts from: the pending level, else the level asked for, else the commanded one."""
        if self._pending is not None:
            return self._pending[1]
        level = self._session.level
        if self.requested is not None and self.requested[0] == level.mode:
            return self.requested[1]
        return level.value

    def step(self, direction: str) -> LevelChange | None:
        """`more`, `fewer`, `double` or `halve` from where the level stands; the change if it was sent at once."""
        mode = self._session.level.mode
        level = self.level_now()
        if direction == "more":
            new, how = (level * RATE_STEP, "+10%") if mode == OPEN else (level + 1, "+1")
        elif direction == "fewer":
            new, how = (level / RATE_STEP, "-10%") if mode == OPEN else (level - 1, "-1")
        elif direction == "double":
            new, how = level * 2, "×2"
        else:
            new, how = level / 2, "÷2"
        self._pending = (mode, self._session.clamp_level(mode, new), how)
        self._presses += 1
        # One press applies at once; a burst is one change a clock tick.
        if time.monotonic() - self._applied_at >= self._min_interval_s:
            return self.apply()
        return None

    def apply(self) -> LevelChange | None:
        """Send what is pending (the clock calls this every tick); the change, None when nothing was sent."""
        if self._pending is None:
            return None
        (mode, level, how), presses = self._pending, self._presses
        self._pending, self._presses = None, 0
        self._applied_at = time.monotonic()
        if mode != self._session.level.mode:
            return None  # the loop changed under a stale key press
        before = self.level_now()
        self._session.set_level(level)
        self.requested = (mode, level)
        return LevelChange(mode, before, level, how if presses == 1 else f"{presses} key presses")

    def settled(self) -> None:
        """The engine reports what was asked: stop showing the request apart."""
        level = self._session.level
        if self.requested is not None and self.requested == (level.mode, level.value):
            self.requested = None

    def forget(self) -> None:
        self._pending, self._presses, self.requested = None, 0, None
