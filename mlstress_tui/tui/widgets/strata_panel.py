"""The heavy-user table (key `o`): each stratum of users by event count, its requests and latency, the breach."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.tui.format import DASH, fmt_count, fmt_ms


WIDE_COLUMNS = 48


def _error_cell(row: dict) -> str:
    """A stratum's error rate in five columns or fewer: `100%`, `2.5%`, `<0.1%`, a dash for none."""
    rate = row.get("error_rate") or 0.0
    if not row.get("errors"):
        return DASH
    if rate >= 0.1:
        return f"{rate:.0%}"
    return f"{rate:.1%}" if rate >= 0.001 else "<0.1%"


class StrataPanel(Static):
    """Per stratum: requests, p50/p95 of the requests that answered and the error rate; the breach, or the strata that fail."""

    def on_mount(self) -> None:
        self.border_title = "heavy users"
        self.show(None, sla_p95_ms=0.0)

    def on_resize(self) -> None:
        # Which columns fit depends on the width: drawn again at the new one.
        if getattr(self, "_last", None) is not None:
            self.show(*self._last[0], **self._last[1])

    def show(self, report: dict | None, *, sla_p95_ms: float, reason: str = "") -> None:
        self._last = ((report,), {"sla_p95_ms": sla_p95_ms, "reason": reason})
        if report is None:
            self.update(Content.styled(reason or "no requests yet", "dim"))
            return
        # A narrow panel (beside the numbers at 80 columns) drops p50: p95 is what the breach is judged on.
        width = self.content_size.width
        if width == 0:
            return  # not laid out yet (just shown): drawn on its first resize, at the width it has
        wide = width >= WIDE_COLUMNS
        name, count, value, error = (12, 8, 7, 6) if wide else (9, 7, 6, 5)
        # Every column keeps one space before it, so a count as wide as its column never runs into its neighbour.
        lines = [Content.styled(f"{'events':<{name}} {'req':>{count}}" + (f" {'p50':>{value}}" if wide else "")
                                + f" {'p95':>{value}} {'err':>{error}}", "bold")]
        for row in report["strata"]:
            p95 = row["p95_ms"]
            slow = p95 is not None and p95 > report["threshold_ms"]
            label = row["name"] if len(row["name"]) <= name else row["name"][:name - 1] + "…"
            p95_cell, error_cell = fmt_ms(p95), _error_cell(row)
            # Each pad belongs to the segment before it: an SVG renderer drops a segment's leading spaces.
            lines.append(Content.assemble(
                f"{label:<{name}} {fmt_count(row['requests']):>{count}}"
                + (f" {fmt_ms(row['p50_ms']):>{value}}" if wide else "") + " " * (1 + value - len(p95_cell)),
                (p95_cell, "$error" if slow else ""), " " * (1 + error - len(error_cell)),
                (error_cell, "$error" if row.get("errors") else "")))
        failing = report.get("failing")
        breach = report["breach_event_count"]
        if failing:
            verdict = Content.styled(failing["text"], "bold $error")
        elif breach is None:
            verdict = Content.styled(f"no user past p95 {sla_p95_ms:g} ms", "$success")
        else:
            users = report["users_above"]
            verdict = Content.styled(
                f"p95 > {sla_p95_ms:g} ms from {breach:,} events: {users:,} user{'s' * (users != 1)} "
                f"({report['population_share_above']:.2%})", "bold $error")
        # The verdict is the point of the table: wrapped whole, never cut.
        lines += verdict.wrap(width) if width else [verdict]
        self.update(Content("\n").join(lines))
