"""A one-line traffic light: the last second's p95 latency against the SLA threshold."""

from __future__ import annotations

from textual.widgets import Static

from mlstress_tui.session.live_window import SLA_BREACH, SLA_IDLE, SLA_OK, sla_state
from mlstress_tui.tui.format import fmt_ms


class SlaLight(Static):
    """Green within the SLA, red past it, neutral with no data; the words say it too (NO_COLOR)."""

    def show(self, p95_ms: float | None, sla_p95_ms: float, stuck_users: int = 0) -> None:
        state = sla_state(p95_ms, sla_p95_ms, stuck_users)
        if p95_ms is None and state == SLA_BREACH:
            verdict, text = "-breach", f"● SLA BREACH  {stuck_users} users stuck past their deadline, none answered"
        elif state == SLA_IDLE:
            verdict, text = "-idle", f"● SLA p95 ≤ {fmt_ms(sla_p95_ms)} ms: no requests in the last second"
        elif state == SLA_OK:
            verdict, text = "-ok", f"● SLA OK      p95 {fmt_ms(p95_ms)} ms ≤ {fmt_ms(sla_p95_ms)} ms"
        else:
            verdict, text = "-breach", f"● SLA BREACH  p95 {fmt_ms(p95_ms)} ms > {fmt_ms(sla_p95_ms)} ms"
        if (verdict, text) == getattr(self, "_shown", None):
            return
        self._shown = (verdict, text)
        self.set_classes(verdict)
        self.update(text, layout=False)
