"""Where the worker slots run: processes on this machine, or Ray actors across a cluster.

The engine speaks to a backend in worker slots and messages only: spawn a slot
with its config and plan, send it control messages (load/protocol.py), receive
what the slots say (`Ready`, `Failed`, `TickReport`, `Crashed`, `Exited`), ask
whether a slot is gone and how. Both backends run the same `Worker`
(load/worker/): threads as virtual users, ticks of mergeable histograms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlstress_tui.load.protocol import ApplyPlan, Control, Pause, Resume, Said, Stop, WorkerConfig, WorkerPlan
from mlstress_tui.load.tickets import Tickets


@dataclass(frozen=True)
class WorkerExit:
    """How a worker slot ended: its exit status (negative: a signal) and that in words."""

    code: int
    how: str


class WorkerBackend:
    """The engine's side of the worker slots."""

    name = "local"
    # A dead slot can be refilled with a fresh worker (processes here); a lost node's cannot.
    can_replace = True
    # The start is announced this far ahead, so every slot has it before it comes.
    start_lead_ns = 20_000_000

    def connect(self) -> None:
        """Reach the place the workers will run (a no-op for local processes)."""

    def default_workers(self) -> int:
        raise NotImplementedError

    def tickets(self, slots: int) -> Tickets:
        raise NotImplementedError


    def before_start(self) -> None:
        """Every slot is ready: what must be known before the start instant is chosen (the nodes' clocks)."""

    def spawn(self, worker_id: int, config: WorkerConfig, plan: WorkerPlan) -> None:
        raise NotImplementedError

    def send(self, worker_id: int, message: Control) -> None:
        """A control message; a slot already gone ignores it."""
        raise NotImplementedError

    def broadcast(self, message: Control) -> None:
        for worker_id in self.slots():
            self.send(worker_id, message)

    def broadcast_pause(self) -> None:
        self.broadcast(Pause())

    def broadcast_resume(self) -> None:
        self.broadcast(Resume())

    def broadcast_stop(self) -> None:
        self.broadcast(Stop())

    def slots(self) -> list[int]:
        """Every slot ever spawned."""
        raise NotImplementedError

    def start(self, worker_id: int, start_perf_ns: int, start_wall_ns: int) -> None:
        """Tell a ready slot the run's start (this process's perf_counter and wall clock, taken together)."""
        raise NotImplementedError

    def send_plans(self, plans: dict[int, WorkerPlan], at_ns: int | None) -> None:
        """A control change: each slot's new share of the load, from the tick boundary at `at_ns` (perf_counter_ns)."""
        for worker_id, plan in plans.items():
            self.send(worker_id, ApplyPlan(plan, at_ns))

    def receive(self, timeout_s: float) -> Said | None:
        """The next thing a slot said, or None after `timeout_s`."""
        raise NotImplementedError

    def exit_of(self, worker_id: int) -> WorkerExit | None:
        """None while the slot's worker lives."""
        raise NotImplementedError

    def join(self, worker_id: int, timeout_s: float) -> bool:
        """Wait for the slot's worker to end by itself; True if it did."""
        raise NotImplementedError

    def kill(self, worker_id: int) -> None:
        """End one slot's worker at once (it is wedged: nothing it does can be waited for)."""
        raise NotImplementedError

    def kill_all(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what `connect` took (a cluster this run started)."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    def node_of(self, worker_id: int) -> str:
        """The node a slot runs on."""
        return "local"

    def clock_offsets_ms(self) -> dict[str, float]:
        """Each node's wall clock minus this one's, measured at start."""
        return {}

    def niceness_of(self, worker_id: int) -> int | None:
        """The scheduling niceness a slot's worker kept (None: not known)."""
        return None


def backend_for(ray_address: str | None) -> WorkerBackend:
    if ray_address is None:
        from mlstress_tui.load.backends.local_processes import LocalProcesses

        return LocalProcesses()
    from mlstress_tui.load.backends.ray_actors import RayActors

    return RayActors(ray_address)


__all__ = ["WorkerBackend", "WorkerExit", "backend_for"]
