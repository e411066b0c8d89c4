"""HTTP: the harness's CPU per request beside wrk, Locust and the bare client; fidelity beside wrk on the
reference service; the pool-saturation demo on the reference service. All in one run.

Run: python benchmarks/http_target.py [--cost] [--fidelity] [--saturation] [--seconds 5] [--locust PATH]

With none of the part flags, all three run. Needs nginx and wrk (Debian packages
nginx-light, wrk) and Locust in its own venv (default /tmp/locust-venv/bin/locust;
`python3 -m venv /tmp/locust-venv && /tmp/locust-venv/bin/pip install locust`).

1. Harness cost: nginx on loopback returning a small JSON body; each client
   drives it with 4 keep-alive connections for --seconds, closed loop, back to
   back: CPU microseconds per request of the load generator. wrk and Locust
   FastHttpUser: their processes' CPU (rusage) over their requests; the bare
   client: pycurl, one handle per thread, 4 threads, no harness; mlstress-tui:
   its worker process's CPU (/proc) over the requests it recorded, after a
   1 s warm-up. Target: the harness at most 1/3 of Locust FastHttpUser's CPU per
   request, i.e. within about 25% of the bare pycurl client.
2. Fidelity: the reference service (`serve`, default database) at concurrency 8
   on /features/{user_id} with random users: the tool's p50 and throughput beside
   `wrk -t 1 -c 8 --latency` with a Lua script asking for random users. Targets:
   p50 within 20%, throughput at least 0.75x wrk's.
3. Pool saturation on the reference service: queries made 5 ms slower
   (`--extra-latency-ms 5`, spent holding the database connection), 400 req/s
   offered (open loop) to `serve --pool-size 1` (at most ~200 req/s), then
   `--pool-size 8`: throughput, latency p99, service p99 (which includes the
   service's own wait for a database connection).

Prints figures and MET/MISSED per target; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"user_id":"USR00000001","score":0.5}}'; }}
    }}
}}
"""

LOCUST_FILE = """
from locust import FastHttpUser, constant, task

class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def features(self):
        self.client.get("/features/USR00000001")
"""

WRK_RANDOM_USERS = """
request = function()
    return wrk.format("GET", string.format("/features/USR%08d", math.random(1, 100000)))
end
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing answered at {url}")
            time.sleep(0.1)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, connections: int, seconds: float, script: Path | None = None) -> tuple[int, float, str]:
    before = children_cpu()
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "--latency"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return requests, children_cpu() - before, out


def bare_pycurl(url: str, threads: int, seconds: float) -> tuple[int, float]:
    import pycurl

    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(index: int) -> None:
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
        while time.perf_counter() < stop:
            handle.perform()
            counts[index] += 1
        handle.close()

    cpu = time.process_time()
    workers = [threading.Thread(target=loop, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts), time.process_time() - cpu


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tool(url: str, connections: int, seconds: float, scratch: Path, *, workers: int = 1,
         rate: float | None = None) -> tuple[int, float, dict]:
    """The tool through its own engine: its worker processes' CPU over the requests recorded after a warm-up."""
    from mlstress_tui.load.engine import LoadEngine, LoadSpec
    from mlstress_tui.load.targets.http import HttpTarget
    from mlstress_tui.session import RunSession

    load = (LoadSpec(mode="open", rate=rate, pool_size=connections, workers=workers) if rate else
            LoadSpec(concurrency=connections, workers=workers))
    run_dir = scratch / f"tool-{time.monotonic_ns()}"
    engine = LoadEngine(HttpTarget(url=url), load, run_dir=run_dir,
                        users_db=default_database())
    session = RunSession(engine, run_dir=run_dir)
    session.start()
    time.sleep(1.0)
    session.pump()
    pids = engine.backend.pids()
    cpu_before, done_before = sum(map(process_cpu, pids)), session.totals.total.requests
    time.sleep(seconds)
    session.pump()
    cpu_after, done_after = sum(map(process_cpu, pids)), session.totals.total.requests
    summary = session.finish()
    return done_after - done_before, cpu_after - cpu_before, summary


def default_database() -> Path:
    from mlstress_tui.commands.options import ensure_default_database

    return ensure_default_database()


def part_cost(seconds: float, locust: str | None, scratch: Path) -> None:
    print(f"\n== 1. harness cost: nginx on loopback, 4 keep-alive connections, {seconds:g} s each", flush=True)
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) or not shutil.which("wrk"):
        print("  needs nginx and wrk: apt-get install nginx-light wrk")
        return
    port = free_port()
    conf = scratch / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=scratch, port=port))
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(scratch)],
                             stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/features/USR00000001"
    try:
        wait_for(url)
        rows = []
        requests, cpu, _ = run_wrk(url, 4, seconds)
        rows.append(("wrk -t1 -c4", requests, cpu))
        requests, cpu = bare_pycurl(url, 4, seconds)
        rows.append(("bare pycurl, 4 threads", requests, cpu))
        if locust and Path(locust).exists():
            locustfile = scratch / "locustfile.py"
            locustfile.write_text(LOCUST_FILE)
            before = children_cpu()
            subprocess.run([locust, "-f", str(locustfile), "--headless", "-u", "4", "-r", "4", "-t", f"{seconds:g}s",
                            "--host", f"http://127.0.0.1:{port}", "--csv", str(scratch / "locust"), "--only-summary"],
                           capture_output=True, text=True)
            cpu = children_cpu() - before
            stats = (scratch / "locust_stats.csv").read_text().splitlines()
            total = [line for line in stats if ",Aggregated," in line][0].split(",")
            rows.append(("Locust FastHttpUser -u 4", int(total[2]), cpu))
        else:
            print(f"  Locust not found at {locust}: skipped")
        requests, cpu, _ = tool(url.replace("USR00000001", "{user_id}"), 4, seconds, scratch)
        rows.append(("mlstress-tui (worker, whole harness)", requests, cpu))
        per = {name: cpu / max(requests, 1) * 1e6 for name, requests, cpu in rows}
        for name, requests, cpu in rows:
            print(f"  {name:38} {requests / seconds:>9,.0f} req/s  {per[name]:>7.1f} µs CPU/request")
        ours, bare = per["mlstress-tui (worker, whole harness)"], per["bare pycurl, 4 threads"]
        line = f"  harness / bare pycurl {ours / bare:.2f}x (target <= 1.25: {'MET' if ours <= 1.25 * bare else 'MISSED'})"
        if "Locust FastHttpUser -u 4" in per:
            locust_us = per["Locust FastHttpUser -u 4"]
            line += f"; harness / Locust {ours / locust_us:.2f}x (target <= 0.33: {'MET' if ours <= locust_us / 3 else 'MISSED'})"
        print(line)
    finally:
        nginx.terminate()
        nginx.wait(5)


def start_service(extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mlstress_tui", "serve", "--port", str(port), *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/healthz")
    return process, base


def part_fidelity(seconds: float, scratch: Path) -> None:
    print(f"\n== 2. fidelity: the reference service, concurrency 8, random users, {seconds:g} s each", flush=True)
    process, base = start_service([])
    try:
        script = scratch / "random_users.lua"
        script.write_text(WRK_RANDOM_USERS)
        requests, _, out = run_wrk(f"{base}/features/x", 8, seconds, script)
        wrk_rps = requests / seconds
        p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
        wrk_p50 = float(p50.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[p50.group(2)]
        _, _, summary = tool(f"{base}/features/{{user_id}}", 8, seconds, scratch, workers=None)
        ours_rps, ours_p50 = summary["throughput_rps"], summary["latency_ms"]["p50"]
        print(f"  wrk -t1 -c8 --latency    {wrk_rps:>8,.0f} req/s  p50 {wrk_p50:.2f} ms")
        print(f"  mlstress-tui c=8         {ours_rps:>8,.0f} req/s  p50 {ours_p50:.2f} ms")
        print(f"  p50 {ours_p50 / wrk_p50:.2f}x of wrk's (target within 20%: "
              f"{'MET' if abs(ours_p50 / wrk_p50 - 1) <= 0.2 else 'MISSED'}); throughput {ours_rps / wrk_rps:.2f}x "
              f"(target >= 0.75: {'MET' if ours_rps >= 0.75 * wrk_rps else 'MISSED'})")
    finally:
        process.terminate()
        process.wait(10)


def part_saturation(seconds: float, scratch: Path) -> None:
    print(f"\n== 3. pool saturation on the reference service: 5 ms queries, 400 req/s offered, {seconds:g} s each",
          flush=True)
    for pool in (1, 8):
        process, base = start_service(["--pool-size", str(pool), "--extra-latency-ms", "5"])
        try:
            _, _, summary = tool(f"{base}/features/{{user_id}}", 64, seconds, scratch, workers=None, rate=400)
            print(f"  serve --pool-size {pool}: {summary['throughput_rps']:>6,.0f} req/s  latency p99 "
                  f"{summary['latency_ms']['p99']:>8.1f} ms  service p99 {summary['service_ms']['p99']:>8.1f} ms  "
                  f"client pool wait p99 {summary['pool_wait_ms']['p99']:>8.1f} ms  errors {summary['errors']}")
        finally:
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for part in ("cost", "fidelity", "saturation"):
        parser.add_argument(f"--{part}", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--locust", default="/tmp/locust-venv/bin/locust")
    args = parser.parse_args()
    every = not (args.cost or args.fidelity or args.saturation)
    print(f"http benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="mlstress-http-") as scratch:
        if args.cost or every:
            part_cost(args.seconds, args.locust, Path(scratch))
        if args.fidelity or every:
            part_fidelity(args.seconds, Path(scratch))
        if args.saturation or every:
            part_saturation(args.seconds, Path(scratch))


if __name__ == "__main__":
    main()
