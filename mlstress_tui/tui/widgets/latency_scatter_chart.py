"""Latency against the requested user's event count (log x): heavy users and the latency they cause."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlstress_tui.tui.widgets.dashboard_chart import DashboardChart, log_ticks, row_ticks

# plotext draws every point it is given; a few hundred is plenty for a terminal-sized chart.
MAX_POINTS = 400
LOG_Y_SPREAD = 50.0


class LatencyScatterChart(DashboardChart):
    """A capped sample of (event count, latency) pairs; users with no events cannot sit on a log axis."""

    def show(self, points: Sequence[tuple[float, float]], *, generation: int, breach_events: int | None = None,
             open_loop: bool = False, force: bool = False) -> None:
        """`breach_events`: the event count past which users break the SLA, drawn as a vertical line; in the open
        loop a request's latency counts from when it was due, which the title says."""
        if not self.needs_redraw((generation, len(points), breach_events, open_loop, self.size.height), force=force):
            return
        points = list(points)
        positive = [(events, latency) for events, latency in points if events > 0 and latency > 0]
        hidden = len(points) - len(positive)
        title = "latency from due time vs events" if open_loop else "latency vs events"
        # Zero events has no place on a log axis: say how many were left out rather than fake a position.
        self.border_subtitle = f"{hidden} at 0 events not shown" if hidden else ""
        if not positive:
            if points:
                self.border_subtitle = "this target reports no event counts"
            self.no_data(title, "no samples yet" if not points else "no event counts")
            return
        step = max(1, math.ceil(len(positive) / MAX_POINTS))
        sample = positive[::step]
        xs = [math.log10(events) for events, _ in sample]
        ys = [latency for _, latency in sample]
        # A few heavy users can sit orders of magnitude above the rest: then y goes log too.
        log_y = max(ys) / min(ys) > LOG_Y_SPREAD
        self.begin(title + (" (log y)" if log_y else ""))
        self.plt.scatter(xs, [math.log10(y) for y in ys] if log_y else ys, marker="dot", color=self.colour("primary"))
        rows = self.plot_rows(label_rows=1)
        if log_y:
            self.plt.yticks(*log_ticks(min(ys), max(ys), " ms", max_ticks=max(2, rows // 2)))
        else:
            # From zero, every label with its unit: 1.1 s above 950 ms reads as what it is.
            positions, labels, top = row_ticks(max(ys), rows, " ms")
            self.plt.yticks(positions, labels)
            self.plt.ylim(0, top)
        low, high = min(events for events, _ in sample), max(events for events, _ in sample)
        positions, labels = log_ticks(low, max(high, low * 10), max_ticks=self.max_ticks(5))
        self.plt.xticks(positions, labels)
        self.plt.xlim(positions[0], positions[-1])
        if breach_events:
            self.plt.vline(math.log10(breach_events), color=self.colour("error"))
        self.plt.xlabel("events per user (log)")
        self.refresh()
