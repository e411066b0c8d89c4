"""The line beside the SLA light where the dashboard answers a key or warns: never over a chart, gone after a while.

A message too long for the line is cut with a pointer to the run log (`l`),
which keeps every message whole.
"""

from __future__ import annotations

from textual.content import Content
from textual.timer import Timer
from textual.widgets import Static


class MessageLine(Static):
    """The newest message, for a few seconds; a warning stays in the warning colour."""

    _timer: Timer | None = None
    _message: str = ""

    @property
    def busy(self) -> bool:
        """A message is showing."""
        return bool(self._message)

    def say(self, message: str, *, seconds: float, warning: bool = False) -> None:
        self._message = message
        self.set_class(warning, "-warning")
        self.set_class(True, "-shown")
        self._draw()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(seconds, self.clear)

    def clear(self) -> None:
        self._message = ""
        self.set_class(False, "-shown", "-warning")
        self.update("")

    def on_resize(self) -> None:
        if self._message:
            self._draw()

    def _draw(self) -> None:
        width = self.content_size.width
        text = Content(self._message)
        if width and text.cell_length > width:
            text = Content.assemble(text.truncate(max(width - 6, 1), ellipsis=True), (" (l)", "bold"))
        self.update(text)
