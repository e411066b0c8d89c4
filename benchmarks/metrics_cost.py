"""What /metrics costs the measurement: no-op capacity while Prometheus scrapes every second against while it does not.

Run: python benchmarks/metrics_cost.py [--seconds 60] [--window 3] [--repeats 3] [--runs 4] [--run-seconds 10]

No-op capacity is `mlstress-tui run --headless --target sleep:0ms` at one
user per core: every request costs only the harness, so any cost of the
endpoint shows in full. Two parts, each its own figure:

1. Same run, alternating: one run with `--metrics-port`; a thread here scrapes
   /metrics every second for `--window` seconds, then leaves it alone for as
   long, and so on. Each second of intervals.jsonl that lies wholly in a
   scraped or an unscraped window is that window's. The figure is each
   scraped window's mean against the unscraped seconds on either side of it
   (so the box's slow drift cancels), the median over every window of every
   run; the medians of the two kinds of seconds are printed per run too.
   Repeated `--repeats` times. The front end's own CPU in each kind of window
   (/proc/PID/stat) is the cost without the box's noise.
2. Separate runs, alternating (ABBA): runs without `--metrics-port` against
   runs with it scraped every second, summary.json's `throughput_rps`, medians.
   This includes what the endpoint costs when nobody scrapes (the view copied
   after each tick) and shows how far apart two runs of one kind are.

Also printed: a scrape's time as the scraper saw it and the body's size.
Target: scraped within 2% of unscraped. Prints figures; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

GOAL = 0.02
# Seconds of intervals.jsonl to leave out at the start (the workers' first second) and at each window's edges.
SETTLE_S = 2.0
EDGE_S = 0.25


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_s(pid: int | None) -> float | None:
    """CPU seconds the process has used (user + system), None when it is gone or unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Scraper(threading.Thread):
    """GET /metrics every `every_s` seconds (in windows of `window_s` on and off, or always); what each scrape cost,
    and the front end's CPU time at each window's edges."""

    def __init__(self, url: str, every_s: float = 1.0, window_s: float | None = None, pid: int | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.every_s, self.window_s, self.pid = url, every_s, window_s, pid
        self.times_ms: list[float] = []
        self.sizes: list[int] = []
        self.windows: list[tuple[float, float]] = []  # wall-clock spans in which it scraped
        self.cpu: list[tuple[float | None, float | None]] = []  # the front end's CPU seconds at each span's ends
        self.stop = threading.Event()

    def _get(self) -> bool:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                body = response.read()
        except OSError:
            return False  # not serving yet (the workers are starting), or no longer
        self.times_ms.append((time.perf_counter() - started) * 1000)
        self.sizes.append(len(body))
        return True

    def run(self) -> None:
        while not self.stop.is_set() and not self._get():
            self.stop.wait(0.1)  # the endpoint answers before the run starts: windows begin from there
        while not self.stop.is_set():
            began, cpu_began = time.time(), cpu_s(self.pid)
            end = began + self.window_s if self.window_s else float("inf")
            while not self.stop.is_set() and time.time() < end:
                self._get()
                self.stop.wait(max(min(self.every_s, end - time.time()), 0.0))
            self.windows.append((began, min(time.time(), end)))
            self.cpu.append((cpu_began, cpu_s(self.pid)))
            if self.window_s:
                self.stop.wait(self.window_s)

    def cpu_ms_per_s(self) -> tuple[float, float] | None:
        """The front end's CPU, ms per wall second, in the scraped windows and in the gaps between them."""
        spans = [(window, cpu) for window, cpu in zip(self.windows, self.cpu) if None not in cpu]
        if len(spans) < 2:
            return None
        on_cpu = sum(cpu[1] - cpu[0] for _, cpu in spans[1:])  # the first window holds the workers' start
        on_s = sum(hi - lo for (lo, hi), _ in spans[1:])
        gaps = list(zip(spans, spans[1:]))
        off_cpu = sum(after[1][0] - before[1][1] for before, after in gaps)
        off_s = sum(after[0][0] - before[0][1] for before, after in gaps)
        return on_cpu / on_s * 1000, off_cpu / off_s * 1000


def run_command(args: argparse.Namespace, out: Path, seconds: float, port: int | None,
                scraper: Scraper | None = None) -> None:
    """The run, scraped by `scraper` (started here, told the front end's pid) while it lasts."""
    command = [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--target", "sleep:0ms",
               "--concurrency", str(args.concurrency), "--duration", f"{seconds:g}", "--out", str(out)]
    if port is not None:
        command += ["--metrics-port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if scraper is not None:
        scraper.pid = process.pid
        scraper.start()
    try:
        _, stderr = process.communicate(timeout=seconds + 120)
    finally:
        if scraper is not None:
            scraper.stop.set()
            scraper.join(10)
        if process.poll() is None:
            process.kill()
    if process.returncode != 0:
        raise SystemExit(f"the run failed ({process.returncode}): {stderr[-2000:]}")


def same_run(args: argparse.Namespace, out: Path) -> tuple[float, float, list[float]]:
    """One run scraped in alternate windows: the median req/s of its scraped seconds and of the others, and for each
    scraped window its mean over the mean of the unscraped seconds on either side of it (slow drift cancels)."""
    port = free_port()
    scraper = Scraper(f"http://127.0.0.1:{port}/metrics", window_s=args.window)
    run_command(args, out, args.seconds, port, scraper)
    cpu = scraper.cpu_ms_per_s()
    if cpu is not None:
        args.cpu.append(cpu)
    args.scrape_ms += scraper.times_ms
    args.sizes += scraper.sizes
    summary = json.loads((out / "summary.json").read_text())
    start = datetime.fromisoformat(summary["started_at"]).timestamp()
    windows = scraper.windows
    # Where each whole second lies: in scraped window k, in the gap after window k, or astride an edge (left out).
    on: dict[int, list[float]] = {}
    off: dict[int, list[float]] = {}
    for line in (out / "intervals.jsonl").read_text().splitlines():
        interval = json.loads(line)
        end = start + interval["t"]
        begin = end - 1.0
        if interval["t"] < SETTLE_S or interval.get("paused") or not interval["requests"]:
            continue
        for k, (lo, hi) in enumerate(windows):
            following = windows[k + 1][0] if k + 1 < len(windows) else float("inf")
            if lo <= begin - EDGE_S and end + EDGE_S <= hi:
                on.setdefault(k, []).append(interval["throughput_rps"])
            elif hi <= begin - EDGE_S and end + EDGE_S <= following:
                off.setdefault(k, []).append(interval["throughput_rps"])
    seconds_on = [rps for values in on.values() for rps in values]
    seconds_off = [rps for values in off.values() for rps in values]
    if not seconds_on or not seconds_off:
        raise SystemExit(f"too few whole seconds of each kind ({len(seconds_on)} scraped, {len(seconds_off)} not): "
                         "give more --seconds or a longer --window")
    cycles = []
    for k, values in on.items():
        beside = off.get(k - 1, []) + off.get(k, [])
        if beside:
            cycles.append(statistics.fmean(values) / statistics.fmean(beside) - 1)
    return statistics.median(seconds_on), statistics.median(seconds_off), cycles


def separate_runs(args: argparse.Namespace, work: Path) -> dict[bool, list[float]]:
    order = [kind for _ in range((args.runs + 1) // 2) for kind in (False, True, True, False)][:2 * args.runs]
    figures: dict[bool, list[float]] = {False: [], True: []}
    for number, scraped in enumerate(order):
        out = work / f"separate-{number}"
        scraper = None
        port = None
        if scraped:
            port = free_port()
            scraper = Scraper(f"http://127.0.0.1:{port}/metrics")
        run_command(args, out, args.run_seconds, port, scraper)
        if scraper is not None:
            args.scrape_ms += scraper.times_ms
            args.sizes += scraper.sizes
        rps = json.loads((out / "summary.json").read_text())["throughput_rps"]
        figures[scraped].append(rps)
        print(f"    run {number + 1:>2} {'scraped' if scraped else 'without'}  {rps:>10,.0f} req/s", flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="part 1: length of each run (default 60)")
    parser.add_argument("--window", type=float, default=3.0, help="part 1: seconds scraped, then not (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="part 1: runs (default 3; 0 skips the part)")
    parser.add_argument("--runs", type=int, default=4, help="part 2: runs of each kind (default 4; 0 skips the part)")
    parser.add_argument("--run-seconds", type=float, default=10.0, help="part 2: length of each run (default 10)")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2, help="virtual users (default: cores)")
    args = parser.parse_args()
    args.scrape_ms, args.sizes, args.cpu = [], [], []
    print(f"metrics cost: sleep:0ms at concurrency {args.concurrency}, scraped every 1 s; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="mlstress-metrics-cost-") as work:
        if args.repeats:
            print(f"\n  1. same run, {args.seconds:g} s, scraped {args.window:g} s then not {args.window:g} s "
                  f"(medians of whole seconds)")
            ratios, cycles = [], []
            for number in range(args.repeats):
                on, off, run_cycles = same_run(args, Path(work) / f"same-{number}")
                ratios.append(on / off - 1)
                cycles += run_cycles
                print(f"    run {number + 1}: median second scraped {on:>10,.0f} req/s, not {off:>10,.0f} req/s: "
                      f"{ratios[-1]:+.2%}   ({len(run_cycles)} scraped windows against their neighbours: median "
                      f"{statistics.median(run_cycles):+.2%})" if run_cycles else "", flush=True)
            middle = statistics.median(cycles)
            quartiles = statistics.quantiles(cycles, n=4) if len(cycles) > 1 else [middle, middle, middle]
            print(f"    all {len(cycles)} scraped windows against the unscraped seconds beside them: median "
                  f"{middle:+.2%} ({'within' if abs(middle) <= GOAL else 'outside'} the {GOAL:.0%} goal), "
                  f"quartiles {quartiles[0]:+.1%} .. {quartiles[2]:+.1%} (the box's own noise)")
            if args.cpu:
                on = statistics.median(cpu[0] for cpu in args.cpu)
                off = statistics.median(cpu[1] for cpu in args.cpu)
                print(f"    the front end's CPU: {on:.1f} ms a second while scraped, {off:.1f} ms while not "
                      f"(medians of the runs): scraping costs {on - off:+.1f} ms of CPU a second, "
                      f"{(on - off) / 10 / (os.cpu_count() or 1):+.2f}% of the box's cores")
        if args.runs:
            print(f"\n  2. separate runs of {args.run_seconds:g} s, alternating ABBA (summary.json throughput_rps)")
            figures = separate_runs(args, Path(work))
            plain, scraped = statistics.median(figures[False]), statistics.median(figures[True])
            change = scraped / plain - 1
            spread = max(_spread(figures[False]), _spread(figures[True]))
            print(f"    median without --metrics-port {plain:>10,.0f} req/s; scraped {scraped:>10,.0f} req/s: "
                  f"{change:+.2%} ({'within' if abs(change) <= GOAL else 'outside'} the {GOAL:.0%} goal); runs "
                  f"of one kind differ by up to {spread:.1%}")
    if args.scrape_ms:
        print(f"\n  a scrape: median {statistics.median(args.scrape_ms):.1f} ms, max {max(args.scrape_ms):.1f} ms "
              f"(wall time as the scraper saw it), {statistics.median(args.sizes) / 1024:.1f} KiB, "
              f"{len(args.scrape_ms)} scrapes")
    return 0


def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0


if __name__ == "__main__":
    raise SystemExit(main())
