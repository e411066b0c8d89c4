"""Live numbers side by side: the last second and the whole run."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.tui.format import DASH, fmt_count, fmt_ms, fmt_rate

_LABEL_WIDTH = 19
_COLUMN_WIDTH = 11


def _row(label: str, interval: str, total: str, *, style: str = "") -> Content:
    # Right-aligned columns, with each pad trailing the segment before it: SVG renderers (rsvg) drop a
    # segment's leading spaces, which would left-align the numbers in a screenshot.
    return Content.assemble(
        (label.ljust(_LABEL_WIDTH) + " " * (_COLUMN_WIDTH - len(interval)), "dim"),
        (interval + " " * (_COLUMN_WIDTH - len(total)), style),
        (total, style),
    )


def _errors_cell(stats: IntervalStats | None) -> str:
    if stats is None or stats.requests == 0:
        return DASH
    return f"{fmt_count(stats.errors)} {stats.errors / stats.requests:.1%}"


def _wait_cell(stats: IntervalStats | None, value: float | None) -> str:
    """A pool wait figure, or "owned" where every user held its own connection (0 by construction, not measured)."""
    return "owned" if stats is not None and stats.connections_owned else fmt_ms(value)


class StatsPanel(Static):
    """Throughput, latency percentiles, pool wait and errors: last ~1 s against cumulative."""

    def on_mount(self) -> None:
        self.border_title = "live stats"
        self.show(None, None, open_loop=False)

    def show(self, interval: IntervalStats | None, total: IntervalStats | None, *, open_loop: bool,
             run_throughput: float | None = None) -> None:
        """`run_throughput`: the run's throughput as the session computes it (requests over load time)."""
        empty = {"p50": None, "p95": None, "p99": None, "p999": None, "max": None}
        now = interval.latency.summary_ms() if interval else empty
        run = total.latency.summary_ms() if total and total.requests else empty
        wait_now = interval.pool_wait.summary_ms() if interval else empty
        wait_run = total.pool_wait.summary_ms() if total and total.requests else empty
        stall_now = interval.hiccup.summary_ms() if interval else empty
        stall_run = total.hiccup.summary_ms() if total else empty
        rows = [
            Content.assemble(("".ljust(_LABEL_WIDTH) + " " * (_COLUMN_WIDTH - len("last 1 s"))),
                             ("last 1 s" + " " * (_COLUMN_WIDTH - len("whole run")), "bold"), ("whole run", "bold")),
            _row("throughput req/s", fmt_rate(interval.throughput_rps if interval else None),
                 fmt_rate(run_throughput if total and total.requests else None), style="bold"),
            _row("requests", fmt_count(interval.requests if interval else None),
                 fmt_count(total.requests if total else None)),
            _row("latency p50 ms", fmt_ms(now["p50"]), fmt_ms(run["p50"])),
            _row("latency p95 ms", fmt_ms(now["p95"]), fmt_ms(run["p95"]), style="bold"),
            _row("latency p99 ms", fmt_ms(now["p99"]), fmt_ms(run["p99"])),
            _row("latency p99.9 ms", fmt_ms(now["p999"]), fmt_ms(run["p999"])),
            _row("latency max ms", fmt_ms(now["max"]), fmt_ms(run["max"])),
            _row("pool wait p95 ms", _wait_cell(interval, wait_now["p95"]), _wait_cell(total, wait_run["p95"])),
            _row("pool wait max ms", _wait_cell(interval, wait_now["max"]), _wait_cell(total, wait_run["max"])),
            _row("errors", _errors_cell(interval), _errors_cell(total)),
            # The workers' own timer lateness: delay the tool or the machine adds to every request.
            _row("harness lag p99 ms", fmt_ms(stall_now["p99"]), fmt_ms(stall_run["p99"])),
        ]
        if open_loop:
            rows.append(_row("late starts", fmt_count(interval.late_starts if interval else None),
                             fmt_count(total.late_starts if total else None)))
        content = Content("\n").join(rows)
        if content == getattr(self, "_content", None):
            return
        # A re-layout costs more than the repaint; only a change in the number of rows needs one.
        relayout = len(rows) != getattr(self, "_rows", 0)
        self._content, self._rows = content, len(rows)
        self.update(content, layout=relayout)
