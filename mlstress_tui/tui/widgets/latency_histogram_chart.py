"""Latency distribution at the current level, on log-spaced buckets, with p50/p95/p99 marked."""

from __future__ import annotations

import math

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.tui.format import fmt_count, fmt_ms
from mlstress_tui.tui.widgets.dashboard_chart import DashboardChart, log_ticks, round_sig

# Finer buckets only where there is room for them: plotext needs about two columns a bar.
WIDE_CHART = 70


class LatencyHistogramChart(DashboardChart):
    """Request counts per log-spaced latency bucket (x is log10 of milliseconds)."""

    def show(self, histogram: LatencyHistogram | None, level_label: str, sla_p95_ms: float,
             *, force: bool = False) -> None:
        self._shown = (histogram, level_label, sla_p95_ms)
        title = f"latency · {level_label}"
        if not histogram or histogram.count == 0:
            if self.needs_redraw(("empty", title), force=force):
                self.no_data(title, "no requests yet")
            return
        per_decade = 10 if self.size.width >= WIDE_CHART else 5
        edges, counts = histogram.log_bins_ms(per_decade=per_decade)
        summary = histogram.summary_ms()
        # Redraw only when what the chart shows moved: bar heights to 1 % (a row is several), percentiles
        # to 2 digits.
        shape = tuple(round(share) for share in (counts * 100.0 / histogram.count).tolist())
        marks = tuple(round_sig(summary[key]) for key in ("p50", "p95", "p99"))
        if not self.needs_redraw((title, per_decade, self.max_ticks(), float(edges[0]), shape, marks), force=force):
            return
        log_edges = [math.log10(edge) for edge in edges]
        centres = [(a + b) / 2 for a, b in zip(log_edges, log_edges[1:])]
        # The p95 is in the legend's marker and the stats panel; the title names what is shown, short enough to fit.
        self.begin(title)
        self.border_subtitle = (f"n={fmt_count(histogram.count)} [$success]│[/]p50 [$warning]│[/]p95 "
                                f"[$error]│[/]p99")
        share = (counts * 100.0 / histogram.count).tolist()
        self.plt.bar(centres, share, width=0.8 / per_decade, color=self.colour("primary"))
        for key, variable in (("p50", "success"), ("p95", "warning"), ("p99", "error")):
            if summary[key]:
                self.plt.vline(math.log10(summary[key]), color=self.colour(variable))
        positions, labels = log_ticks(float(edges[0]), float(edges[-1]), " ms", max_ticks=self.max_ticks())
        self.plt.xticks(positions, labels)
        self.plt.xlim(log_edges[0], log_edges[-1])
        self.plt.ylabel("% of requests")
        self.refresh()

    def on_resize(self) -> None:
        # The bucket width depends on the chart's width.
        if getattr(self, "_shown", None) is not None:
            self.show(*self._shown, force=True)
