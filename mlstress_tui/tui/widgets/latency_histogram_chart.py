"""Latency distribution at the current level, on log-spaced buckets, with p50/p95/p99 marked.

The y axis is the share of requests on even, round ticks from 0. Empty
buckets draw nothing; a bucket too small to fill half a row is a low mark on
the axis, not a block as tall as a tenth of the requests.
"""

from __future__ import annotations

import math

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.tui.format import fmt_count
from mlstress_tui.tui.widgets.dashboard_chart import DashboardChart, log_ticks, round_sig, row_ticks

# Finer buckets only where there is room for them: plotext needs about two columns a bar.
WIDE_CHART = 70


class LatencyHistogramChart(DashboardChart):
    """Request shares per log-spaced latency bucket (x is log10 of milliseconds)."""

    def show(self, histogram: LatencyHistogram | None, level_label: str, sla_p95_ms: float,
             *, waiting: str = "no requests yet", force: bool = False) -> None:
        """`waiting`: what the chart says while there is nothing to draw at this level."""
        self._shown = (histogram, level_label, sla_p95_ms, waiting)
        title = f"latency · {level_label}"
        if not histogram or histogram.count == 0:
            if self.needs_redraw(("empty", title, waiting), force=force):
                self.border_subtitle = ""
                self.no_data(title, waiting)
            return
        per_decade = 10 if self.size.width >= WIDE_CHART else 5
        edges, counts = histogram.log_bins_ms(per_decade=per_decade)
        summary = histogram.summary_ms()
        share = (counts * 100.0 / histogram.count).tolist()
        # Redraw only when what the chart shows moved: bar heights to 1 % (a row is several), percentiles
        # to 2 digits.
        shape = tuple(round(value) for value in share)
        marks = tuple(round_sig(summary[key]) for key in ("p50", "p95", "p99"))
        if not self.needs_redraw((title, per_decade, self.max_ticks(), self.size.height, float(edges[0]), shape,
                                  marks), force=force):
            return
        log_edges = [math.log10(edge) for edge in edges]
        centres = [(a + b) / 2 for a, b in zip(log_edges, log_edges[1:])]
        self.begin(title)
        self.border_subtitle = (f"n={fmt_count(histogram.count)} [$success]│[/]p50 [$warning]│[/]p95 "
                                f"[$error]│[/]p99")
        rows = self.plot_rows()
        positions, labels, top = row_ticks(max(share), rows)
        half_row = top / max(rows - 1, 1) / 2
        bars = [(x, y) for x, y in zip(centres, share) if y >= half_row]
        specks = [(x, 0.0) for x, y in zip(centres, share) if 0 < y < half_row]
        if bars:
            xs, ys = zip(*bars)
            self.plt.bar(list(xs), list(ys), width=0.8 / per_decade, color=self.colour("primary"))
        if specks:
            xs, ys = zip(*specks)
            self.plt.scatter(list(xs), list(ys), marker="▁", color=self.colour("primary"))
        for key, variable in (("p50", "success"), ("p95", "warning"), ("p99", "error")):
            if summary[key]:
                self.plt.vline(math.log10(summary[key]), color=self.colour(variable))
        ticks, tick_labels = log_ticks(float(edges[0]), float(edges[-1]), " ms", max_ticks=self.max_ticks())
        self.plt.xticks(ticks, tick_labels)
        self.plt.xlim(log_edges[0], log_edges[-1])
        self.plt.yticks(positions, [f"{label}%" for label in labels])
        self.plt.ylim(0, top)
        self.refresh()

    def on_resize(self) -> None:
        # The bucket width and the rows depend on the chart's size.
        if getattr(self, "_shown", None) is not None:
            histogram, label, sla, waiting = self._shown
            self.show(histogram, label, sla, waiting=waiting, force=True)
