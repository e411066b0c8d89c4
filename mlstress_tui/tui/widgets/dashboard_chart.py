"""The common base of the dashboard's plotext charts: theme colours, log ticks, a no-data message."""

from __future__ import annotations

import math
from collections.abc import Hashable

from textual.color import Color
from textual_plotext import PlotextPlot


def log_ticks(low: float, high: float, unit: str = "") -> tuple[list[float], list[str]]:
    """Decade ticks (as log10 positions) spanning [low, high], labelled 1, 10, 100, 1k… (or ms / s)."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    positions = list(range(first, last + 1))
    labels = []
    for exponent in positions:
        value = 10.0 ** exponent
        if unit == " ms":
            labels.append(f"{value:g} ms" if value < 1000 else f"{value / 1000:g} s")
            continue
        if value >= 1e6:
            text = f"{value / 1e6:g}M"
        elif value >= 1e3:
            text = f"{value / 1e3:g}k"
        else:
            text = f"{value:g}"
        labels.append(text + unit)
    return [float(p) for p in positions], labels


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
