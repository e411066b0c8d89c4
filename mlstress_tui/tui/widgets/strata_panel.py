"""The heavy-user table (key `o`): each stratum of users by event count, its requests and latency, the breach."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.tui.format import fmt_count, fmt_ms


WIDE_COLUMNS = 45


class StrataPanel(Static):
    """Per stratum: requests and p50/p95 over the whole run; the breach event count from the fitted curve."""

    def on_mount(self) -> None:
        self.border_title = "heavy users"
        self.show(None, sla_p95_ms=0.0)

    def show(self, report: dict | None, *, sla_p95_ms: float, reason: str = "") -> None:
        if report is None:
            self.update(Content.styled(reason or "no requests yet", "dim"))
            return
        # A narrow panel (80 columns) drops p50: p95 is what the breach is judged on.
        wide = self.size.width == 0 or self.size.width >= WIDE_COLUMNS
        value = 10 if wide else 9  # narrow: 13 + 7 + 9 columns fit the 30 an 80-column screen leaves
        name = 14 if wide else 13
        lines = [Content.styled(f"{'events':<{name}}{'req':>7}" + (f"{'p50':>10}" if wide else "") + f"{'p95':>{value}}",
                                "bold")]
        for row in report["strata"]:
            p95 = row["p95_ms"]
            style = "$error" if p95 is not None and p95 > report["threshold_ms"] else ""
            lines.append(Content.assemble(
                f"{row['name']:<{name}}{fmt_count(row['requests']):>7}" + (f"{fmt_ms(row['p50_ms']):>10}" if wide else ""),
                (f"{fmt_ms(p95):>{value}}", style)))
        breach = report["breach_event_count"]
        if breach is None:
            lines.append(Content.styled(f"no user past p95 {sla_p95_ms:g} ms", "$success"))
        else:
            lines.append(Content.styled(
                f"p95 > {sla_p95_ms:g} ms from {breach:,} events: {report['users_above']:,} users "
                f"({report['population_share_above']:.2%})", "bold $error"))
        self.update(Content("\n").join(lines))
