"""Redis for the tests: a database number of their own on the real local server, or a private server to stop.

Outside CI a missing Redis skips the test with the reason; under CI=true it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager

import pytest

from http_fixtures import free_port

REDIS_URL = os.environ.get("MLSTRESS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis is needed in CI and is not there: {reason}")
    pytest.skip(f"no Redis server to test against: {reason}")


@pytest.fixture
def redis_url():
    """$MLSTRESS_TEST_REDIS_URL (default database 13 of the local server), emptied before and after the test."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as error:
        _unavailable(f"{REDIS_URL}: {error}")
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@contextmanager
def private_redis():
    """A redis-server of the test's own on a free loopback port (to stop mid-run); yields its URL and process."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", "/tmp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"redis-server on port {port} did not start")
            time.sleep(0.05)
    client.close()
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
