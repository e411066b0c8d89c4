"""Throughput at each load level visited: flat past the knee means more load buys only latency."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlstress_tui.analysis.ramp import UslFit
from mlstress_tui.tui.format import fmt_level
from mlstress_tui.tui.widgets.dashboard_chart import DashboardChart, LevelPoint, round_sig, row_ticks

# Label every level visited while they fit; past that plotext's own ticks read better.
MAX_LEVEL_TICKS = 6
# Points on the fitted USL curve: smooth at terminal resolution.
CURVE_POINTS = 60


class LevelThroughputChart(DashboardChart):
    """One point per level: x the concurrency (or offered rate), y the requests per second achieved; a baseline
    run's curve beside it."""

    def show(self, points: Sequence[LevelPoint], mode: str, current: float | None,
             knee: float | None, usl: UslFit | None, *, base: Sequence[LevelPoint] = (), base_name: str = "base",
             new_name: str = "this run", force: bool = False) -> None:
        """`points`: each level's figures (the session's), lowest level first; `base`: a baseline run's, drawn muted."""
        levels = [point for point in points if point.seconds > 0]
        before = [point for point in base if point.seconds > 0]
        signature = (mode, current, knee, self.size.height, usl is not None and (round_sig(usl.lam), round_sig(usl.sigma), round_sig(usl.kappa)),
                     tuple((s.level, round_sig(s.throughput_rps)) for s in levels), base_name, new_name,
                     tuple((s.level, round_sig(s.throughput_rps)) for s in before))
        if not self.needs_redraw(signature, force=force):
            return
        axis = "offered rate req/s" if mode == "open" else "concurrency"
        title = f"throughput vs {'rate' if mode == 'open' else 'users'}"
        if not levels and not before:
            self.no_data(title, "no level has settled yet")
            return
        xs = [stats.level for stats in levels]
        ys = [stats.throughput_rps for stats in levels]
        base_xs = [stats.level for stats in before]
        base_ys = [stats.throughput_rps for stats in before]
        every_x = sorted(set(xs + base_xs))
        self.begin(title)
        if mode == "open" and len(every_x) > 1:
            # Achieved equal to offered is the ideal; the gap is the overload.
            self.plt.plot(every_x, every_x, marker="braille", color=self.colour("secondary"))
        if len(base_xs) > 1:
            self.plt.plot(base_xs, base_ys, marker="braille", color=self.colour("foreground-muted"))
        if base_xs:
            self.plt.scatter(base_xs, base_ys, marker="◇", color=self.colour("foreground-muted"))
        curve: list[float] = []
        if usl is not None and len(xs) >= 3:
            # The Universal Scalability Law fitted to the levels: where throughput is heading.
            grid = np.linspace(min(xs), max(xs), CURVE_POINTS)
            curve = [float(value) for value in usl.throughput(grid)]
            self.plt.plot(grid.tolist(), curve, marker="braille", color=self.colour("warning"))
        elif len(xs) > 1:
            # One point has no line: plotext would draw a stray braille dot beside it.
            self.plt.plot(xs, ys, marker="braille", color=self.colour("primary"))
        if xs:
            self.plt.scatter(xs, ys, marker="●", color=self.colour("accent"))
        if current is not None:
            self.plt.vline(current, color=self.colour("secondary"))
        if knee is not None:
            self.plt.vline(knee, color=self.colour("success"))
        positions, labels, ceiling = row_ticks(max(ys + base_ys + curve + (every_x if mode == "open" else [])) * 1.05 or 1,
                                               self.plot_rows(label_rows=1))
        self.plt.yticks(positions, labels)
        self.plt.ylim(0, ceiling)
        self.plt.ylabel("req/s")
        self.plt.xlabel(axis)
        if len(every_x) <= MAX_LEVEL_TICKS:
            self.plt.xticks(every_x, [fmt_level(x) for x in every_x])
        if len(every_x) == 1 and before:
            # One level on both runs: give the lone column room either side.
            self.plt.xlim(every_x[0] * 0.5, every_x[0] * 1.5)
        legend = "[$secondary]│[/]now" if current is not None or not before else ""
        if knee is not None:
            legend += " [$success]│[/]knee"
        if curve:
            # A peak far beyond the levels measured is the fit saying "no retrograde seen", not a forecast.
            near = usl is not None and usl.peak_concurrency is not None and usl.peak_concurrency <= 10 * max(xs)
            peak = f" N*≈{usl.peak_concurrency:.1f}" if near and usl is not None else ""
            legend += f" [$warning]─[/]USL{peak}"
        if mode == "open":
            legend = "[$secondary]─[/]offered " + legend
        if before:
            legend = f"[$foreground-muted]◇[/]{base_name} [$accent]●[/]{new_name} " + legend
        self.border_subtitle = legend.strip()
        self.refresh()
