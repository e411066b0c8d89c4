"""Signals and a lost terminal: SIGTERM, SIGHUP and SIGINT stop the run cleanly; a gone SSH session leaves nothing behind.

A hung-up terminal stops being a tty, and SIGHUP does not always arrive (the
tmux server dies): the dashboard's clock asks `lost()` every tick. With the
terminal gone, Textual's shutdown can block for ever writing to it, so the run
is finished beside the shutdown and the process ends after a grace period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

TERMINAL_LOST_GRACE_S = 5.0
EXIT_INTERRUPTED = 130


class TerminalWatch:
    """Installs the signal handlers on the app's loop and watches the terminal's file descriptors."""

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self._on_signal = on_signal
        self._tty_fds: list[int] = []
        self._watching = False

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        self._tty_fds = [fd for fd in (0, 1, 2) if os.isatty(fd)]

    def lost(self) -> bool:
        """The terminal went away since the last look (reported once)."""
        if self._tty_fds and any(not os.isatty(fd) for fd in self._tty_fds):
            self._tty_fds = []
            return True
        return False

    def finish_beside_shutdown(self, finish: Callable[[], object], done: threading.Event) -> None:
        """Finish the run now on a thread; end the process if the app has not closed after the grace period."""
        if self._watching:
            return
        self._watching = True

        def watch() -> None:
            try:
                finish()
            except Exception:  # The summary is best effort here; run_dashboard tries again.
                log.exception("finishing the run after the terminal was lost")
            if not done.wait(TERMINAL_LOST_GRACE_S):
                log.error("the terminal is gone and the dashboard did not close: exiting")
                os._exit(EXIT_INTERRUPTED)

        threading.Thread(target=watch, name="terminal-lost", daemon=True).start()
