"""Pipeline functions for `python:` target tests (imported by worker processes by name)."""

import time


def features(user_id: str) -> dict:
    return {"user_id": user_id, "score": 0.5}


class FeatureStoreDown(RuntimeError):
    """An exception of the pipeline's own kind."""


def flaky(user_id: str) -> dict:
    """Fails for every user whose number is odd, with an exception of its own kind."""
    if int(user_id[3:]) % 2:
        raise FeatureStoreDown(f"no features for {user_id}")
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


def hangs(user_id: str) -> dict:
    """Every 4th user's call never comes back within any sane deadline (30 s)."""
    if int(user_id[3:]) % 4 == 0:
        time.sleep(30)
    return {}


def exits(user_id: str) -> dict:
    """SystemExit from target code, for every 3rd user: an error of its kind, never a dead user."""
    if int(user_id[3:]) % 3 == 0:
        raise SystemExit(f"bye from {user_id}")
    return {}


def chatty(user_id: str) -> dict:
    """Prints, writes to stderr, logs and warns, as real pipeline code does."""
    import logging
    import sys
    import warnings

    print(f"features for {user_id}")
    sys.stderr.write(f"stderr line for {user_id}\n")
    logging.getLogger("pipeline").warning("logged for %s", user_id)
    warnings.warn(f"deprecated thing used for {user_id}", stacklevel=1)
    return {}


def dies(user_id: str) -> dict:
    """Ends its whole worker process, as a crashing extension would."""
    import os

    if int(user_id[3:]) % 500 == 0:
        os._exit(1)
    time.sleep(0.001)
    return {}


def stamps(user_id: str) -> dict:
    """Appends when it was called (CLOCK_MONOTONIC, the same in every process) to $MLSTRESS_STAMPS."""
    import os

    with open(os.environ["MLSTRESS_STAMPS"], "a") as handle:
        handle.write(f"{time.perf_counter_ns()}\n")
    return {}


_EVENT_COUNTS: dict[str, int] = {}


def linear_in_events(user_id: str) -> dict:
    """Latency a + b × the user's event count (ms, from MLSTRESS_LINEAR_A/B): a heavy-user ground truth."""
    import os
    import sqlite3

    if not _EVENT_COUNTS:
        connection = sqlite3.connect(f"file:{os.environ['MLSTRESS_LINEAR_DB']}?mode=ro", uri=True)
        _EVENT_COUNTS.update(connection.execute("SELECT user_id, event_count FROM mlstress_user_stats"))
        connection.close()
    a, b = float(os.environ["MLSTRESS_LINEAR_A"]), float(os.environ["MLSTRESS_LINEAR_B"])
    time.sleep((a + b * _EVENT_COUNTS.get(user_id, 0)) / 1000)
    return {"user_id": user_id}


def crashes_on_nulls(user_id: str) -> dict:
    """A feature pipeline that assumes every profile field is set: it crashes on the generator's NULLs."""
    import os
    import sqlite3

    connection = sqlite3.connect(f"file:{os.environ['MLSTRESS_LINEAR_DB']}?mode=ro", uri=True)
    row = connection.execute("SELECT device_type, city FROM users WHERE user_id = ?", (user_id,)).fetchone()
    connection.close()
    if row is None:
        raise LookupError(f"no user {user_id}")
    return {"device": row[0].upper(), "city": row[1].lower()}


def _known(user_id: str) -> bool:
    import os
    import sqlite3

    connection = sqlite3.connect(f"file:{os.environ['MLSTRESS_LINEAR_DB']}?mode=ro", uri=True)
    found = connection.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone()
    connection.close()
    return found is not None


def answers_anyone(user_id: str) -> dict:
    """Makes up features for any id, held by the database or not: the wrong answer for an unknown user."""
    return {"user_id": user_id, "score": 0.5}


def none_for_unknown(user_id: str) -> dict | None:
    """The contract's "no such user" by return value: None for an id the database does not hold."""
    return {"user_id": user_id} if _known(user_id) else None


def fails_for_heavy_users(user_id: str) -> dict:
    """Raises at once for users with 100 events or more; everyone else takes 5 ms."""
    import os
    import sqlite3

    if not _EVENT_COUNTS:
        connection = sqlite3.connect(f"file:{os.environ['MLSTRESS_LINEAR_DB']}?mode=ro", uri=True)
        _EVENT_COUNTS.update(connection.execute("SELECT user_id, event_count FROM mlstress_user_stats"))
        connection.close()
    if _EVENT_COUNTS.get(user_id, 0) >= 100:
        raise RuntimeError(f"feature vector too large for {user_id}")
    time.sleep(0.005)
    return {"user_id": user_id}
class _Misreported(Exception):
    """An error whose self-description is hostile: a kind and a message chosen by MLSTRESS_HOSTILE."""

    def __init__(self, how: str) -> None:
        super().__init__("\x1b[2J\x1b]0;pwned\x07screen cleared" if how == "escapes" else "plain message")
        self.how = how

    @property
    def error_kind(self):
        return {"int": 5, "tuple": ("a", 1), "escapes": "kind\x1b[31m", "raises": None}.get(self.how, "ok_kind") \
            if self.how != "kind_raises" else (_ for _ in ()).throw(RuntimeError("no kind"))

    def __str__(self) -> str:
        if self.how == "str_raises":
            raise ValueError("no message")
        return super().__str__()


def misreports(user_id: str) -> dict:
    """Every request fails with an error that describes itself as $MLSTRESS_HOSTILE says."""
    import os

    raise _Misreported(os.environ["MLSTRESS_HOSTILE"])


def hangs_every_fourth(user_id: str) -> dict:
    """Every 4th user's call never comes back (300 s); the rest answer in a millisecond."""
    if int(user_id[3:]) % 4 == 0:
        time.sleep(300)
    time.sleep(0.001)
    return {"user_id": user_id}


def holds_the_gil(user_id: str) -> dict:
    """A catastrophic regex: about a second of pure C matching that never releases the GIL."""
    import re

    re.match(r"(a+)+$", "a" * 24 + "b")
    return {"user_id": user_id}


def counts_its_calls(user_id: str) -> dict:
    """Appends a line to $MLSTRESS_CALL_LOG for every call it receives, then takes 20 ms."""
    import os

    with open(os.environ["MLSTRESS_CALL_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {user_id}\n")
    time.sleep(0.02)
    return {"user_id": user_id}


_calls = 0


def forks_once(user_id: str) -> dict:
    """Forks on its 5th call; the child returns into whatever called it, as a careless target would."""
    import os

    global _calls
    _calls += 1
    if _calls == 5:
        os.fork()
    time.sleep(0.002)
    return {"user_id": user_id}


def cpu_on_first_call(user_id: str) -> dict:
    """0.6 s of CPU on the first call (a model loading), then 5 ms sleeps."""
    global _calls
    _calls += 1
    if _calls == 1:
        deadline = time.process_time() + 0.6
        while time.process_time() < deadline:
            pass
    time.sleep(0.005)
    return {"user_id": user_id}


def prints_a_lot(user_id: str) -> dict:
    """Writes a 2 kB line for every call (a debug print left in), then takes a millisecond."""
    print("x" * 2048, flush=True)
    time.sleep(0.001)
    return {"user_id": user_id}
