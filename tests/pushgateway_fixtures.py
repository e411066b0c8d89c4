"""A real Prometheus Pushgateway (Debian's prometheus-pushgateway) on a free loopback port, and a scraper.

Outside CI a missing binary skips the test with the reason; under CI=true it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import urllib.request

import pytest

from http_fixtures import free_port, wait_until_ready

BINARY = "prometheus-pushgateway"


@pytest.fixture(scope="module")
def pushgateway():
    """The Pushgateway's base URL, without persistence; stopped after the module."""
    path = shutil.which(BINARY)
    if path is None:
        reason = f"{BINARY} is not installed (apt-get install prometheus-pushgateway)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Pushgateway is needed in CI and is not there: {reason}")
        pytest.skip(f"no Pushgateway to test against: {reason}")
    port = free_port()
    process = subprocess.Popen([path, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{base}/-/ready", "the Pushgateway", timeout_s=20)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(10)


def scrape(url: str, timeout_s: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read().decode()


class Scraper:
    """Scrapes a /metrics URL every `every_s` from a thread until stopped; keeps every body it got."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self.url = url
        self.every_s = every_s
        self.bodies: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.bodies.append(scrape(self.url, timeout_s=2.0))
            except OSError:
                pass  # not serving yet, or no longer
            self._stop.wait(self.every_s)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
