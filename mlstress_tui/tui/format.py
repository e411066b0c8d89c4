"""Number formatting for the dashboard: fixed widths, honest units, a dash for no data."""

from __future__ import annotations

from mlstress_tui.results.units import format_rate

DASH = "–"


def fmt_ms(value: float | None) -> str:
    """A latency in milliseconds with about three significant digits; seconds past 10 s."""
    if value is None:
        return DASH
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_ms_unit(value: float | None) -> str:
    """A latency with its unit: `4.62 ms`, `624 ms`, `13.1 s` (fmt_ms switches to seconds past 10 s)."""
    text = fmt_ms(value)
    return text if value is None or text.endswith(" s") else f"{text} ms"


def fmt_count(value: float | None) -> str:
    if value is None:
        return DASH
    value = float(value)
    if abs(value) >= 10_000_000:
        return f"{value / 1e6:.1f}M"
    return f"{value:,.0f}"


def fmt_rate(value: float | None) -> str:
    """Requests per second: one decimal below 100, whole numbers above."""
    return DASH if value is None else format_rate(value)


def fmt_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def fmt_elapsed_live(seconds: float) -> str:
    """Elapsed time in the header: tenths in the first minute (0.9 s, not 0:00:00 beside 4,000 requests)."""
    if seconds < 60:
        return f"{max(seconds, 0.0):.1f} s"
    return fmt_elapsed(seconds)


def fmt_level(value: float) -> str:
    """A concurrency or rate level as an axis label."""
    if value >= 1000:
        return f"{value / 1000:.3g}k"
    return f"{value:.4g}"
