"""p95 latency at each load level visited, against the SLA: where the cliff is."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlstress_tui.tui.format import fmt_level
from mlstress_tui.tui.widgets.dashboard_chart import DashboardChart, LevelPoint, log_ticks, round_sig, row_ticks

# Past this spread a linear axis flattens everything before the cliff into one line.
LOG_Y_SPREAD = 20.0
# Label every level visited while they fit; past that plotext's own ticks read better.
MAX_LEVEL_TICKS = 6


class LevelLatencyChart(DashboardChart):
    """One point per level: x the concurrency (or rate), y the p95 latency there; a baseline run's curve beside it."""

    def show(self, points: Sequence[LevelPoint], mode: str, current: float | None, sla_p95_ms: float,
             knee: float | None, *, base: Sequence[LevelPoint] = (), base_name: str = "base",
             new_name: str = "this run", force: bool = False) -> None:
        """`points`: each level's figures (the session's), lowest level first; `base`: a baseline run's, drawn muted."""
        levels = [point for point in points if point.p95_ms is not None]
        before = [point for point in base if point.p95_ms is not None]
        signature = (mode, current, sla_p95_ms, knee, self.size.height, base_name, new_name,
                     tuple((s.level, round_sig(s.p95_ms)) for s in levels),
                     tuple((s.level, round_sig(s.p95_ms)) for s in before))
        if not self.needs_redraw(signature, force=force):
            return
        axis = "offered rate req/s" if mode == "open" else "concurrency"
        title = f"p95 vs {'rate' if mode == 'open' else 'users'}"
        if not levels and not before:
            self.no_data(title, "no level has settled yet")
            return
        # A finished run beside its baseline has no "now".
        now = " [$secondary]│[/]now" if current is not None or not before else ""
        legend = f"[$error]─[/]SLA {sla_p95_ms:g} ms{now}"
        if knee is not None:
            legend += f" [$success]│[/]knee {fmt_level(knee)}"
        if before:
            legend = f"[$foreground-muted]◇[/]{base_name} [$accent]●[/]{new_name} " + legend
        self.border_subtitle = legend
        xs = [stats.level for stats in levels]
        p95 = [stats.p95_ms or 0.0 for stats in levels]
        base_xs = [stats.level for stats in before]
        base_p95 = [stats.p95_ms or 0.0 for stats in before]
        every = p95 + base_p95
        log_y = max(every) / max(min(every), 1e-6) > LOG_Y_SPREAD

        def y_of(values: list[float]) -> list[float]:
            return [math.log10(max(value, 1e-3)) for value in values] if log_y else values

        ys, base_ys = y_of(p95), y_of(base_p95)
        all_ys = ys + base_ys
        sla_y = math.log10(sla_p95_ms) if log_y else sla_p95_ms
        self.begin(title)
        if len(base_xs) > 1:
            self.plt.plot(base_xs, base_ys, marker="braille", color=self.colour("foreground-muted"))
        if base_xs:
            self.plt.scatter(base_xs, base_ys, marker="◇", color=self.colour("foreground-muted"))
        if len(xs) > 1:
            # One point has no line: plotext would draw a stray braille dot beside it.
            self.plt.plot(xs, ys, marker="braille", color=self.colour("primary"))
        if xs:
            self.plt.scatter(xs, ys, marker="●", color=self.colour("accent"))
        if min(all_ys) <= sla_y <= max(all_ys) * 1.5 or log_y:
            self.plt.hline(sla_y, color=self.colour("error"))
        if current is not None:
            self.plt.vline(current, color=self.colour("secondary"))
        if knee is not None:
            self.plt.vline(knee, color=self.colour("success"))
        if log_y:
            positions, labels = log_ticks(10 ** min(all_ys + [sla_y]), 10 ** max(all_ys + [sla_y]), " ms")
            self.plt.yticks(positions, labels)
        else:
            # From zero: 0.41 against 0.60 ms must not draw as a cliff; only a real change looks like one.
            top = max(all_ys) * 1.1 if max(all_ys) > 0 else 1.0
            if sla_y <= top * 1.5:
                top = max(top, sla_y * 1.05)
            positions, labels, ceiling = row_ticks(top, self.plot_rows(label_rows=1), " ms")
            self.plt.yticks(positions, labels)
            self.plt.ylim(0, ceiling)
        self.plt.xlabel(axis)
        ticks = sorted(set(xs + base_xs))
        if len(ticks) <= MAX_LEVEL_TICKS:
            self.plt.xticks(ticks, [fmt_level(x) for x in ticks])
        if len(ticks) == 1 and before:
            # One level on both runs: plotext would centre a zero-width axis on it; give it room either side.
            self.plt.xlim(ticks[0] * 0.5, ticks[0] * 1.5)
        self.refresh()
