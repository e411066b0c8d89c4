"""A worker slot's life: the process entry (signals, output capture, exit) and the part any backend runs.

`serve_worker` is the same under both backends: open the target, say ready,
wait for the start, run, say how it ended. `worker_main` wraps it as a
process on this machine: it dies with the engine, ignores the terminal's
Ctrl-C (the engine decides how to stop), takes a SIGTERM as a stop, and
exits at once at the end so that threads stuck in target code cannot hold it.
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path
from typing import Any

from setproctitle import setproctitle

from mlstress_tui.errors import UsageError
from mlstress_tui.load.protocol import Crashed, Exited, Failed, Ready, Start, WorkerConfig, WorkerPlan
from mlstress_tui.load.target_output import TargetOutput
from mlstress_tui.load.tickets import Tickets
from mlstress_tui.load.failures import describe_failure
from mlstress_tui.load.worker.worker import ControlChannel, StatsChannel, Worker

# The exit status of a worker whose own loop failed (EX_SOFTWARE); it says why on the stats queue first.
CRASH_STATUS = 70
_PR_SET_PDEATHSIG = 1

# The worker of this process, for the SIGTERM handler (which may only set a flag: it runs between any two
# bytecodes of the tick thread, perhaps while that thread holds a lock).
_running: Worker | None = None


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the engine's process dies: a lost front end leaves no load behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _on_sigterm(signum: int, frame: object) -> None:
    if _running is not None:
        _running.sigterm = True


def worker_main(config: WorkerConfig, plan: WorkerPlan, control: Any, stats_queue: Any,
                tickets: Tickets | None) -> None:
    """Entry point of a worker process."""
    _die_with_parent()
    setproctitle(f"mlstress-tui worker {config.worker_id}: {config.target.label}")
    # Ctrl-C reaches the whole process group; the engine decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A SIGTERM to the group (a CI runner's timeout) is a stop, said as such, not a death.
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Before the target is imported: whatever it prints from then on goes to target.log.
    output = (TargetOutput(Path(config.output_path), config.output_cap_bytes, f"worker {config.worker_id}")
              if config.output_path else None)
    _leave(stats_queue, output, serve_worker(config, plan, control, stats_queue, tickets, output))


def serve_worker(config: WorkerConfig, plan: WorkerPlan, control: ControlChannel, stats: StatsChannel,
                 tickets: Tickets | None, output: TargetOutput | None = None) -> int:
    """Open the target, say ready, run from the start message until stopped; the exit status to end with."""
    global _running
    try:
        worker = Worker(config, plan, stats, tickets)
    except UsageError as error:
        stats.put(Failed(config.worker_id, str(error)))
        return 0
    except BaseException as error:  # setup failures reach the user as one line, not a traceback
        kind, message = describe_failure(error)
        stats.put(Failed(config.worker_id, f"{kind}: {message}"))
        return 0
    worker.output = output
    stats.put(Ready(config.worker_id))
    message = control.recv()
    if not isinstance(message, Start):
        stats.put(Exited(config.worker_id))
        return 0
    worker.start_ns = message.start_ns
    if config.duration_s:
        worker.loops.end_ns = worker.start_ns + int(config.duration_s * 1e9)
    _running = worker
    failure = None
    try:
        worker.run(control)
    except BaseException as error:  # MemoryError under a memory limit, a thread that cannot start: this worker died
        kind, text = describe_failure(error)
        failure = f"{kind}: {text}" if text != kind else kind
    worker.pool.close_idle(worker.deadlines.in_use())
    if failure is not None:
        # Said before the exit, so the engine reports the death with its cause rather than a bare status.
        stats.put(Crashed(config.worker_id, failure))
        return CRASH_STATUS
    stats.put(Exited(config.worker_id, sigterm=worker.sigterm))
    return 0


def _leave(stats_queue: Any, output: TargetOutput | None, status: int = 0) -> None:
    """Flush what this worker sent, then exit at once: threads stuck in target code must not hold the process."""
    if output is not None:
        output.close()
    stats_queue.close()
    stats_queue.join_thread()
    os._exit(status)
