"""The `l` overlay: the run's events in full (faults, ramp steps, load changes) and the tail of target.log.

The errors panel gives each event one line, cut to its width; here each is
whole, wrapped, newest last, beside what the target printed (never drawn
over the dashboard).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from mlstress_tui.tui.screens.overlay import Overlay

TAIL_BYTES = 16 * 1024
TAIL_LINES = 60
# The box's text is 70 columns wide at most; an event's words wrap under its own column, not under its time.
TEXT_WIDTH = 70
TIME_WIDTH = 11


def read_tail(path: Path) -> list[str]:
    """The last lines of a file (only its last few KB are read), empty when there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - TAIL_BYTES, 0))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line read is cut
    return lines[-TAIL_LINES:]


class RunLogScreen(Overlay):
    """The run's events, each line whole, then the newest lines of target.log; escape or l closes it."""

    OWN_KEY = "l"
    TITLE_TEXT = "run log"

    def __init__(self, events: Sequence[tuple[float, str, bool]], target_log: Path) -> None:
        """`events`: (seconds into the run, the line, whether it is a fault), oldest first."""
        super().__init__()
        self._events = events
        self._path = target_log

    def body(self) -> ComposeResult:
        lines = [Content.styled("events", "bold")]
        for t, line, fault in self._events:
            style = "$warning" if fault else ""
            wrapped = textwrap.wrap(line, TEXT_WIDTH - TIME_WIDTH) or [""]
            lines.append(Content.assemble((f"{t:7.1f} s  ", "dim"), (wrapped[0], style)))
            # The indent is a segment of its own: an SVG renderer drops a segment's leading spaces.
            lines += [Content.assemble(" " * TIME_WIDTH, (more, style)) for more in wrapped[1:]]
        if not self._events:
            lines.append(Content.styled("nothing has happened yet: no fault, no ramp, no change of load", "dim"))
        tail = read_tail(self._path)
        lines += [Content(""), Content.styled(f"{self._path}: the last {len(tail)} lines the target wrote", "bold")]
        lines += [Content(line) for line in tail] or [Content.styled("the target has written nothing", "dim")]
        yield Static(Content("\n").join(lines), id="overlay-text")
