"""PostgreSQL: generation speed beside SQLite and COPY's own floor; query throughput beside a bare loop and
pgbench; the pool-saturation failure; recovery from terminated backends. All in one run.

Run: python benchmarks/postgres.py [--generate] [--query] [--saturation] [--faults]
                                   [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres] [--users 100000]
                                   [--dsn URL] [--query-users 20000] [--seconds 10] [--repetitions 5]

With none of the part flags, all four run. Uses a database of its own
(created, dropped at the end) on the server at --admin-dsn, or, for parts 2-4,
the database at --dsn (`mlstress-tui generate --dsn URL --users 20000`).

1. Generation, 100,000 users (~4.5 M events): `generate --dsn` events/s; the
   SQLite path (`generate --out`) events/s; PostgreSQL's own floor — the same
   rows COPYed back FROM a file (as psql's \\copy does), then the same indexes.
   Targets: at least the SQLite path's events/s; at least 0.5x the floor.
2. Query throughput at concurrency = cores on a 20,000-user database, repeated
   (`--repetitions`, medians): the tool (its engine and session in this
   process, closed loop, one connection slot per virtual user); a bare psycopg
   loop (as many processes, one autocommit connection each, the tool's own
   FEATURE_QUERY with its query_parameters, prepared, fetchone, no harness,
   each process asking for the users a tool worker's virtual user asks for, in
   the same order: the first users decide whether PostgreSQL keeps a generic
   plan or plans every request anew, `plans` says which, generic/custom);
   `pgbench -M prepared` with an equivalent query and as many clients (found
   on PATH or under /usr/lib/postgresql/*/bin). Both Python sides are measured
   over the same span after start-up: throughput and client CPU per request
   (the tool's: its worker processes' CPU from /proc; the bare loop's: its
   processes' own CPU time). Target: the tool at least 0.95x the bare loop
   (median of the runs' ratios), the pgbench ratio printed beside it.
3. Pool saturation: `run --preset pool-saturation` (2,500 req/s offered, a pool
   of 1) and the same with `--pool-size 8`: throughput, pool wait p99 vs query p99.
4. Faults: `pg_terminate_backend` on the tool's connections 3 s into a 8 s run:
   requests lost (connection_lost), seconds until throughput is back to 80%.

Prints figures and MET/MISSED per target; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

from mlstress_tui.pipeline.postgres_features import FEATURE_QUERY, query_parameters
from mlstress_tui.synth import GenerateParams, generate_sqlite
from mlstress_tui.synth.postgres_writer import INDEXES, TABLES, generate_postgres

CORES = os.cpu_count() or 1


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlstress_tui", *argv], capture_output=True, text=True)


def part_generate(dsn: str, users: int, scratch: Path) -> None:
    print(f"\n== 1. generation, {users:,} users", flush=True)
    params = GenerateParams(users=users)
    started = time.perf_counter()
    pg = generate_postgres(params, dsn, force=True)
    pg_rate = pg.events / (time.perf_counter() - started)
    started = time.perf_counter()
    lite = generate_sqlite(params, scratch / "bench.sqlite", force=True)
    lite_rate = lite.events / (time.perf_counter() - started)
    floor_s = copy_floor(dsn, scratch)
    floor_rate = pg.events / floor_s
    print(f"  generate --dsn      {pg_rate:>12,.0f} events/s  ({pg.events:,} events)")
    print(f"  generate --out      {lite_rate:>12,.0f} events/s  (SQLite)")
    print(f"  COPY FROM file + indexes (floor) {floor_rate:>12,.0f} events/s  ({floor_s:.1f} s)")
    print(f"  vs SQLite {pg_rate / lite_rate:.2f}x (target >= 1.0: {'MET' if pg_rate >= lite_rate else 'MISSED'});"
          f" vs floor {pg_rate / floor_rate:.2f}x (target >= 0.5: {'MET' if pg_rate >= 0.5 * floor_rate else 'MISSED'})")


def copy_floor(dsn: str, scratch: Path) -> float:
    """Seconds for PostgreSQL's own path: the same rows COPYed FROM files, then the same indexes."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        files = {}
        for table in TABLES:
            files[table] = scratch / f"{table}.copy"
            with open(files[table], "wb") as out, connection.cursor().copy(f"COPY {table} TO STDOUT") as copy:
                for chunk in copy:
                    out.write(chunk)
        started = time.perf_counter()
        for table, columns in TABLES.items():
            connection.execute(f"DROP TABLE IF EXISTS floor_{table}")
            connection.execute(f"CREATE UNLOGGED TABLE floor_{table} {columns}")
            with open(files[table], "rb") as source, connection.cursor().copy(f"COPY floor_{table} FROM STDIN") as copy:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
        for index, (table, column) in INDEXES.items():
            connection.execute(f"CREATE INDEX floor_{index} ON floor_{table} ({column})")
        for table in TABLES:
            connection.execute(f"ALTER TABLE floor_{table} SET LOGGED")
        elapsed = time.perf_counter() - started
        for table in TABLES:
            connection.execute(f"DROP TABLE floor_{table}")
    return elapsed


def _bare_loop(dsn: str, seconds: float, worker_id: int, out) -> None:
    """The floor: one autocommit connection, the tool's own FEATURE_QUERY and parameters, prepared, fetchone, for
    the users the tool's virtual user on `worker_id` asks for, in its order.

    The same users matter: PostgreSQL plans a prepared statement's first five
    executions for their own values and then keeps a generic plan only if it
    looks no dearer than those did, so the users drawn first decide whether every
    later request is planned anew (on this query's bind, 0.15 ms against 0.035).
    Drawn differently, the two sides measured two different servers.
    """
    from mlstress_tui.load.users import UserSampler, UserSource

    users = UserSampler.from_source(UserSource(db_path=None, dsn=dsn)).stream(worker_id, 1)
    with psycopg.connect(dsn, autocommit=True) as connection:
        done = 0
        deadline = time.perf_counter() + seconds
        cpu = time.process_time()
        while time.perf_counter() < deadline:
            connection.execute(FEATURE_QUERY, query_parameters(next(users)[0]), prepare=True).fetchone()
            done += 1
        cpu = time.process_time() - cpu
        plans = connection.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements").fetchone()
        out.put((done, cpu, plans or (0, 0)))


def bare_loop(dsn: str, seconds: float) -> tuple[float, float, str]:
    """Requests/s of CORES processes (one per tool worker, its user's users), one connection each, the same prepared
    query; client CPU µs per query; and the plans PostgreSQL used (generic or custom) on those connections."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_bare_loop, args=(dsn, seconds, worker, results)) for worker in range(CORES)]
    for process in processes:
        process.start()
    measured = [results.get() for _ in processes]
    for process in processes:
        process.join()
    total = sum(done for done, _, _ in measured)
    plans = " ".join(f"{generic}g/{custom}c" for _, _, (generic, custom) in measured)
    return total / seconds, sum(cpu for _, cpu, _ in measured) / max(total, 1) * 1e6, plans


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/<pid>/stat (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tool_loop(dsn: str, seconds: float, run_dir: Path, *, pool_size: int | None = None) -> tuple[float, float, dict]:
    """The tool through its own engine and session (closed loop, concurrency = cores): requests/s and its worker
    processes' CPU µs per request, both over `seconds` after a 1 s warm-up (start-up excluded, as the bare loop's)."""
    from mlstress_tui.load.engine import LoadEngine, LoadSpec
    from mlstress_tui.load.targets.postgres import PostgresTarget
    from mlstress_tui.session import RunSession

    engine = LoadEngine(PostgresTarget(dsn=dsn), LoadSpec(concurrency=CORES, pool_size=pool_size), run_dir=run_dir)
    session = RunSession(engine, run_dir=run_dir)
    session.start()

    def pump_for(span: float) -> None:
        until = time.perf_counter() + span
        while (left := until - time.perf_counter()) > 0:
            time.sleep(min(left, 0.1))
            session.pump()

    pump_for(1.0)
    pids = engine.backend.pids()
    cpu_before, done_before = sum(map(process_cpu_s, pids)), session.totals.total.requests
    started = time.perf_counter()
    pump_for(seconds)
    cpu_after, done_after = sum(map(process_cpu_s, pids)), session.totals.total.requests
    elapsed = time.perf_counter() - started
    summary = session.finish()
    done = max(done_after - done_before, 1)
    return done / elapsed, (cpu_after - cpu_before) / done * 1e6, summary


PGBENCH_SCRIPT = """\\set uid random(1, {users})
SELECT u.user_id, u.segment, u.device_type, u.country,
  ('2026-03-01'::date - u.signup_date::date) AS account_age_days, COUNT(e.event_id) AS total_events,
  COALESCE(SUM((e.event_type = 'purchase')::int), 0) AS purchases, COALESCE(SUM(e.amount), 0.0) AS total_spend,
  AVG(e.session_duration_seconds)::float8 AS mean_session_duration_s,
  COALESCE(SUM((e.event_timestamp >= '2026-01-30 00:00:00')::int), 0) AS events_last_30d,
  EXTRACT(EPOCH FROM ('2026-03-01 00:00:00'::timestamp - MAX(e.event_timestamp)::timestamp))::float8 / 86400.0
FROM users AS u LEFT JOIN events AS e ON e.user_id = u.user_id AND e.event_timestamp < '2026-03-01 00:00:00'
WHERE u.user_id = 'USR' || lpad(:uid::text, 8, '0') GROUP BY u.user_id;
"""


def pgbench_binary() -> str | None:
    """pgbench on PATH, else the newest one PostgreSQL's packages install under /usr/lib/postgresql/*/bin."""
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"),
                        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0)
    return str(candidates[-1]) if candidates else None


def pgbench(dsn: str, users: int, seconds: float, scratch: Path) -> float | None:
    binary = pgbench_binary()
    if binary is None:
        return None
    script = scratch / "features.sql"
    script.write_text(PGBENCH_SCRIPT.format(users=users))
    done = subprocess.run([binary, "-n", "-M", "prepared", "-f", str(script), "-c", str(CORES), "-j", str(CORES),
                           "-T", str(max(int(round(seconds)), 1)), dsn], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    print(f"  pgbench failed: {done.stderr.strip()[:300]}")
    return None


def user_count(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute("SELECT count(*) FROM mlstress_user_stats").fetchone()
    return int(row[0]) if row else 0


def part_query(dsn: str, seconds: float, repetitions: int, scratch: Path) -> None:
    users = user_count(dsn)
    print(f"\n== 2. query throughput at concurrency {CORES} (= cores), {users:,} users, {repetitions} repetitions x "
          f"{seconds:g} s each (tool, bare loop, pgbench back to back, order rotated)", flush=True)
    if pgbench_binary() is None:
        print("  pgbench: not found on PATH nor in /usr/lib/postgresql/*/bin (apt-get install postgresql-client)")
    rows: dict[str, list[float]] = {"tool": [], "tool_cpu": [], "bare": [], "bare_cpu": [], "pgbench": []}
    ratios: dict[str, list[float]] = {"tool/bare": [], "tool/pgbench": [], "bare/pgbench": []}
    for repetition in range(repetitions):
        figures: dict[str, float | None] = {}
        plans = ""
        steps = ["tool", "bare", "pgbench"]
        for step in steps[repetition % 3:] + steps[:repetition % 3]:
            if step == "tool":
                figures["tool"], figures["tool_cpu"], summary = tool_loop(dsn, seconds, scratch / f"tool-{repetition}")
                if summary["errors"]:
                    print(f"  (tool run {repetition + 1}: {summary['errors']} errors {summary['errors_by_kind']})")
            elif step == "bare":
                figures["bare"], figures["bare_cpu"], plans = bare_loop(dsn, seconds)
            else:
                figures["pgbench"] = pgbench(dsn, users, seconds, scratch)
        for key, value in figures.items():
            if value is not None:
                rows[key].append(value)
        tool, bare, bench = figures["tool"], figures["bare"], figures["pgbench"]
        assert tool is not None and bare is not None
        ratios["tool/bare"].append(tool / bare)
        if bench:
            ratios["tool/pgbench"].append(tool / bench)
            ratios["bare/pgbench"].append(bare / bench)
        print(f"  run {repetition + 1}: tool {tool:>8,.0f} req/s ({figures['tool_cpu']:.0f} µs CPU/req)  "
              f"bare {bare:>8,.0f} q/s ({figures['bare_cpu']:.0f} µs CPU/q)  "
              + (f"pgbench {bench:>8,.0f} tps  " if bench else "") + f"tool/bare {tool / bare:.2f}x  "
              f"load {os.getloadavg()[0]:.1f}  plans {plans}", flush=True)
    median = statistics.median
    print(f"\n  medians over {repetitions} runs         throughput     client CPU/request")
    print(f"  mlstress-tui (closed loop, c={CORES})  {median(rows['tool']):>9,.0f} req/s  {median(rows['tool_cpu']):>6.1f} µs"
          "  (worker processes, whole harness)")
    print(f"  bare psycopg loop x{CORES}          {median(rows['bare']):>9,.0f} q/s    {median(rows['bare_cpu']):>6.1f} µs")
    if rows["pgbench"]:
        print(f"  pgbench -M prepared -c{CORES}        {median(rows['pgbench']):>9,.0f} tps")
    met = median(ratios["tool/bare"]) >= 0.95
    print(f"  tool / bare loop   {median(ratios['tool/bare']):.2f}x  (median of the runs' ratios; "
          f"target >= 0.95: {'MET' if met else 'MISSED'})")
    print(f"  tool CPU / bare CPU per request {median(rows['tool_cpu']) / median(rows['bare_cpu']):.2f}x")
    if ratios["tool/pgbench"]:
        print(f"  tool / pgbench     {median(ratios['tool/pgbench']):.2f}x;  bare loop / pgbench "
              f"{median(ratios['bare/pgbench']):.2f}x")


def part_saturation(dsn: str, scratch: Path) -> None:
    print("\n== 3. pool saturation: 2,500 req/s offered (preset pool-saturation), 6 s", flush=True)
    for extra in ([], ["--pool-size", "8"]):
        run_dir = scratch / f"saturation-{len(extra)}"
        cli("run", "--headless", "--dsn", dsn, "--preset", "pool-saturation", "--duration", "6", *extra,
            "--out", str(run_dir))
        summary = json.loads((run_dir / "summary.json").read_text())
        pool = summary["load"]["pool_size"]
        print(f"  pool {pool}: {summary['throughput_rps']:>7,.0f} req/s  latency p99 {summary['latency_ms']['p99']:>9.1f} ms"
              f"  pool wait p99 {summary['pool_wait_ms']['p99']:>9.1f} ms  query p99 {summary['service_ms']['p99']:.2f} ms"
              f"  bottleneck: {'pool' if summary.get('bottleneck') else 'none said'}")


def part_faults(dsn: str, scratch: Path) -> None:
    print("\n== 4. backends terminated 3 s into an 8 s run (concurrency 2)", flush=True)
    run_dir = scratch / "faults"

    def terminate() -> None:
        time.sleep(4.0)  # ~1 s of start-up, then 3 s of load
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mlstress-tui'")

    killer = threading.Thread(target=terminate)
    killer.start()
    cli("run", "--headless", "--dsn", dsn, "--concurrency", "2", "--duration", "8", "--out", str(run_dir))
    killer.join()
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = [json.loads(line) for line in (run_dir / "intervals.jsonl").read_text().splitlines()]
    steady = max(line["throughput_rps"] for line in lines[:3])
    hit = next((line for line in lines if line["errors_by_kind"].get("connection_lost")), None)
    back = next((line for line in lines if hit and line["t"] > hit["t"] and line["throughput_rps"] >= 0.8 * steady), None)
    lost = summary["errors_by_kind"].get("connection_lost", 0)
    recovery = f"{back['t'] - hit['t'] + 1:.0f} s (1 s intervals)" if hit and back else "not within the run"
    print(f"  connection_lost {lost} of {summary['requests']:,} requests; throughput back to 80% within {recovery}; "
          f"target within 5 s: {'MET' if hit and back and back['t'] - hit['t'] + 1 <= 5 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for part in ("generate", "query", "saturation", "faults"):
        parser.add_argument(f"--{part}", action="store_true")
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--dsn", help="a database 'mlstress-tui generate --dsn' already filled: parts 2-4 run on it "
                                      "(nothing created, nothing dropped; part 1 needs a database of its own)")
    parser.add_argument("--users", type=int, default=100_000, help="users generated (part 1; default 100,000)")
    parser.add_argument("--query-users", type=int, default=20_000,
                        help="users of the database parts 2-4 run on when the benchmark generates it (default 20,000)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repetitions", type=int, default=5, help="repetitions of part 2; medians are reported")
    args = parser.parse_args()
    every = not (args.generate or args.query or args.saturation or args.faults)
    print(f"postgres benchmark: {CORES} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="mlstress-pg-") as scratch:
        if args.dsn:
            if args.generate:
                raise SystemExit("--generate needs a database of its own: leave out --dsn")
            run_parts(args, args.dsn, Path(scratch), every)
            return
        name = f"mlstress_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        dsn = args.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        try:
            if args.generate or every:
                part_generate(dsn, args.users, Path(scratch))
            if args.query or args.saturation or args.faults or every:
                done = cli("generate", "--dsn", dsn, "--users", str(args.query_users), "--force")
                if done.returncode != 0:
                    raise SystemExit(f"generate failed: {done.stderr.strip()[:300]}")
                run_parts(args, dsn, Path(scratch), every)
        finally:
            with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_parts(args: argparse.Namespace, dsn: str, scratch: Path, every: bool) -> None:
    print(f"database: {dsn}")
    if args.query or every:
        part_query(dsn, args.seconds, args.repetitions, scratch)
    if args.saturation or every:
        part_saturation(dsn, scratch)
    if args.faults or every:
        part_faults(dsn, scratch)


if __name__ == "__main__":
    main()
