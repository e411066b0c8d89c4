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

    def show(self, report: dict | None, *, sla_p95_ms: float, reason: str = "") -> None:
        if report is None:
            self.update(Content.styled(reason or "no requests yet", "dim"))
            return
        # A narrow panel (80 columns) drops p50: p95 is what the breach is judged on.
        wide = self.size.width == 0 or self.size.width >= WIDE_COLUMNS
        name, count, value, error = (14, 7, 10, 7) if wide else (12, 6, 7, 5)
        lines = [Content.styled(f"{'events':<{name}}{'req':>{count}}" + (f"{'p50':>{value}}" if wide else "")
                                + f"{'p95':>{value}}{'err':>{error}}", "bold")]
        for row in report["strata"]:
            p95 = row["p95_ms"]
            slow = p95 is not None and p95 > report["threshold_ms"]
            lines.append(Content.assemble(
                f"{row['name'][:name - 1]:<{name}}{fmt_count(row['requests']):>{count}}"
                + (f"{fmt_ms(row['p50_ms']):>{value}}" if wide else ""),
                (f"{fmt_ms(p95):>{value}}", "$error" if slow else ""),
                (f"{_error_cell(row):>{error}}", "$error" if row.get("errors") else "")))
        failing = report.get("failing")
        breach = report["breach_event_count"]
        if failing:
            lines.append(Content.styled(failing["text"], "bold $error"))
        elif breach is None:
            lines.append(Content.styled(f"no user past p95 {sla_p95_ms:g} ms", "$success"))
        else:
            lines.append(Content.styled(
                f"p95 > {sla_p95_ms:g} ms from {breach:,} events: {report['users_above']:,} users "
                f"({report['population_share_above']:.2%})", "bold $error"))
        self.update(Content("\n").join(lines))
