"""What a latency would be without the harness: bare sleepers, and the engine taking turns with them.

A run a few seconds after another on a shared machine can differ by more than
the harness does (p99 2.4 against 4.3 ms back to back on a 2-core box), so the
engine and the bare sleepers take turns in short slices within one window:
both sides see the same moments of the machine. `selfcheck` and
`benchmarks/fidelity.py` both measure fidelity this way, here.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets.sleep import SleepTarget
from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.session import RunSession

# The bare sleepers' shared flag.
_HELD, _RUNNING, _QUIT = 0, 1, 2
# How long one side runs before the other takes its turn.
TURN_S = 0.25


def tight_loop_truth(sleep_ms: float, seconds: float) -> LatencyHistogram:
    """The calibration target measured with nothing else around it: one thread, a bare loop."""
    clock, pause = time.perf_counter_ns, sleep_ms / 1000.0
    samples = []
    deadline = clock() + int(seconds * 1e9)
    while (started := clock()) < deadline:
        time.sleep(pause)
        samples.append(clock() - started)
    histogram = LatencyHistogram()
    histogram.record_many(np.array(samples, dtype=np.int64))
    return histogram


def _sleepers(threads: int, sleep_s: float, flag: Any, gate: Any, ready: Any, results: Any) -> None:
    """One process's bare sleep loops: sleep, read the clock, append; blocked on `gate` while held."""
    samples: list[list[int]] = [[] for _ in range(threads)]

    def loop(out: list[int]) -> None:
        clock = time.perf_counter_ns
        while (state := flag.value) != _QUIT:
            if state == _HELD:
                gate.wait()
                continue
            started = clock()
            time.sleep(sleep_s)
            out.append(clock() - started)

    workers = [threading.Thread(target=loop, args=(out,)) for out in samples]
    for worker in workers:
        worker.start()
    with ready.get_lock():
        ready.value += 1
    for worker in workers:
        worker.join()
    results.put([value for out in samples for value in out])


class BareSleepers:
    """`count` sleep loops with no harness, spread over one process per core as the engine's workers are; held
    until `run`."""

    def __init__(self, count: int, sleep_ms: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._flag = context.RawValue("b", _HELD)
        self._gate = context.Event()
        self._results = context.Queue()
        ready = context.Value("i", 0)
        cores = os.cpu_count() or 1
        shares = [count // cores + (1 if i < count % cores else 0) for i in range(cores)]
        self._processes = [context.Process(target=_sleepers, daemon=True,
                                           args=(share, sleep_ms / 1000.0, self._flag, self._gate, ready,
                                                 self._results))
                           for share in shares if share]
        for process in self._processes:
            process.start()
        while ready.value < len(self._processes):
            time.sleep(0.01)

    def run(self) -> None:
        self._flag.value = _RUNNING
        self._gate.set()

    def hold(self) -> None:
        # The gate closes before the flag says held: a loop that reads "held" always blocks.
        self._gate.clear()
        self._flag.value = _HELD

    def close(self) -> LatencyHistogram:
        """Stop the loops; what they measured."""
        self._flag.value = _QUIT
        self._gate.set()
        samples = [value for _ in self._processes for value in self._results.get()]
        for process in self._processes:
            process.join()
        histogram = LatencyHistogram()
        histogram.record_many(np.array(samples, dtype=np.int64))
        return histogram


Side = tuple[Callable[[], None], Callable[[], None]]


def take_turns(sides: list[Side], seconds: float, turn_s: float = TURN_S,
               pump: Callable[[], None] = lambda: None) -> None:
    """Each side's (run, hold) in turn for `turn_s` until each has run `seconds`; `pump` every 0.1 s meanwhile."""
    for _ in range(max(1, round(seconds / turn_s))):
        for run, hold in sides:
            run()
            until = time.monotonic() + turn_s
            while (left := until - time.monotonic()) > 0:
                time.sleep(min(left, 0.1))
                pump()
            hold()


@dataclass(frozen=True)
class InTurns:
    """The engine's latency and the bare sleepers', measured in turns over the same window."""

    engine: dict[str, Any]  # the engine run's summary
    sleepers: LatencyHistogram

    def error(self, key: str) -> float:
        """How far the engine's figure ("p50", "p99", …) is from the bare sleepers' (+0.05: 5% above)."""
        return float(self.engine["latency_ms"][key]) / (self.sleepers.summary_ms()[key] or 1.0) - 1


def engine_in_turns(sleep_ms: float, concurrency: int, seconds: float, run_dir: Path,
                    turn_s: float = TURN_S) -> InTurns:
    """`sleep:<sleep_ms>` through the engine at `concurrency` against as many bare sleepers, in turns."""
    sleepers = BareSleepers(concurrency, sleep_ms)
    try:
        engine = LoadEngine(SleepTarget(sleep_ms), LoadSpec(concurrency=concurrency), run_dir=run_dir)
        session = RunSession(engine, run_dir=engine.run_dir)
        session.start()
        try:
            session.pause()
            take_turns([(session.resume, session.pause), (sleepers.run, sleepers.hold)], seconds, turn_s,
                       session.pump)
        finally:
            session.stop()
            summary = session.finish()
    finally:
        bare = sleepers.close()
    return InTurns(summary, bare)


def noise_of_turns(count: int, sleep_ms: float, seconds: float, turn_s: float = TURN_S) -> float:
    """Two identical groups of bare sleepers in turns: how far apart their p99s land by chance."""
    first, second = BareSleepers(count, sleep_ms), BareSleepers(count, sleep_ms)
    take_turns([(first.run, first.hold), (second.run, second.hold)], seconds, turn_s)
    p99_first, p99_second = first.close().percentile_ms(99), second.close().percentile_ms(99)
    return (p99_second or 0.0) / (p99_first or 1.0) - 1
