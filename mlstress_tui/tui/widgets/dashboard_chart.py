"""The common base of the dashboard's plotext charts: theme colours, log ticks, a no-data message."""

from __future__ import annotations

import math
from collections.abc import Hashable

from textual.color import Color
from textual_plotext import PlotextPlot


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


def linear_ticks(top: float, max_ticks: int = 5) -> tuple[list[float], list[str]]:
    """Evenly spaced round ticks from 0 to at least `top` (steps of 1, 2, 2.5 or 5 × 10^k), labelled like the
    stats panel: thousands separators, no stray decimals."""
    if top <= 0:
        return [0.0], ["0"]
    raw = top / max(max_ticks - 1, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(factor * magnitude for factor in (1.0, 2.0, 2.5, 5.0, 10.0) if factor * magnitude >= raw)
    count = math.ceil(top / step - 1e-9)
    positions = [index * step for index in range(count + 1)]
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else (1 if step % 1 else 0)
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

    def colour(self, variable: str) -> tuple[int, int, int]:
        """An (r, g, b) colour from the current theme's variables, for plotext."""
        value = self.app.theme_variables.get(variable) or self.app.theme_variables.get("foreground", "white")
        return Color.parse(value).rgb

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
