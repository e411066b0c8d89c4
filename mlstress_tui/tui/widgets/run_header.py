"""The two header lines: what is under load, with which data, at what level, for how long, in which state."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.results.units import counted
from mlstress_tui.tui.format import fmt_count, fmt_elapsed, fmt_elapsed_live, fmt_rate

_STATE_STYLE = {
    "running": "$success",
    "ramping": "$accent",
    "paused": "$warning",
    "stopping": "$warning",
    "starting": "$secondary",
    "finished": "$primary",
}


class RunHeader(Static):
    """Target, database, load mode and level, elapsed time and run state."""

    def show(self, *, target_info: dict[str, Any], mode: str, concurrency: int, rate: float | None,
             pool_size: int | None, elapsed_s: float, duration_s: float | None,
             requests_limit: int | None, state: str, note: str | None = None,
             running: int | None = None) -> None:
        """`running`: the users actually running, said beside the level when fewer could start than were asked."""
        target = f"{target_info.get('label', '?')} ({target_info.get('kind', '?')})"
        data = []
        if target_info.get("users") is not None:
            data.append(f"{fmt_count(target_info['users'])} users")
        if target_info.get("events") is not None:
            data.append(f"{fmt_count(target_info['events'])} events")
        if target_info.get("seed") is not None:
            data.append(f"seed {target_info['seed']}")
        # Spaces trail each segment, never lead one: SVG renderers (rsvg, cairosvg) drop a span's leading spaces.
        line1 = Content.assemble(("target ", "dim"), (target + "  ", "bold"))
        if data:
            line1 = Content.assemble(line1, ("db ", "dim"), " · ".join(data))

        if mode == "open":
            load = Content.assemble(("open loop ", "dim"), (f"{fmt_rate(rate)} req/s  ", "bold"))
        else:
            load = Content.assemble(("closed loop ", "dim"), (f"{counted(concurrency, 'user')}  ", "bold"))
            if running is not None and running < concurrency:
                load = Content.assemble(load, (f"({running} running)  ", "bold $error"))
        pool = "per user" if pool_size is None else str(pool_size)
        elapsed = fmt_elapsed_live(elapsed_s)
        if duration_s:
            elapsed += f" / {fmt_elapsed(duration_s)}"
        elif requests_limit:
            elapsed += f" (limit {fmt_count(requests_limit)} req)"
        style = _STATE_STYLE.get(state, "")
        line2 = Content.assemble(
            load, ("pool ", "dim"), pool + "  ", ("elapsed ", "dim"), elapsed + "  ",
            (f"● {state.upper()}  ", f"bold {style}".strip()),
        )
        if note:
            line2 = Content.assemble(line2, (note, "$accent"))
        content = Content("\n").join([line1, line2])
        if content != getattr(self, "_shown", None):
            self._shown = content
            self.update(content, layout=False)
