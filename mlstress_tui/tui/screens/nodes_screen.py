"""The `n` overlay of a Ray run: per node, its actors, the load offered and achieved, p99, verdict and liveness."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from mlstress_tui.session.headless_printer import node_lines

REFRESH_S = 1.0


class NodesScreen(ModalScreen[None]):
    """Refreshed once a second from the engine's per-node figures; escape or n closes it."""

    BINDINGS = [Binding("escape,n", "dismiss", "Close", id="close-nodes")]

    def __init__(self, report: Callable[[], list[dict] | None]) -> None:
        super().__init__()
        self._report = report

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(self._render_nodes(), id="help-text")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self._refresh)

    def _refresh(self) -> None:
        self.query_one("#help-text", Static).update(self._render_nodes())

    def _render_nodes(self) -> Content:
        nodes = self._report() or []
        lost = [f"{node['node']}: worker {entry['worker']} lost carrying {entry['carried']} ({entry['how']})"
                for node in nodes for entry in node["lost"]]
        offsets = [f"{node['node']} {node['clock_offset_ms']:+.3f} ms" for node in nodes
                   if node.get("clock_offset_ms") is not None]
        body = [Content.styled(f"nodes: {len(nodes)}, actors: {sum(node['actors'] for node in nodes)}", "bold"),
                Content("")]
        body += [Content(line[2:]) for line in node_lines(nodes)]  # the table without its indent
        if offsets:
            body += [Content(""), Content("clock offsets at start: " + ", ".join(offsets))]
        body += [Content(""), *(Content.styled(line, "bold") for line in lost)]
        body += [Content.styled("escape or n closes this", "dim")]
        return Content("\n").join(body)
