"""Worker slots as processes on this machine (spawned, each with a control pipe, one shared stats queue)."""

from __future__ import annotations

import multiprocessing
import os
import queue

from typing import Any

from mlstress_tui.load.backends import WorkerBackend, WorkerExit
from mlstress_tui.load.protocol import Control, Said, Start, WorkerConfig, WorkerPlan
from mlstress_tui.load.tickets import ProcessTickets, Tickets
from mlstress_tui.load.worker import worker_main


class LocalProcesses(WorkerBackend):
    name = "local"
    can_replace = True

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._stats_queue = self._context.Queue()
        self._controls: dict[int, Any] = {}
        self._processes: dict[int, Any] = {}
        self._tickets: ProcessTickets | None = None

    def default_workers(self) -> int:
        return os.cpu_count() or 1

    def tickets(self, slots: int) -> Tickets:
        if self._tickets is None:
            self._tickets = ProcessTickets(self._context, slots)
        return self._tickets

    def slots(self) -> list[int]:
        return list(self._processes)

    def spawn(self, worker_id: int, config: WorkerConfig, plan: WorkerPlan) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=worker_main,
                                        args=(config, plan, theirs, self._stats_queue, self._tickets),
                                        name=f"mlstress-worker-{worker_id}", daemon=True)
        process.start()
        self._controls[worker_id], self._processes[worker_id] = ours, process

    def send(self, worker_id: int, message: Control) -> None:
        try:
            self._controls[worker_id].send(message)
        except (OSError, ValueError, KeyError):
            pass  # that worker has already exited

    def start(self, worker_id: int, start_perf_ns: int, start_wall_ns: int) -> None:
        # One machine, one monotonic clock: the start is an instant every process reads the same.
        self.send(worker_id, Start(start_perf_ns))

    def receive(self, timeout_s: float) -> Said | None:
        try:
            said: Said = self._stats_queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        return said

    def exit_of(self, worker_id: int) -> WorkerExit | None:
        code = self._processes[worker_id].exitcode
        if code is None:
            return None
        return WorkerExit(code, f"killed by signal {-code}" if code < 0 else f"exit status {code}")

    def join(self, worker_id: int, timeout_s: float) -> bool:
        process = self._processes[worker_id]
        process.join(timeout_s)
        return not process.is_alive()

    def kill(self, worker_id: int) -> None:
        process = self._processes.get(worker_id)
        if process is not None and process.is_alive():
            process.kill()
            process.join(1.0)

    def kill_all(self) -> None:
        # What is still alive here did not end when asked (a SIGTERM is a polite stop to a worker, which a
        # wedged one never gets to): SIGKILL.
        processes = list(self._processes.values())
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(1.0)

    def pids(self) -> list[int]:
        return [process.pid for process in self._processes.values()]

    def alive(self) -> list[bool]:
        return [process.is_alive() for process in self._processes.values()]
