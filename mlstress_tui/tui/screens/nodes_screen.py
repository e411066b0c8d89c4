"""The `n` overlay of a Ray run: per node, its actors, the load offered and achieved, p99, verdict and liveness."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from mlstress_tui.session.headless_printer import node_lines
from mlstress_tui.tui.screens.overlay import Overlay

REFRESH_S = 1.0


class NodesScreen(Overlay):
    """Refreshed once a second from the session's per-node figures; escape or n closes it."""

    OWN_KEY = "n"
    TITLE_TEXT = "nodes"

    def __init__(self, report: Callable[[], list[dict] | None], run_verdict: Callable[[], str] | None = None) -> None:
        super().__init__()
        self._report = report
        self._run_verdict = run_verdict

    def body(self) -> ComposeResult:
        yield Static(self._render_nodes(), id="overlay-text")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self._refresh)

    def _refresh(self) -> None:
        self.query_one("#overlay-text", Static).update(self._render_nodes())

    def _render_nodes(self) -> Content:
        nodes = self._report() or []
        lost = [f"{node['node']}: worker {entry['worker']} lost carrying {entry['carried']} ({entry['how']})"
                for node in nodes for entry in node["lost"]]
        offsets = [f"{node['node']} {node['clock_offset_ms']:+.3f} ms" for node in nodes
                   if node.get("clock_offset_ms") is not None]
        actors = sum(node["actors"] for node in nodes)
        body = [Content.styled(f"{len(nodes)} node{'s' * (len(nodes) != 1)}, {actors} actor{'s' * (actors != 1)}",
                               "bold"), Content("")]
        verdict = self._run_verdict() if self._run_verdict is not None else None
        body += [Content(line[2:]) for line in node_lines(nodes, run_verdict=verdict)]  # the table without its indent
        if offsets:
            body += [Content(""), Content("clock offsets at start: " + ", ".join(offsets))]
        if lost:
            body += [Content(""), *(Content.styled(line, "bold") for line in lost)]
        return Content("\n").join(body)
