"""The heavy-user advice applied: outliers finds the breach N, precompute caches users above N, outliers again.

Run: python benchmarks/redis_cache.py [--db PATH] [--users 20000] [--threshold-ms 10] [--requests-per-stratum 200]
         [--repeats 3] [--redis redis://127.0.0.1:6379/14] [--production-users 10000000] [--margin 1.0]

1. A generated database (default 20,000 users, mean 45 events, seed 42; made once
   into /tmp/mlstress-bench-<users>.sqlite and reused) and
   `mlstress-tui outliers --db PATH --threshold-ms T --headless`, --repeats
   times: the breach event count N is the median of the runs'.
2. `mlstress-tui precompute --db PATH --redis URL --above N` (or N x --margin): users written,
   users/s, the time taken, Redis memory before and after (the Redis database
   is emptied first: it is the benchmark's own).
3. `mlstress-tui outliers --db PATH --cache URL --cache-above N`, --repeats
   times: the same strata, the same requests, users above N served from Redis.

Prints each stratum's median p95 before and after, in how many runs a breach remains, the cost
(Redis memory for the users above N, precompute time) and both extrapolated to
--production-users at the same shape: users above N scale with the population,
memory with bytes per user, precompute time with users/s (heavy users at a
larger scale hold as many events each when the shape is the same). Figures
only; exits 0. Until the harness counts requests per path, the figures are
outliers.json's (every stratum's requests, whichever path served them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def database(path: Path | None, users: int) -> Path:
    from mlstress_tui.synth import GenerateParams, generate_sqlite

    path = path or Path(f"/tmp/mlstress-bench-{users // 1000}k.sqlite")
    if not path.exists():
        started = time.monotonic()
        generate_sqlite(GenerateParams(users=users), path)
        print(f"  generated {path} ({users:,} users) in {time.monotonic() - started:.0f} s")
    return path


def command(name: str, argv: list[str]) -> tuple[str, float]:
    """The real command, as a user runs it: what it printed and its wall time."""
    started = time.monotonic()
    process = subprocess.run([sys.executable, "-m", "mlstress_tui", name, *argv], capture_output=True, text=True)
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"{name} failed ({process.returncode}): {process.stderr[-2000:]}")
    return process.stdout, wall


def outliers(db: Path, threshold_ms: float, per_stratum: int, out: Path, *extra: str) -> tuple[dict, float]:
    _, wall = command("outliers", ["--db", str(db), "--threshold-ms", f"{threshold_ms:g}", "--headless",
                                   "--requests-per-stratum", str(per_stratum), "--out", str(out), *extra])
    return json.loads((out / "outliers.json").read_text()), wall


def size(n_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n_bytes) >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes:,.0f} B"


def breach_text(report: dict) -> str:
    breach = report["breach_event_count"]
    if breach is None:
        return "none"
    return f"{breach:,} events ({report['users_above']:,} users, {report['population_share_above']:.3%})"


def median_p95(reports: list[dict]) -> dict[str, float]:
    """Each stratum's median p95 over the runs."""
    by_name: dict[str, list[float]] = {}
    for report in reports:
        for stratum in report["strata"]:
            if stratum["p95_ms"] is not None:
                by_name.setdefault(stratum["name"], []).append(stratum["p95_ms"])
    return {name: statistics.median(values) for name, values in by_name.items()}


def breaches(reports: list[dict]) -> str:
    return ", ".join("none" if r["breach_event_count"] is None else f"{r['breach_event_count']:,}" for r in reports)


def main() -> None:
    import redis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="database (default: one generated into /tmp with --users)")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--threshold-ms", type=float, default=10.0)
    parser.add_argument("--requests-per-stratum", type=int, default=200, help="outliers' own default")
    parser.add_argument("--repeats", type=int, default=3, help="outliers runs before and after (medians reported)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="a Redis database of the benchmark's own (emptied)")
    parser.add_argument("--production-users", type=int, default=10_000_000)
    parser.add_argument("--margin", type=float, default=1.0,
                        help="cache from margin x the breach (default 1: exactly the breach, as the action says)")
    parser.add_argument("--out", type=Path, help="keep every run's files here (default: a temporary directory)")
    args = parser.parse_args()
    print(f"redis cache benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    db = database(args.db, args.users)
    with tempfile.TemporaryDirectory(prefix="mlstress-redis-") as scratch:
        out = args.out or Path(scratch)
        before = []
        for run in range(args.repeats):
            report, wall = outliers(db, args.threshold_ms, args.requests_per_stratum, out / f"before-{run}")
            before.append(report)
            print(f"  outliers --threshold-ms {args.threshold_ms:g} (run {run + 1}): breach {breach_text(report)}  "
                  f"({wall:.1f} s, load {os.getloadavg()[0]:.1f})", flush=True)
        found = [r["breach_event_count"] for r in before if r["breach_event_count"] is not None]
        if len(found) * 2 <= len(before):
            print("  no breach in most runs: nothing to cache at this budget; lower --threshold-ms")
            return
        median_breach = int(statistics.median(found))
        breach = int(median_breach * args.margin)
        print(f"\n1. breach event count before: {breaches(before)} -> median {median_breach:,}")
        client = redis.Redis.from_url(args.redis)
        client.flushdb()
        client.close()
        printed, _ = command("precompute", ["--db", str(db), "--redis", args.redis, "--above", str(breach),
                                            "--out", str(out / "precompute")])
        pre = json.loads((out / "precompute" / "precompute.json").read_text())
        margin = f" ({args.margin:g} x the breach)" if args.margin != 1 else ""
        print(f"\n2. precompute --above {breach:,}{margin}: {printed.strip().splitlines()[0]}\n", flush=True)
        after = []
        for run in range(args.repeats):
            report, wall = outliers(db, args.threshold_ms, args.requests_per_stratum, out / f"after-{run}",
                                    "--cache", args.redis, "--cache-above", str(breach))
            after.append(report)
            print(f"  outliers --cache … --cache-above {breach:,} (run {run + 1}): breach {breach_text(report)}  "
                  f"({wall:.1f} s, load {os.getloadavg()[0]:.1f})", flush=True)
        gone = sum(r["breach_event_count"] is None for r in after)
        print(f"\n3. breach event count behind the cache: {breaches(after)} -> none in {gone} of {len(after)} runs")

        then_p95, now_p95 = median_p95(before), median_p95(after)
        print(f"\n  {'stratum':<22} {'events':>15} {'users':>7} {'p95 before':>11} {'p95 after':>10} {'ratio':>7}"
              f"   (medians of {args.repeats} runs)")
        for stratum in before[0]["strata"]:
            then, now = then_p95.get(stratum["name"]), now_p95.get(stratum["name"])
            span = f"{stratum['min_events']:,}-{stratum['max_events']:,}"
            ratio = f"{now / then:7.2f}" if then and now else f"{'':>7}"
            cached = " cached" if stratum["min_events"] >= breach else (" partly" if stratum["max_events"] >= breach else "")
            print(f"  {stratum['name']:<22} {span:>15} {stratum['users']:>7,} {then or float('nan'):>9.2f}ms "
                  f"{now if now is not None else float('nan'):>8.2f}ms {ratio}{cached}")
        heaviest = before[0]["strata"][-1]["name"]
        heaviest_after = now_p95[heaviest]
        print(f"\n  heaviest stratum ({heaviest}) p95: {then_p95[heaviest]:.2f} ms -> {heaviest_after:.2f} ms "
              f"(budget {args.threshold_ms:g} ms: {'under' if heaviest_after < args.threshold_ms else 'OVER'})")
        print(f"  last run behind the cache: {after[-1]['action']}")

        memory = pre["memory"]
        users_cached = pre["users"]
        per_user = memory["bytes_per_user"] or 0.0
        print(f"\n  cost at this scale: {users_cached:,} users cached in {size(memory['keys_bytes'])} of Redis memory "
              f"({per_user:,.0f} B per user by MEMORY USAGE; used_memory moved {memory['delta_bytes']:+,} B), "
              f"precompute {pre['seconds']:.2f} s ({pre['users_per_s']:,.0f} users/s)")
        total_users = sum(stratum["users"] for stratum in before[0]["strata"])
        share = users_cached / total_users if total_users else 0.0
        production_cached = round(share * args.production_users)
        production_bytes = production_cached * per_user
        production_seconds = production_cached / pre["users_per_s"] if pre["users_per_s"] else float("nan")
        print(f"  at {args.production_users:,} users (same shape): {production_cached:,} users above {breach:,} events "
              f"({share:.3%}), Redis memory ~{size(production_bytes)}, precompute ~{production_seconds / 60:,.1f} min "
              f"at the same users/s (one process, one SQLite connection)")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
