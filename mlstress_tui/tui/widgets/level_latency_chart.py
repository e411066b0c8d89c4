"""p95 latency at each load level visited, against the SLA: where the cliff is."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlstress_tui.analysis.ramp import RampStep
from mlstress_tui.tui.format import fmt_level
from mlstress_tui.tui.widgets.dashboard_chart import DashboardChart, log_ticks, round_sig, row_ticks

# Past this spread a linear axis flattens everything before the cliff into one line.
LOG_Y_SPREAD = 20.0
# Label every level visited while they fit; past that plotext's own ticks read better.
MAX_LEVEL_TICKS = 6


class LevelLatencyChart(DashboardChart):
    """One point per level: x the concurrency (or rate), y the p95 latency there."""

    def show(self, points: Sequence[RampStep], mode: str, current: float | None, sla_p95_ms: float,
             knee: float | None, *, force: bool = False) -> None:
        """`points`: each level's figures (the session's), lowest level first."""
        levels = [point for point in points if point.p95_ms is not None]
        signature = (mode, current, sla_p95_ms, knee, self.size.height,
                     tuple((s.level, round_sig(s.p95_ms)) for s in levels))
        if not self.needs_redraw(signature, force=force):
            return
        axis = "offered rate req/s" if mode == "open" else "concurrency"
        title = f"p95 vs {'rate' if mode == 'open' else 'users'}"
        if not levels:
            self.no_data(title, "no level has settled yet")
            return
        legend = f"[$error]─[/]SLA {sla_p95_ms:g} ms [$secondary]│[/]now"
        if knee is not None:
            legend += f" [$success]│[/]knee {fmt_level(knee)}"
        self.border_subtitle = legend
        xs = [stats.level for stats in levels]
        p95 = [stats.p95_ms or 0.0 for stats in levels]
        log_y = max(p95) / max(min(p95), 1e-6) > LOG_Y_SPREAD
        ys = [math.log10(max(value, 1e-3)) for value in p95] if log_y else p95
        sla_y = math.log10(sla_p95_ms) if log_y else sla_p95_ms
        self.begin(title)
        if len(xs) > 1:
            # One point has no line: plotext would draw a stray braille dot beside it.
            self.plt.plot(xs, ys, marker="braille", color=self.colour("primary"))
        self.plt.scatter(xs, ys, marker="●", color=self.colour("accent"))
        if min(ys) <= sla_y <= max(ys) * 1.5 or log_y:
            self.plt.hline(sla_y, color=self.colour("error"))
        if current is not None:
            self.plt.vline(current, color=self.colour("secondary"))
        if knee is not None:
            self.plt.vline(knee, color=self.colour("success"))
        if log_y:
            positions, labels = log_ticks(10 ** min(ys + [sla_y]), 10 ** max(ys + [sla_y]), " ms")
            self.plt.yticks(positions, labels)
        else:
            # From zero: 0.41 against 0.60 ms must not draw as a cliff; only a real change looks like one.
            top = max(ys) * 1.1 if max(ys) > 0 else 1.0
            if sla_y <= top * 1.5:
                top = max(top, sla_y * 1.05)
            positions, labels, ceiling = row_ticks(top, self.plot_rows(label_rows=1), " ms")
            self.plt.yticks(positions, labels)
            self.plt.ylim(0, ceiling)
        self.plt.xlabel(axis)
        if len(xs) <= MAX_LEVEL_TICKS:
            self.plt.xticks(xs, [fmt_level(x) for x in xs])
        self.refresh()
