"""How much CPU the dashboard itself burns: the UI process's share of one core during a steady run.

Runs the real app (real Linux driver, real escape-code output) in a pseudo-terminal of the given size,
against the tests' fake engine producing steady ticks at concurrency 16, skips a warm-up, then reports
`time.process_time()` delta / wall-clock delta measured inside the UI process. Target: ≤ 15 %.

    python benchmarks/ui_cost.py [--seconds 20] [--size 120x40] [--refresh-hz 4] [--chart-hz 1.5]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP_S = 3.0


def measure_in_child(result_path: str, seconds: float, refresh_hz: float, chart_hz: float) -> None:
    """Inside the pty: run the dashboard, measure CPU between warm-up and the end, write the result."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tui_fakes import FakeEngine, fake_session  # noqa: PLC0415 - the fake lives with the tests

    from mlstress_tui.tui.app import DashboardApp  # noqa: PLC0415

    class MeasuredApp(DashboardApp):
        def on_ready(self) -> None:
            self.set_timer(WARMUP_S, self._start_measuring)

        def _start_measuring(self) -> None:
            self._t0 = (time.perf_counter(), time.process_time(), engine.polls)
            self.set_timer(seconds, self._stop_measuring)

        def _stop_measuring(self) -> None:
            wall0, cpu0, polls0 = self._t0
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            Path(result_path).write_text(json.dumps({
                "wall_s": wall, "cpu_s": cpu, "polls": engine.polls - polls0,
                "ticks": self.session.live.ticks_seen, "size": list(self.size),
            }))
            self.exit()

    with tempfile.TemporaryDirectory() as run_dir:
        # The benchmark's own fake engine (the app reaches it only through the session).
        engine = FakeEngine(Path(run_dir), live=True, concurrency=16)
        MeasuredApp(fake_session(engine), refresh_hz=refresh_hz, chart_hz=chart_hz).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="120x40")
    parser.add_argument("--refresh-hz", type=float, default=4.0)
    parser.add_argument("--chart-hz", type=float, default=1.5)
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_path = handle.name

    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(sys.stdout.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        os.environ.setdefault("TERM", "xterm-256color")
        try:
            measure_in_child(result_path, args.seconds, args.refresh_hz, args.chart_hz)
        finally:
            os._exit(0)

    # The parent is the terminal: it reads (and drops) everything the app draws, as a terminal would.
    drawn = 0
    tail = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += len(chunk)
            tail = (tail + chunk)[-4000:]
    os.waitpid(pid, 0)
    result = json.loads(Path(result_path).read_text() or "{}")
    os.unlink(result_path)
    if not result:
        print("the dashboard did not report a measurement; its last output:", file=sys.stderr)
        print(tail.decode("utf-8", "replace"), file=sys.stderr)
        return 1
    share = result["cpu_s"] / result["wall_s"]
    print(f"dashboard UI process at {result['size'][0]}x{result['size'][1]}, refresh {args.refresh_hz:g} Hz, "
          f"charts {args.chart_hz:g} Hz, steady fake run at concurrency 16")
    print(f"  measured {result['wall_s']:.1f} s after {WARMUP_S:g} s warm-up: "
          f"CPU {result['cpu_s']:.2f} s = {share:.1%} of one core (target <= 15%)")
    print(f"  {result['polls']} polls, {result['ticks']} ticks drained, {drawn / 1024:.0f} KiB drawn to the terminal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
