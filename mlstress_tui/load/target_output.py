"""What a target prints or logs goes to the run's `target.log`, capped, never over the screen."""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path

# Beyond this many bytes per worker, lines are counted but not written (the note at the end says how many).
DEFAULT_CAP_BYTES = 8 * 1024 * 1024


class TargetOutput:
    """Redirects this process's stdout and stderr (the file descriptors, so C code and subprocesses too) into a file.

    A reader thread copies the pipe into `path` up to `cap_bytes` and counts lines, so
    the dashboard can say that the target wrote output without ever showing it raw. A
    write that fails (a full disk) stops the copying, never the reading: the pipe never
    fills, so the target's next `print` never blocks, and what was dropped is counted.
    """

    def __init__(self, path: Path, cap_bytes: int = DEFAULT_CAP_BYTES, label: str = "") -> None:
        self.path = path
        self.cap_bytes = cap_bytes
        self.label = label
        self._lines = 0
        self._taken = 0
        self._written = 0
        self._dropped_lines = 0
        self.write_error: str | None = None
        self._dropped_reported = 0
        self._ended = False
        self._lock = threading.Lock()
        read_end, write_end = os.pipe()
        for fd in (1, 2):
            os.dup2(write_end, fd)
        os.close(write_end)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, errors="replace")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, errors="replace")
        # Appending: every worker writes its own lines into the one file, whole chunks at a time.
        self._file = open(path, "ab", buffering=0)
        self._reader = threading.Thread(target=self._copy, args=(read_end,), daemon=True, name="target-output")
        self._reader.start()

    def _copy(self, read_end: int) -> None:
        while chunk := os.read(read_end, 65536):
            lines = chunk.count(b"\n")
            with self._lock:
                self._lines += lines
                room = self.cap_bytes - self._written
                if room > 0 and self.write_error is None:
                    try:
                        self._file.write(chunk[:room])
                    except OSError as error:  # ENOSPC, EIO: stop copying, go on reading
                        self.write_error = error.strerror or str(error)
                        self._dropped_lines += lines
                        continue
                    self._written += min(len(chunk), room)
                else:
                    self._dropped_lines += lines
        os.close(read_end)

    def take_lines(self) -> int:
        """Lines written since the last call."""
        with self._lock:
            lines, self._taken = self._lines - self._taken, self._lines
            return lines

    def end(self) -> None:
        """Flush and stop the pipe, then wait until the reader has copied and counted all of it: the worker's last
        tick counts every line the run wrote (what the target prints after it goes nowhere)."""
        if self._ended:
            return
        self._ended = True
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(devnull, fd)  # the pipe's last writer goes: the reader sees its end
        os.close(devnull)
        self._reader.join(1.0)

    def close(self) -> None:
        """End the pipe, note what the cap dropped, close the file."""
        self.end()
        try:
            if self._dropped_lines and self.write_error is None:
                self._file.write(f"\n[mlstress-tui: {self._dropped_lines} more lines from {self.label} dropped after "
                                 f"the {self.cap_bytes // 1024 // 1024} MB cap]\n".encode())
            self._file.close()
        except OSError:
            pass  # the disk that refused the output refuses the note too: the count is in the summary

    def take_dropped(self) -> tuple[int, str | None]:
        """Lines dropped since the last call because the file could not be written, and why."""
        with self._lock:
            if self.write_error is None:
                return 0, None
            dropped, self._dropped_reported = self._dropped_lines - self._dropped_reported, self._dropped_lines
            return dropped, self.write_error
