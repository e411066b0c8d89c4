"""Numbers as a person reads them in lines of text: one formatter for every layer that writes such lines."""

from __future__ import annotations


def format_ms(value: float | None) -> str:
    """A latency with its unit, µs to s, for lines a person reads."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 10:
        return f"{value:.1f}ms"
    if value >= 0.1:
        return f"{value:.2f}ms"
    return f"{value * 1000:.1f}µs"


def format_rate(value: float) -> str:
    """Requests per second without the unit: one decimal below 100, whole numbers above."""
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def counted(count: int | float, singular: str, plural: str | None = None) -> str:
    """`1 user`, `2 users`, `1,024 calls`: a count with its noun in the number it needs."""
    noun = singular if count == 1 else (plural or singular + "s")
    return f"{count:,} {noun}" if isinstance(count, int) else f"{count:g} {noun}"
