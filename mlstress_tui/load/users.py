"""Which user each request asks for: seeded samples from `mlstress_user_stats`, no table scan of events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from itertools import repeat
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np

from mlstress_tui.errors import UsageError
from mlstress_tui.load.failures import printable
from mlstress_tui.load.user_strata import HEAVIEST_USERS, build_strata, stratum_index
from mlstress_tui.pipeline.feature_query import is_locked, locked_database

USER_MIXES = ("uniform", "weighted", "heavy", "stratified", "edge")
# The edge cases `generate` plants, plus ids the database does not hold: the `edge` mix sends only these.
EDGE_CLASSES = ("no_events", "missing_profile", "heaviest", "unknown_user")
# Profile columns the generator leaves NULL for some users (the edge cases a feature pipeline must survive).
PROFILE_COLUMNS = ("signup_date", "segment", "country", "device_type", "name", "email", "city")
UNKNOWN_USERS = 1000
NO_GROUP = -1
SYNTHETIC_USERS = 100_000
_CHUNK = 1024


def event_counts(rows: list[tuple[Any, ...]], where: str) -> np.ndarray:
    """The event counts of (user_id, event_count) rows; one line naming the first user whose count is not a count."""
    values = [row[1] for row in rows]
    if set(map(type, values)) <= {int} and (not values or (min(values) >= 0 and max(values) < 2**63)):
        return np.array(values, dtype=np.int64)
    user_id, count = next(row for row in rows if type(row[1]) is not int or not 0 <= row[1] < 2**63)
    raise UsageError(f"{where}: mlstress_user_stats holds event_count {printable(repr(count), 40)} for user "
                     f"{printable(repr(user_id), 40)}, not a whole number of 0 or more: regenerate it with "
                     "'mlstress-tui generate'")


@dataclass(frozen=True)
class UserSource:
    """Where users come from: a generated database, or synthetic ids for targets without one."""

    db_path: Path | None
    mix: str = "uniform"
    seed: int = 42
    dsn: str | None = None  # PostgreSQL: the users come from the database the target serves


class UserSampler:
    """Draws (user_id, event_count, group) triples by the chosen mix, reproducibly per stream.

    `group` is the edge class (an index into EDGE_CLASSES) in the `edge` mix and
    NO_GROUP otherwise; strata need no group, they follow from the event count.
    """

    def __init__(self, user_ids: np.ndarray, event_counts: np.ndarray, mix: str, seed: int,
                 missing_profile: np.ndarray | None = None) -> None:
        if mix not in USER_MIXES:
            raise UsageError(f"unknown --user-mix {mix!r}: use one of {', '.join(USER_MIXES)}")
        if len(user_ids) == 0:
            raise UsageError("the database has no users to request: generate it with --users 1 or more")
        self.seed = seed
        self.mix = mix
        self.population_counts = event_counts
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
        # Stratified and edge mixes: members of each group, drawn in rotation so every group gets the same share.
        self._groups: list[np.ndarray] = []
        if mix == "stratified":
            strata = build_strata(event_counts)
            by_stratum = stratum_index(event_counts, strata)
            self._groups = [np.flatnonzero(by_stratum == index) for index in range(len(strata))]
        elif mix == "edge":
            self._groups = self._edge_groups(missing_profile)

    def _edge_groups(self, missing_profile: np.ndarray | None) -> list[np.ndarray]:
        heaviest = np.argsort(self.event_counts, kind="stable")[-min(HEAVIEST_USERS, len(self.event_counts)):]
        groups = [np.flatnonzero(self.event_counts == 0),
                  missing_profile if missing_profile is not None else np.empty(0, dtype=np.int64),
                  np.sort(heaviest)]
        # Unknown ids are indices past the end of the population: the stream names them apart.
        groups.append(np.arange(len(self.user_ids), len(self.user_ids) + UNKNOWN_USERS))
        return groups

    @property
    def edge_class_sizes(self) -> dict[str, int]:
        """How many users each edge class holds (an empty class is never requested)."""
        return {name: len(group) for name, group in zip(EDGE_CLASSES, self._groups)} if self.mix == "edge" else {}

    @classmethod
    def from_source(cls, source: UserSource) -> UserSampler:
        if source.dsn is not None:
            return cls._from_postgres(source)
        if source.db_path is None:
            if source.mix == "edge":
                raise UsageError("the edge mix needs the database's edge cases: pass --users-db PATH (a database "
                                 "made by 'generate')")
            ids = np.char.add("USR", np.char.zfill(np.arange(1, SYNTHETIC_USERS + 1).astype(str), 8))
            return cls(ids, np.zeros(SYNTHETIC_USERS, dtype=np.int64), source.mix, source.seed)
        from mlstress_tui.load.targets.sqlite import open_read_only

        connection = open_read_only(source.db_path)
        missing = None
        try:
            rows = connection.execute("SELECT user_id, event_count FROM mlstress_user_stats ORDER BY rowid").fetchall()
            if source.mix == "edge":
                # Column names are the reference schema's own constants; no value is formatted into the SQL.
                nulls = " OR ".join(f"{column} IS NULL" for column in PROFILE_COLUMNS)
                missing_ids = {row[0] for row in connection.execute(f"SELECT user_id FROM users WHERE {nulls}")}
                missing = np.array([index for index, row in enumerate(rows) if row[0] in missing_ids], dtype=np.int64)
        except sqlite3.Error as error:
            if is_locked(error):
                raise locked_database(repr(str(source.db_path))) from None
            raise UsageError(f"cannot read users from {str(source.db_path)!r} ({error}): generate it with 'mlstress-tui generate'") from None
        finally:
            connection.close()
        ids = np.array([row[0] for row in rows], dtype=str)
        counts = event_counts(rows, repr(str(source.db_path)))
        return cls(ids, counts, source.mix, source.seed, missing)

    @classmethod
    def _from_postgres(cls, source: UserSource) -> UserSampler:
        """The same users from the PostgreSQL database the target serves (same seed, same rows as the SQLite file)."""
        import psycopg

        from mlstress_tui.dsn import connect_checked

        with connect_checked(source.dsn or "", autocommit=True) as connection:
            try:
                rows = connection.execute("SELECT user_id, event_count FROM mlstress_user_stats ORDER BY user_id").fetchall()
                missing = None
                if source.mix == "edge":
                    nulls = " OR ".join(f"{column} IS NULL" for column in PROFILE_COLUMNS)
                    missing_ids = {row[0] for row in connection.execute(f"SELECT user_id FROM users WHERE {nulls}")}
                    missing = np.array([index for index, row in enumerate(rows) if row[0] in missing_ids],
                                       dtype=np.int64)
            except psycopg.Error as error:
                raise UsageError(f"cannot read users from PostgreSQL ({type(error).__name__}): create the tables "
                                 "with 'mlstress-tui generate --dsn …'") from None
        ids = np.array([row[0] for row in rows], dtype=str)
        counts = event_counts(rows, "the PostgreSQL database")
        return cls(ids, counts, source.mix, source.seed, missing)

    def stream(self, *key: int) -> Iterator[tuple[str, int, int]]:
        """An endless, reproducible stream of (user_id, event_count, group) for one virtual user."""
        rng = np.random.default_rng([self.seed, *key])
        if self._groups:
            yield from self._rotation(rng)
            return
        size = len(self.user_ids)
        while True:
            if self._cumulative is None:
                index = rng.integers(0, size, _CHUNK)
            else:
                index = np.minimum(np.searchsorted(self._cumulative, rng.random(_CHUNK)), size - 1)
            yield from zip(self.user_ids[index].tolist(), self.event_counts[index].tolist(), repeat(NO_GROUP))

    def _rotation(self, rng: np.random.Generator) -> Iterator[tuple[str, int, int]]:
        """Groups in turn from a random start (equal shares however few requests), a random member of each."""
        groups = [(number, members) for number, members in enumerate(self._groups) if len(members)]
        turn = int(rng.integers(len(groups)))
        edge = self.mix == "edge"
        known = len(self.user_ids)
        while True:
            number, members = groups[turn % len(groups)]
            turn += 1
            index = int(members[rng.integers(len(members))])
            if index >= known:
                yield f"NOUSER{index - known:06d}", 0, number
            else:
                yield str(self.user_ids[index]), int(self.event_counts[index]), number if edge else NO_GROUP
