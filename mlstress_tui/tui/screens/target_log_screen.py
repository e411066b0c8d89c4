"""The `l` overlay: the tail of what the target printed or logged (target.log), never drawn over the dashboard."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

TAIL_BYTES = 16 * 1024
TAIL_LINES = 60


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


class TargetLogScreen(ModalScreen[None]):
    """The newest lines of the run's target.log; escape or l closes it."""

    BINDINGS = [Binding("escape,l", "dismiss", "Close", id="close-target-log")]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path

    def compose(self) -> ComposeResult:
        lines = read_tail(self._path)
        body = [Content.styled(f"{self._path}: the last {len(lines)} lines the target wrote", "bold"), Content("")]
        body += [Content(line) for line in lines] or [Content.styled("the target has written nothing", "dim")]
        body += [Content(""), Content.styled("escape or l closes this", "dim")]
        with VerticalScroll(id="help-body"):
            yield Static(Content("\n").join(body), id="help-text")
