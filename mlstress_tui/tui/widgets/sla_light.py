"""A one-line traffic light: the last second's p95 latency against the SLA threshold."""

from __future__ import annotations

from textual.widgets import Static

from mlstress_tui.results.units import counted
from mlstress_tui.session.live_window import SLA_BREACH, SLA_IDLE, SLA_OK, sla_state
from mlstress_tui.tui.format import fmt_ms_unit


class SlaLight(Static):
    """Green within the SLA, red past it, neutral with no data; the words say it too (NO_COLOR)."""

    def show(self, p95_ms: float | None, sla_p95_ms: float, stuck_users: int = 0) -> None:
        state = sla_state(p95_ms, sla_p95_ms, stuck_users)
        if p95_ms is None and state == SLA_BREACH:
            # Nothing completed because users are stuck in the target: the worst case, not an idle second.
            verdict, text = ("-breach", f"● SLA BREACH  {counted(stuck_users, 'user')} stuck past their deadline, "
                                        "none answered")
        elif state == SLA_IDLE:
            verdict, text = "-idle", f"● SLA p95 ≤ {fmt_ms_unit(sla_p95_ms)}: no requests in the last second"
        elif state == SLA_OK:
            verdict, text = "-ok", f"● SLA OK      p95 {fmt_ms_unit(p95_ms)} ≤ {fmt_ms_unit(sla_p95_ms)}"
        else:
            verdict, text = "-breach", f"● SLA BREACH  p95 {fmt_ms_unit(p95_ms)} > {fmt_ms_unit(sla_p95_ms)}"
        shown = getattr(self, "_shown", None)
        if (verdict, text) == shown:
            return
        self._shown = (verdict, text)
        self.set_classes(verdict)
        # Its width is its text's (the message line takes the rest of the row): a new length needs a layout.
        self.update(text, layout=shown is None or len(shown[1]) != len(text))
