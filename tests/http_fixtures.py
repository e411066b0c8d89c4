"""The reference service as a real server process on a free loopback port (no mocked HTTP)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(process: subprocess.Popen, url: str, what: str, *, timeout_s: float) -> None:
    """Poll `url` until it answers; a process that exits or never answers fails the test with its stderr's tail."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{what} did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)


@contextmanager
def reference_service(db, *extra: str):
    """`mlstress-tui serve` on a free port until the block ends; yields its base URL and the process."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mlstress_tui", "serve", "--db", str(db), "--port", str(port),
                                *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{base}/healthz", "the reference service", timeout_s=30)
    try:
        yield base, process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextmanager
def stub_service(answer):
    """A plain HTTP server on a free loopback port, `answer(path) -> (status, content_type, body)` per GET."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the load's client expects

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            status, content_type, body = answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
class TinyService:
    """An in-process HTTP service on a free loopback port: 200 with a JSON body, each request's headers kept.

    `first_delay_s` holds the first answer back (a service that is slow to warm up);
    it is enough for what the CLI checks and faster to start than `serve`.
    """

    def __init__(self, first_delay_s: float = 0.0) -> None:
        import http.server
        import threading

        self.requests: list[dict] = []
        self._first_delay_s = first_delay_s
        self._lock = threading.Lock()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with service._lock:
                    first = not service.requests
                    service.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if first and service._first_delay_s:
                    time.sleep(service._first_delay_s)
                payload = b'{"score": 0.5}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:  # the test's output stays the tool's own
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:  # a client that gave up on a slow answer
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TinyService:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
