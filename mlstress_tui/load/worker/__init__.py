"""A worker slot: virtual users, deadlines, the send path, the quota and the ticks, run by any backend."""

from mlstress_tui.load.worker.process import CRASH_STATUS, serve_worker, worker_main
from mlstress_tui.load.worker.worker import Worker

__all__ = ["CRASH_STATUS", "Worker", "serve_worker", "worker_main"]
