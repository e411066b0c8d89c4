"""Worker slots as Ray actors across a cluster: `--ray auto | local | ray://host:port`.

One actor per worker slot, spread over the nodes (SPREAD scheduling); inside
it the same `Worker` as a local process runs on a thread, its threads the
virtual users. Control messages are actor calls in one concurrency group of
one thread, so they apply in the order sent; ticks come back by long poll
(`take`, gathered with `ray.wait`), histograms merged exactly by the engine.

Time: each node's wall clock is compared with this one's at start (the best of
a few round trips) and the start and every plan change carry a wall-clock
instant shifted by that offset, which the actor turns into its own monotonic
clock. So every node starts together and bends its share of the open loop's
schedule at the same moment; each actor fires only its interleaved share of
the run's arrivals (worker i of W takes every W-th), k6's execution segments.

No rogue load: actors belong to this process (Ray ends them with it), and an
actor that hears nothing from the front end for SILENCE_S stops its load.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from pathlib import Path
from typing import Any

from dataclasses import dataclass

from mlstress_tui.errors import UsageError
from mlstress_tui.load.backends import WorkerBackend, WorkerExit
from mlstress_tui.load.protocol import (ApplyPlan, Control, Crashed, Exited, Failed, Said, Start, Stop,
                                        WorkerConfig, WorkerPlan)
from mlstress_tui.load.tickets import Tickets, block_size
from mlstress_tui.load.worker import CRASH_STATUS, serve_worker

log = logging.getLogger(__name__)

# The front end polls every POLL_S; an actor that hears nothing this long stops (a hung or lost front end).
SILENCE_S = 10.0
POLL_S = 0.5
# The start and plan changes are announced this far ahead of when they apply, on every node.
START_LEAD_NS = 300_000_000
PLAN_LEAD_NS = 50_000_000
CLOCK_SAMPLES = 7
CONTROL = "control"
POLL = "poll"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, an optional extra: pip install 'mlstress-tui[ray]'") from None
    return ray


@dataclass(frozen=True)
class _StartAtWall:
    """The start as a wall-clock instant of the actor's node (the front end shifted it by the node's offset)."""

    wall_ns: int


@dataclass(frozen=True)
class _PlanAtWall:
    plan: WorkerPlan
    wall_ns: int


class _Control:
    """The actor's end of the control channel, as the worker's listener reads it (`recv`)."""

    def __init__(self) -> None:
        self.messages: queue.Queue[Control] = queue.Queue()
        self.heard = time.monotonic()

    def put(self, message: Control) -> None:
        self.heard = time.monotonic()
        self.messages.put(message)

    def recv(self) -> Control:
        while True:
            try:
                return self.messages.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() - self.heard > SILENCE_S:
                    return Stop()  # the front end went silent: no load without it


class WorkerActor:
    """One worker slot on some node of the cluster (made a Ray actor class at connect time)."""

    def __init__(self) -> None:
        self.control = _Control()
        self.outbox: queue.Queue[Said] = queue.Queue()

    def boot(self, config: WorkerConfig, plan: WorkerPlan, tickets: Tickets | None) -> dict[str, Any]:
        """The preflight from this node, then the worker on a thread; where this actor runs."""
        import ray

        # Ray starts its workers at niceness 15: a load generator that yields the CPU to everything else on the
        # box adds its own scheduling delay to every latency. This thread, and the worker threads it starts,
        # go back to 0 where the user may raise priority (root, CAP_SYS_NICE); the niceness kept is reported.
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        except OSError:
            pass
        where = {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                 "ip": ray.util.get_node_ip_address(), "pid": os.getpid(),  # type: ignore[no-untyped-call]
                 "niceness": os.getpriority(os.PRIO_PROCESS, 0)}
        try:
            # The target's own check, from here: the SQLite file exists on this node, the DSN or URL answers here.
            config.target.check()
        except UsageError as error:
            self.outbox.put(Failed(config.worker_id, str(error)))
            return where
        output = None
        if config.output_path:
            from mlstress_tui.load.target_output import TargetOutput

            # The run directory may not exist on this node: the target's output then stays here.
            path = Path(config.output_path)
            if not path.parent.is_dir():
                path = Path("/tmp") / f"mlstress-tui-target-{os.getpid()}.log"
            output = TargetOutput(path, config.output_cap_bytes, f"worker {config.worker_id}")
        threading.Thread(target=serve_worker, args=(config, plan, self.control, self.outbox, tickets, output),
                         daemon=True, name="worker").start()
        return where

    def send(self, message: Control | _StartAtWall | _PlanAtWall) -> None:
        # Instants arrive in this node's wall clock (the front end shifted them by the measured offset).
        match message:
            case _StartAtWall(wall_ns=wall_ns):
                self.control.put(Start(time.perf_counter_ns() + (wall_ns - time.time_ns())))
            case _PlanAtWall(plan=plan, wall_ns=wall_ns):
                self.control.put(ApplyPlan(plan, time.perf_counter_ns() + (wall_ns - time.time_ns())))
            case _:
                self.control.put(message)

    def take(self, timeout_s: float) -> list[Said]:
        """What the worker said since the last call, waiting up to `timeout_s` for something."""
        self.control.heard = time.monotonic()
        said = []
        try:
            said.append(self.outbox.get(timeout=timeout_s))
            while True:
                said.append(self.outbox.get_nowait())
        except queue.Empty:
            return said

    def clock(self) -> int:
        return time.time_ns()


class TicketCounter:
    """`--requests` across nodes: one actor's counters (its calls run one at a time)."""

    def __init__(self) -> None:
        self.value = 0
        self.held: dict[int, int] = {}

    def claim(self, quota: int, slot: int) -> int:
        take = block_size(quota - self.value)
        self.value += take
        self.held[slot] = self.held.get(slot, 0) + take
        return take

    def give_back(self, count: int, slot: int) -> None:
        self.value -= count
        self.held[slot] = self.held.get(slot, 0) - count

    def taken(self) -> int:
        return self.value

    def held_by(self, slot: int) -> int:
        return self.held.get(slot, 0)


class RayTickets(Tickets):
    def __init__(self, counter: Any) -> None:
        self.counter = counter

    def claim(self, quota: int, slot: int) -> int:
        import ray

        return int(ray.get(self.counter.claim.remote(quota, slot)))

    def give_back(self, count: int, slot: int) -> None:
        import ray

        ray.get(self.counter.give_back.remote(count, slot))

    def taken(self) -> int:
        import ray

        return int(ray.get(self.counter.taken.remote()))

    def held(self, slot: int) -> int:
        import ray

        return int(ray.get(self.counter.held_by.remote(slot)))


class RayActors(WorkerBackend):
    name = "ray"
    can_replace = False
    start_lead_ns = START_LEAD_NS

    def __init__(self, address: str) -> None:
        self.address = address
        self._ray: Any = None
        self._owns_connection = False
        self._actor_class: Any = None
        self._actors: dict[int, Any] = {}
        self._nodes: dict[int, dict[str, Any]] = {}
        self._polls: dict[Any, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._inbox: queue.Queue[Said] = queue.Queue()
        self._exits: dict[int, WorkerExit] = {}
        self._ended: set[int] = set()
        self._offsets_ns: dict[str, int] = {}
        self._counter: Any = None
        self._closed = threading.Event()
        self._pump: threading.Thread | None = None
        self.connect_s = 0.0
        self._start_clocks: tuple[int, int] | None = None

    # -- the cluster ------------------------------------------------------

    def connect(self) -> None:
        ray = self._ray = import_ray()
        began = time.perf_counter()
        if not ray.is_initialized():
            options = {"log_to_driver": False, "include_dashboard": False, "configure_logging": False}
            try:
                if self.address == "local":
                    ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
                else:
                    ray.init(address=self.address, **options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise UsageError(f"cannot reach a Ray cluster at --ray {self.address}: "
                                 f"{' '.join(str(error).split())[:200]}; start one with 'ray start --head' "
                                 "or use --ray local") from None
            self._owns_connection = True
        self.connect_s = time.perf_counter() - began
        self._actor_class = ray.remote(concurrency_groups={CONTROL: 1, POLL: 2})(WorkerActor)
        self._pump = threading.Thread(target=self._pump_replies, daemon=True, name="ray-pump")
        self._pump.start()

    def default_workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def tickets(self, slots: int) -> Tickets:
        self._counter = self._ray.remote(TicketCounter).options(num_cpus=0).remote()
        return RayTickets(self._counter)

    def spawn(self, worker_id: int, config: WorkerConfig, plan: WorkerPlan) -> None:
        cpus = float(self._ray.cluster_resources().get("CPU", 1))
        actor = self._actor_class.options(num_cpus=min(1.0, cpus / max(config.workers, 1)),
                                          scheduling_strategy="SPREAD", max_restarts=0).remote()
        self._actors[worker_id] = actor
        with self._lock:
            self._polls[actor.boot.options(concurrency_group=POLL).remote(config, plan, self._tickets())] = (
                worker_id, "boot")

    def _tickets(self) -> Tickets | None:
        return RayTickets(self._counter) if self._counter is not None else None

    # -- messages ---------------------------------------------------------

    def slots(self) -> list[int]:
        return list(self._actors)

    def send(self, worker_id: int, message: Any) -> None:
        actor = self._actors.get(worker_id)
        if actor is not None and worker_id not in self._exits:
            actor.send.options(concurrency_group=CONTROL).remote(message)

    def before_start(self) -> None:
        try:
            self._measure_clocks()
        except self._ray.exceptions.RayError as error:
            raise UsageError(f"lost a Ray actor while measuring the nodes' clocks before the start: "
                             f"{_first_line(error)}") from None

    def start(self, worker_id: int, start_perf_ns: int, start_wall_ns: int) -> None:
        self._start_clocks = (start_perf_ns, start_wall_ns)
        self.send(worker_id, _StartAtWall(start_wall_ns + self._offset_of(worker_id)))

    def send_plans(self, plans: dict[int, WorkerPlan], at_ns: int | None) -> None:
        # A tick boundary of the front end's clock as a wall-clock instant, at least PLAN_LEAD_NS ahead on every node.
        effective = time.time_ns() + PLAN_LEAD_NS
        if at_ns is not None and self._start_clocks is not None:
            start_perf, start_wall = self._start_clocks
            effective = max(start_wall + (at_ns - start_perf), effective)
        for worker_id, plan in plans.items():
            self.send(worker_id, _PlanAtWall(plan, effective + self._offset_of(worker_id)))

    def _offset_of(self, worker_id: int) -> int:
        return self._offsets_ns.get(self.node_of(worker_id), 0)

    def _measure_clocks(self) -> None:
        """Each node's wall clock minus ours, from the round trip with the least delay."""
        by_node: dict[str, Any] = {}
        for worker_id, actor in self._actors.items():
            by_node.setdefault(self.node_of(worker_id), actor)
        for node, actor in by_node.items():
            best = None
            for _ in range(CLOCK_SAMPLES):
                sent = time.time_ns()
                theirs = self._ray.get(actor.clock.options(concurrency_group=POLL).remote())
                back = time.time_ns()
                if best is None or back - sent < best[0]:
                    best = (back - sent, theirs - (sent + back) // 2)
            if best is not None:
                self._offsets_ns[node] = best[1]

    def clock_offsets_ms(self) -> dict[str, float]:
        return {node: offset / 1e6 for node, offset in self._offsets_ns.items()}

    def receive(self, timeout_s: float) -> Said | None:
        try:
            return self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def _pump_replies(self) -> None:
        """Gather long polls as they come back; a dead actor's poll fails at once, and that is its death."""
        ray = self._ray
        while not self._closed.is_set():
            with self._lock:
                waiting = list(self._polls)
            if not waiting:
                time.sleep(0.02)
                continue
            try:
                ready, _ = ray.wait(waiting, num_returns=len(waiting), timeout=0.05)
            except Exception:  # the cluster connection itself is gone
                if not self._closed.is_set():
                    log.exception("lost the Ray cluster")
                    for worker_id in self._actors:
                        self._exits.setdefault(worker_id, WorkerExit(-1, "the Ray cluster connection was lost"))
                return
            for reply in ready:
                with self._lock:
                    worker_id, kind = self._polls.pop(reply)
                self._handle(worker_id, kind, reply)

    def _handle(self, worker_id: int, kind: str, reply: Any) -> None:
        ray = self._ray
        try:
            value = ray.get(reply)
        except ray.exceptions.RayActorError as error:
            reason = _first_line(error)
            where = self.node_of(worker_id)
            # Declared lost, it gets no more messages: if it lives on (a network blip, ActorUnavailableError),
            # it must not go on firing a share that is now the others'.
            try:
                ray.kill(self._actors[worker_id], no_restart=True)
            except Exception:
                pass
            if kind == "boot":
                self._inbox.put(Failed(worker_id, f"worker {worker_id} could not start on node {where}: {reason}"))
            self._exits.setdefault(worker_id, WorkerExit(-1, f"actor lost on node {where} ({reason})"))
            return
        except ray.exceptions.RayError as error:
            self._inbox.put(Failed(worker_id, f"worker {worker_id} on node {self.node_of(worker_id)}: "
                                              f"{_first_line(error)}"))
            self._exits.setdefault(worker_id, WorkerExit(-1, "its actor failed"))
            return
        if kind == "boot":
            self._nodes[worker_id] = value
        else:
            for message in value:
                match message:
                    case Failed(reason=reason):
                        # The preflight failed there: the error names the node it failed on.
                        message = Failed(worker_id, f"{reason} (on node {self.node_of(worker_id)})")
                        self._ended.add(worker_id)
                    case Crashed(reason=reason):
                        # The worker's loop failed: a death whose cause travels with it (no separate message to race).
                        self._ended.add(worker_id)
                        self._exits[worker_id] = WorkerExit(CRASH_STATUS, f"exit status {CRASH_STATUS}, {reason}")
                        continue
                    case Exited():
                        self._ended.add(worker_id)
                    case _:
                        pass
                self._inbox.put(message)
        if worker_id not in self._ended and worker_id not in self._exits and not self._closed.is_set():
            actor = self._actors[worker_id]
            with self._lock:
                self._polls[actor.take.options(concurrency_group=POLL).remote(POLL_S)] = (worker_id, "take")

    # -- the end ----------------------------------------------------------

    def exit_of(self, worker_id: int) -> WorkerExit | None:
        return self._exits.get(worker_id)

    def join(self, worker_id: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if worker_id in self._ended or worker_id in self._exits:
                return True
            time.sleep(0.02)
        return worker_id in self._ended or worker_id in self._exits

    def kill(self, worker_id: int) -> None:
        self._ended.add(worker_id)
        actor = self._actors.get(worker_id)
        if actor is not None:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already gone with its node
                pass

    def kill_all(self) -> None:
        for worker_id, actor in self._actors.items():
            self._ended.add(worker_id)
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already gone with its node
                pass
        if self._counter is not None:
            try:
                self._ray.kill(self._counter, no_restart=True)
            except Exception:
                pass
            self._counter = None

    def close(self) -> None:
        self._closed.set()
        if self._pump is not None:
            self._pump.join(1.0)
        if self._owns_connection and self._ray.is_initialized():
            # A cluster started for this run (--ray local) goes with it; a shared one is only left.
            self._ray.shutdown()
            self._owns_connection = False

    # -- where ------------------------------------------------------------

    def node_of(self, worker_id: int) -> str:
        node = self._nodes.get(worker_id)
        if node is None:
            return "?"
        return f"{node['ip']}/{node['node_id'][:6]}"

    def niceness_of(self, worker_id: int) -> int | None:
        node = self._nodes.get(worker_id)
        return None if node is None else node.get("niceness")

    def describe(self) -> dict[str, Any]:
        nodes = sorted({self.node_of(worker_id) for worker_id in self._actors})
        return {"backend": "ray", "ray": self.address, "nodes": nodes, "connect_s": round(self.connect_s, 2),
                "clock_offsets_ms": {node: round(ms, 3) for node, ms in self.clock_offsets_ms().items()}}


def _first_line(error: BaseException) -> str:
    """Ray's own words without the ids and addresses it appends ("… class_name: WorkerActor actor_id: …")."""
    text = " ".join(str(error).split())
    for cut in (" class_name:", " The actor is dead because"):
        text = text.split(cut)[0]
    return text[:160]
