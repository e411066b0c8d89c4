"""Latency distribution at the current level, on log-spaced buckets, with p50/p95/p99 marked.

The y axis is the share of requests on even, round ticks from 0. Empty
buckets draw nothing; a bucket too small to fill half a row is a low mark on
the axis, not a block as tall as a tenth of the requests.
"""

from __future__ import annotations

import math

from mlstress_tui.results.histogram import LatencyHistogram, log_edges_ms
from mlstress_tui.tui.format import fmt_count
from mlstress_tui.tui.widgets.dashboard_chart import DashboardChart, log_ticks, round_sig, row_ticks

# Finer buckets only where there is room for them: plotext needs about two columns a bar.
WIDE_CHART = 70
# Beside a baseline: at least this many buckets across the two runs' range.
BASE_BINS = 20


class LatencyHistogramChart(DashboardChart):
    """Request shares per log-spaced latency bucket (x is log10 of milliseconds)."""

    def show(self, histogram: LatencyHistogram | None, level_label: str, sla_p95_ms: float,
             *, waiting: str = "no requests yet", base: LatencyHistogram | None = None, base_name: str = "base",
             force: bool = False) -> None:
        """`waiting`: what the chart says while there is nothing to draw at this level; `base`: a baseline run's
        histogram, drawn as a muted line over the same buckets."""
        self._shown = (histogram, level_label, sla_p95_ms, waiting, base, base_name)
        title = f"latency · {level_label}"
        if not histogram or histogram.count == 0:
            if self.needs_redraw(("empty", title, waiting), force=force):
                self.border_subtitle = ""
                self.no_data(title, waiting)
            return
        per_decade = 10 if self.size.width >= WIDE_CHART else 5
        before = base if base is not None and base.count else None
        if before is None:
            edges, counts = histogram.log_bins_ms(per_decade=per_decade)
            base_share: list[float] = []
        else:
            low, high = min(histogram.min_ns, before.min_ns), max(histogram.max_ns, before.max_ns)
            # Two runs a few tenths of a millisecond apart must not share a bucket: as many as the width holds.
            decades = max(math.log10(max(high, 1) / max(low, 1)), 0.1)
            per_decade = max(per_decade, math.ceil(max(BASE_BINS, (self.size.width - 10) // 2) / decades))
            edges = log_edges_ms(low, high, per_decade)
            counts = histogram.counts_on(edges)
            base_share = (before.counts_on(edges) * 100.0 / before.count).tolist()
        summary = histogram.summary_ms()
        share = (counts * 100.0 / histogram.count).tolist()
        # Redraw only when what the chart shows moved: bar heights to 1 % (a row is several), percentiles
        # to 2 digits.
        shape = tuple(round(value) for value in share)
        marks = tuple(round_sig(summary[key]) for key in ("p50", "p95", "p99"))
        if not self.needs_redraw((title, per_decade, self.max_ticks(), self.size.height, float(edges[0]), shape,
                                  marks, base_name, tuple(round(value) for value in base_share)), force=force):
            return
        log_edges = [math.log10(edge) for edge in edges]
        centres = [(a + b) / 2 for a, b in zip(log_edges, log_edges[1:])]
        self.begin(title)
        self.border_subtitle = (f"n={fmt_count(histogram.count)} [$success]│[/]p50 [$warning]│[/]p95 "
                                f"[$error]│[/]p99")
        rows = self.plot_rows()
        positions, labels, top = row_ticks(max(share + base_share), rows)
        half_row = top / max(rows - 1, 1) / 2
        bars = [(x, y) for x, y in zip(centres, share) if y >= half_row]
        specks = [(x, 0.0) for x, y in zip(centres, share) if 0 < y < half_row]
        if bars:
            xs, ys = zip(*bars)
            self.plt.bar(list(xs), list(ys), width=0.8 / per_decade, color=self.colour("primary"))
        if specks:
            xs, ys = zip(*specks)
            self.plt.scatter(list(xs), list(ys), marker="▁", color=self.colour("primary"))
        if before is not None:
            muted = self.colour("foreground-muted")
            self.plt.plot(centres, base_share, marker="braille", color=muted)
            marked = [(x, y) for x, y in zip(centres, base_share) if y >= half_row]
            if marked:
                self.plt.scatter([x for x, _ in marked], [y for _, y in marked], marker="◇", color=muted)
            base_p95 = before.percentile_ms(95)
            if base_p95:
                self.plt.vline(math.log10(base_p95), color=muted)
            self.border_subtitle = (f"[$foreground-muted]◇[/]{base_name} n={fmt_count(before.count)} "
                                    f"[$foreground-muted]│[/]p95 · [$primary]█[/]n={fmt_count(histogram.count)} "
                                    f"[$success]│[/]p50 [$warning]│[/]p95 [$error]│[/]p99")
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
            histogram, label, sla, waiting, base, base_name = self._shown
            self.show(histogram, label, sla, waiting=waiting, base=base, base_name=base_name, force=True)
