"""The common base of the dashboard's plotext charts: theme colours, log ticks, a no-data message."""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from typing import Protocol

from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.color import Color
from textual_plotext import PlotextPlot

# A run of full blocks (a bar) drawn as glyphs leaves a gap between rows wherever the glyph is shorter than the
# line (an SVG screenshot as rsvg draws it): its cells get the bar's colour as their background too.
BLOCKS = re.compile("█+")
# Tick steps are one of these times a power of ten.
ROUND_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


class LevelPoint(Protocol):
    """One level on a level chart: a live level's figures (analysis.ramp.RampStep) or a finished run's (report.run_curve)."""

    @property
    def level(self) -> float: ...
    @property
    def seconds(self) -> float: ...
    @property
    def p95_ms(self) -> float | None: ...
    @property
    def throughput_rps(self) -> float: ...


def round_sig(value: float | None, digits: int = 2) -> float | None:
    """`value` to a few significant digits: changes smaller than this do not show on a terminal chart."""
    if not value:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _tick_label(value: float, unit: str) -> str:
    if unit == " ms":
        return f"{value:g} ms" if value < 1000 else f"{value / 1000:g} s"
    if value >= 1e6:
        return f"{value / 1e6:g}M{unit}"
    if value >= 1e3:
        return f"{value / 1e3:g}k{unit}"
    return f"{value:g}{unit}"


def linear_ticks(top: float, max_ticks: int = 5, unit: str = "") -> tuple[list[float], list[str]]:
    """Evenly spaced round ticks from 0 to at least `top` (steps of 1, 2, 2.5 or 5 × 10^k), labelled like the
    stats panel: thousands separators, no stray decimals; with `unit` " ms", each label says ms or s."""
    if top <= 0:
        return [0.0], ["0"]
    step = _round_step(top / max(max_ticks - 1, 1), (1.0, 2.0, 2.5, 5.0, 10.0))
    count = math.ceil(top / step - 1e-9)
    return _labelled([index * step for index in range(count + 1)], step, unit)


def row_ticks(top: float, rows: int, unit: str = "") -> tuple[list[float], list[str], float]:
    """Round ticks from 0 that fall on evenly spaced rows of a plot `rows` rows tall, and the value of its top row.

    plotext puts the y limits on the bottom and top rows and a tick on the row
    nearest its value: ticks `spacing` rows apart, with the top row worth
    `step × (rows − 1) / spacing`, land exactly. Of the spacings that give 3
    to 6 ticks, the one wasting least height above `top` is taken.
    """
    top = top if top > 0 else 1.0
    span = max(rows - 1, 1)
    best: tuple[float, int, float, int] | None = None
    for spacing in range(2, span + 1):
        count = span // spacing + 1
        if count < 3 and best is not None:
            break
        if count > 6:
            continue
        step = _round_step(top * spacing / span)
        ceiling = step * span / spacing
        if best is None or ceiling < best[0] - 1e-9:
            best = (ceiling, count, step, spacing)
    if best is None:
        step = _round_step(top)
        return [0.0, step], _labelled([0.0, step], step, unit)[1], step
    ceiling, count, step, _ = best
    positions, labels = _labelled([index * step for index in range(count)], step, unit)
    return positions, labels, ceiling


def _round_step(raw: float, factors: tuple[float, ...] = ROUND_STEPS) -> float:
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(factor * magnitude for factor in factors if factor * magnitude >= raw * (1 - 1e-9))


def _labelled(positions: list[float], step: float, unit: str) -> tuple[list[float], list[str]]:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else (1 if step % 1 else 0)
    if unit:
        return positions, [_tick_label(round(value, decimals + 1), unit) for value in positions]
    return positions, [f"{value:,.{decimals}f}" for value in positions]


def log_ticks(low: float, high: float, unit: str = "", *, max_ticks: int = 6) -> tuple[list[float], list[str]]:
    """At most `max_ticks` ticks (as log10 positions) in [low, high]: decades, with 2s and 5s if they fit.

    Never more than fit: plotext drops overlapping labels, and which ones it drops is not stable.
    """
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for steps in ((1.0, 2.0, 5.0), (1.0, 3.0), (1.0,)):
        values = [step * 10.0 ** exponent for exponent in range(first, last + 1) for step in steps]
        inside = [value for value in values if low * 0.999 <= value <= high * 1.001]
        if len(inside) <= max_ticks:
            break
    if len(inside) > max_ticks:
        inside = inside[:: math.ceil(len(inside) / max_ticks)]
    if len(inside) < 2:
        inside = [round_sig(low), round_sig(high)]
    return [math.log10(value) for value in inside], [_tick_label(value, unit) for value in inside]


class DashboardChart(PlotextPlot):
    """A PlotextPlot that redraws only when its data changed, in the app theme's colours."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._signature: Hashable = None

    def on_mount(self) -> None:
        super().on_mount()
        self.plt.frame(True)

    def render(self) -> RenderResult:
        text = super().render()
        if isinstance(text, Text) and "█" in text.plain:
            plain = text.plain
            for span in list(text.spans):
                style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
                if style.color is None:
                    continue
                for run in BLOCKS.finditer(plain, span.start, span.end):
                    text.stylize(Style(bgcolor=style.color), run.start(), run.end())
        return text

    def colour(self, variable: str) -> tuple[int, int, int]:
        """An (r, g, b) colour from the current theme's variables, for plotext."""
        variables = self.app.theme_variables
        colour = Color.parse(variables.get(variable) or variables.get("foreground", "white"))
        if colour.a < 1:  # a muted variable is the foreground see-through: as it looks on the background
            colour = Color.parse(variables.get("background", "black")) + colour
        return colour.rgb

    def plot_rows(self, label_rows: int = 0) -> int:
        """The rows of the plot area: the chart's height less the frame, the x tick labels and any axis label row."""
        return max(self.size.height - 3 - label_rows, 2) if self.size.height else 10

    def max_ticks(self, label_width: int = 7) -> int:
        """How many x labels fit side by side in this chart, leaving room for the y axis."""
        return max(2, (self.size.width - 8) // label_width) if self.size.width else 4

    def needs_redraw(self, signature: Hashable, *, force: bool = False) -> bool:
        """True when the data (or the theme) changed since the last draw; records the new signature."""
        signature = (signature, self.app.theme)
        if not force and signature == self._signature:
            return False
        self._signature = signature
        return True

    def begin(self, title: str) -> None:
        """Clear the previous frame's data and title it; every draw starts here."""
        self.plt.clear_figure()
        # The title goes on the widget's border: Textual truncates it to fit, plotext would drop it.
        self.border_title = title

    def no_data(self, title: str, message: str) -> None:
        self.begin(title)
        self.plt.xticks([])
        self.plt.yticks([])
        self.plt.text(message, 0.5, 0.5, alignment="center", color=self.colour("foreground"))
        self.plt.xlim(0, 1)
        self.plt.ylim(0, 1)
        self.refresh()
