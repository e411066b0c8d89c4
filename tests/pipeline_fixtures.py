"""Pipeline functions for `python:` target tests (imported by worker processes by name)."""

import time


def features(user_id: str) -> dict:
    return {"user_id": user_id, "score": 0.5}


def flaky(user_id: str) -> dict:
    """Fails for every user whose number is odd, with an exception of its own kind."""
    if int(user_id[3:]) % 2:
        raise LookupError(f"no features for {user_id}")
    return {"user_id": user_id}


def not_a_dict(user_id: str) -> list:
    return [user_id]


def slow(user_id: str) -> dict:
    time.sleep(0.02)
    return {}


def spin(user_id: str) -> dict:
    """Holds the GIL for 10 ms of pure Python: a harness that cannot keep up."""
    deadline = time.perf_counter() + 0.01
    while time.perf_counter() < deadline:
        pass
    return {}
