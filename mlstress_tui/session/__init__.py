"""A run: the engine plus the consumers subscribed to its ticks; every front end builds one."""

from mlstress_tui.session.ramp_controller import RUN_ENDED, RampController, RampPlan
from mlstress_tui.session.run_session import RunSession

__all__ = ["RUN_ENDED", "RampController", "RampPlan", "RunSession"]
