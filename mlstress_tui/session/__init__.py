"""A run: the engine plus the consumers subscribed to its ticks; every front end builds one."""

from mlstress_tui.session.ramp_controller import RampController, RampPlan
from mlstress_tui.session.run_session import RunSession

__all__ = ["RampController", "RampPlan", "RunSession"]
