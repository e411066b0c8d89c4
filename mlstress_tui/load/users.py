"""Which user each request asks for: seeded samples from `mlstress_user_stats`, no table scan of events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlstress_tui.errors import UsageError
from mlstress_tui.pipeline.feature_query import is_locked, locked_database

USER_MIXES = ("uniform", "weighted", "heavy")
SYNTHETIC_USERS = 100_000
_CHUNK = 1024


@dataclass(frozen=True)
class UserSource:
    """Where users come from: a generated database, or synthetic ids for targets without one."""

    db_path: Path | None
    mix: str = "uniform"
    seed: int = 42


class UserSampler:
    """Draws (user_id, event_count) pairs by the chosen mix, reproducibly per stream."""

    def __init__(self, user_ids: np.ndarray, event_counts: np.ndarray, mix: str, seed: int) -> None:
        if mix not in USER_MIXES:
            raise UsageError(f"unknown --user-mix {mix!r}: use one of {', '.join(USER_MIXES)}")
        if len(user_ids) == 0:
            raise UsageError("the database has no users to request: generate it with --users 1 or more")
        self.seed = seed
        self.mix = mix
        if mix == "heavy":
            # The top 1% of users by event count (at least one), drawn uniformly.
            top = max(1, len(event_counts) // 100)
            keep = np.argpartition(event_counts, len(event_counts) - top)[-top:]
            keep.sort()
            user_ids, event_counts = user_ids[keep], event_counts[keep]
        self.user_ids = user_ids
        self.event_counts = event_counts
        self._cumulative = None
        if mix == "weighted":
            # Activity-weighted, as real traffic is; +1 so inactive users still appear now and then.
            weights = event_counts.astype(np.float64) + 1.0
            self._cumulative = np.cumsum(weights / weights.sum())

    @classmethod
    def from_source(cls, source: UserSource) -> UserSampler:
        if source.db_path is None:
            ids = np.char.add("USR", np.char.zfill(np.arange(1, SYNTHETIC_USERS + 1).astype(str), 8))
            return cls(ids, np.zeros(SYNTHETIC_USERS, dtype=np.int64), source.mix, source.seed)
        from mlstress_tui.load.targets.sqlite import open_read_only

        connection = open_read_only(source.db_path)
        try:
            rows = connection.execute("SELECT user_id, event_count FROM mlstress_user_stats ORDER BY rowid").fetchall()
        except sqlite3.Error as error:
            if is_locked(error):
                raise locked_database(repr(str(source.db_path))) from None
            raise UsageError(f"cannot read users from {str(source.db_path)!r} ({error}): generate it with 'mlstress-tui generate'") from None
        finally:
            connection.close()
        ids = np.array([row[0] for row in rows], dtype=str)
        counts = np.array([row[1] for row in rows], dtype=np.int64)
        return cls(ids, counts, source.mix, source.seed)

    def stream(self, *key: int) -> Iterator[tuple[str, int]]:
        """An endless, reproducible stream of (user_id, event_count) for one virtual user."""
        rng = np.random.default_rng([self.seed, *key])
        size = len(self.user_ids)
        while True:
            if self._cumulative is None:
                index = rng.integers(0, size, _CHUNK)
            else:
                index = np.minimum(np.searchsorted(self._cumulative, rng.random(_CHUNK)), size - 1)
            yield from zip(self.user_ids[index].tolist(), self.event_counts[index].tolist())
