"""`generate_sqlite`: the whole database, streamed in time order into a temporary file, renamed into place when done."""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import faker
import numpy as np

from mlstress_tui.errors import UsageError
from mlstress_tui.synth.bulk_insert import apply_bulk_load_pragmas, insert_columns
from mlstress_tui.synth.categories import draw_category
from mlstress_tui.synth.event_counts import EventCounts, draw_event_counts
from mlstress_tui.synth.item_popularity import ItemPopularity
from mlstress_tui.synth.fitted_counts import draw_fitted_counts
from mlstress_tui.synth.mixes import (
    AMOUNT_LOG_MEAN,
    AMOUNT_LOG_SIGMA,
    ITEM_COUNT,
    ITEM_ZIPF_EXPONENT,
    SESSION_MEAN_SECONDS,
    Population,
)
from mlstress_tui.synth.params import GenerateParams
from mlstress_tui.synth.prefetch import prefetched
from mlstress_tui.synth.production_profile import SchemaMap, Source, SQLiteSource
from mlstress_tui.synth.user_columns import ProfilePool, draw_profiles
from mlstress_tui.synth.schema import INDEXES_AFTER_LOAD, INDEXES_BEFORE_LOAD, create_tables, write_meta
from mlstress_tui.synth.text_columns import date_strings, prefixed_ids, timestamp_strings
from mlstress_tui.synth.timeline import time_ordered_events

# Bump when the same parameters and seed would produce different rows.
GENERATOR_VERSION = "1"
USER_BATCH = 50_000
# Events drawn at once: the random streams are consumed batch by batch, so this size is part of what a seed means.
EVENT_DRAWS = 100_000
# Events rendered and written at once: a few of these are in flight between the threads (as Python strings for
# SQLite), so the size bounds the generator's working memory.
EVENT_BATCH = 25_000
MAX_SESSION_SECONDS = 86_400
EVENT_ROW = "({0}, {1}, {2}, {3}, {4}, {5}, {6})"
USER_ROW = "({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})"
USER_COLUMNS = ("segment", "country", "device_type", "name", "email", "city")
# How often (in SQLite VM steps) a long statement gives Python the chance to
# notice Ctrl-C.
INTERRUPT_CHECK_STEPS = 200_000

Progress = Callable[[int, int], None]
# Called on the finished database before it is put in place; its entries join mlstress_meta.
AfterLoad = Callable[[Source, SchemaMap], dict]
# A writer's side of the one row stream: a table's rows as equal-length column lists, or for "events"
# whatever the writer's `prepare_events` made of an EventBatch (bound lists for SQLite, COPY text for PostgreSQL).
RowSink = Callable[[str, Any], None]
ROW_TEMPLATES = {"users": USER_ROW, "events": EVENT_ROW, "mlstress_user_stats": "({0}, {1})"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateResult:
    """What was written where, how big, and how long it took."""

    path: Path
    users: int
    events: int
    seconds: float
    file_size: int
    events_per_user: dict
    edge_cases: dict
    after_load: dict = field(default_factory=dict)


# Where each nullable event column sits in an event row.
EVENT_COLUMN_AT = {"item_id": 4, "session_duration_seconds": 5, "amount": 6}


@dataclass(frozen=True)
class EventBatch:
    """Consecutive event rows as arrays, before any Python object per value exists.

    Each writer renders it its own way, in the row stream's producer thread: SQLite binds column lists
    (`columns`), PostgreSQL takes COPY text built from the arrays (postgres_writer.event_copy_text).
    """

    first_number: int  # the batch's events are numbered first_number + 1, first_number + 2, ...
    users: np.ndarray  # user index, 0-based
    types: np.ndarray  # index into type_names
    type_names: tuple[str, ...]
    seconds: np.ndarray  # since midnight UTC of epoch
    epoch: date
    items: np.ndarray  # item number, 1-based
    session: np.ndarray  # whole seconds
    amount: np.ndarray  # cents-rounded spend, 0 off purchases
    nulls: tuple[tuple[str, np.ndarray], ...] = ()  # (column, mask of its NULL rows)

    def __len__(self) -> int:
        return int(self.users.size)

    def numbers(self) -> np.ndarray:
        return np.arange(self.first_number + 1, self.first_number + len(self) + 1)

    def slices(self, size: int) -> Iterator[EventBatch]:
        """The same rows as consecutive batches of at most `size`."""
        for start in range(0, len(self), size):
            part = slice(start, start + size)
            yield EventBatch(self.first_number + start, self.users[part], self.types[part], self.type_names,
                             self.seconds[part], self.epoch, self.items[part], self.session[part], self.amount[part],
                             tuple((name, missing[part]) for name, missing in self.nulls))

    def columns(self) -> list[list]:
        """The rows as equal-length column lists in table order, None for NULL."""
        columns = [
            prefixed_ids("EVT", self.numbers(), 9),
            prefixed_ids("USR", self.users + 1, 8),
            np.array(self.type_names, dtype=object)[self.types].tolist(),
            timestamp_strings(self.seconds, self.epoch),
            prefixed_ids("ITEM", self.items, 6),
            self.session.tolist(),
            self.amount.tolist(),
        ]
        for name, missing in self.nulls:
            column = columns[EVENT_COLUMN_AT[name]]
            for row in np.flatnonzero(missing).tolist():
                column[row] = None
        return columns


def generate_sqlite(
    params: GenerateParams,
    out: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    after_load: AfterLoad | None = None,
) -> GenerateResult:
    """Generate the database at `out`; nothing appears there unless generation completes."""
    params.validate()
    out = Path(out).expanduser()
    _check_target(out, force)
    started = time.perf_counter()
    temporary = _temporary_beside(out)
    try:
        meta = _build(params, temporary, progress)
        extra = _after_load(temporary, after_load) if after_load else {}
        os.replace(temporary, out)
    except (sqlite3.Error, OSError) as error:
        raise UsageError(f"could not write {out}: {error}; check free disk space and permissions") from None
    finally:
        _remove(temporary)
    return GenerateResult(
        path=out,
        users=params.users,
        events=meta["events"],
        seconds=time.perf_counter() - started,
        file_size=out.stat().st_size,
        events_per_user=meta["events_per_user"],
        edge_cases=meta["edge_cases"],
        after_load=extra,
    )


def _after_load(path: Path, after_load: AfterLoad) -> dict:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        extra = after_load(SQLiteSource(conn, path.name), SchemaMap())
        write_meta(conn, extra)
    finally:
        conn.close()
    return extra


def _check_target(out: Path, force: bool) -> None:
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file path such as {out / 'events.sqlite'}")
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; pass --force to replace it")
    if not out.parent.is_dir():
        # A typo in --out must not create a tree of directories: the caller makes the one it means.
        raise UsageError(f"directory {out.parent} for --out does not exist; create it first or choose another path")
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write to directory {out.parent}; choose another --out")


def _temporary_beside(out: Path) -> Path:
    """An empty file in the target's directory, so the final rename is atomic."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as error:
        raise UsageError(f"cannot write to directory {out.parent} ({error.strerror}); choose another --out") from None
    os.close(handle)
    # mkstemp makes the file private; the database gets the usual umask permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-journal")):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass


def generate_rows(params: GenerateParams, sink: RowSink, progress: Progress | None,
                  prepare_events: Callable[[EventBatch], Any] = EventBatch.columns) -> dict:
    """The one row stream every writer takes: users, events in time order, user stats; returns the metadata.

    Same parameters and seed, same rows, whichever writer (SQLite, PostgreSQL) takes them. Events reach the
    sink as `prepare_events` made them, in a thread of their own, while the sink writes the batch before.
    """
    counts_rng, users_rng, time_rng, events_rng, items_rng = (
        np.random.default_rng(seed) for seed in np.random.SeedSequence(params.seed).spawn(5)
    )
    counts = _draw_counts(counts_rng, params)
    population = params.population
    # User ids follow signup order, as an auto-increment key does in production.
    signup_days = np.sort(users_rng.integers(
        population.day(population.signup_first), population.day(population.signup_last) + 1, params.users)
    ).astype(np.int32)
    popularity = ItemPopularity(items_rng, ITEM_COUNT, ITEM_ZIPF_EXPONENT)
    phase = (time.perf_counter(), time.process_time())
    nulls = _write_users(sink, users_rng, params, signup_days)
    phase = _log_phase("users", phase)
    item_events = _write_events(
        sink, time_rng, events_rng, items_rng, popularity, population, signup_days, counts.counts, progress,
        prepare_events)
    phase = _log_phase("events", phase)
    _write_user_stats(sink, counts.counts)
    return _meta(params, counts, nulls, item_events)


def _draw_counts(rng: np.random.Generator, params: GenerateParams) -> EventCounts:
    if params.count_quantiles is None:
        return draw_event_counts(
            rng, params.users, params.mean_events, params.event_cap, params.edge_cases, params.tail_index)
    shape = params.count_quantiles
    return draw_fitted_counts(rng, params.users, shape.knots, shape.zero_share, params.total_events, params.event_cap)


def _build(params: GenerateParams, path: Path, progress: Progress | None) -> dict:
    """Write every table into the fresh file at `path` and return the metadata stored with it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        apply_bulk_load_pragmas(conn)
        conn.set_progress_handler(_let_python_run, INTERRUPT_CHECK_STEPS)
        conn.execute("BEGIN")
        create_tables(conn)
        for statement in INDEXES_BEFORE_LOAD:
            conn.execute(statement)

        def sink(table: str, columns: list[list]) -> None:
            insert_columns(conn, table, ROW_TEMPLATES[table], columns)

        meta = generate_rows(params, sink, progress)
        phase = (time.perf_counter(), time.process_time())
        write_meta(conn, meta)
        conn.execute("COMMIT")
        phase = _log_phase("user stats and metadata", phase)
        for statement in INDEXES_AFTER_LOAD:
            conn.execute(statement)
            phase = _log_phase(statement, phase)
    except sqlite3.OperationalError as error:
        # Ctrl-C inside a long statement surfaces as SQLite's "interrupted".
        if "interrupt" in str(error):
            raise KeyboardInterrupt from None
        raise
    finally:
        conn.close()
    return meta


def _log_phase(name: str, since: tuple[float, float]) -> tuple[float, float]:
    now = (time.perf_counter(), time.process_time())
    log.debug("%s: %.2f s (%.2f s CPU)", name, now[0] - since[0], now[1] - since[1])
    return now


def _let_python_run() -> int:
    """A progress handler: running any Python lets a pending KeyboardInterrupt abort the statement."""
    return 0


def _write_users(
    sink: RowSink, rng: np.random.Generator, params: GenerateParams, signup_days: np.ndarray
) -> dict[str, int]:
    pool = ProfilePool(params.locale, params.seed)
    nulls: dict[str, int] = {}
    for first in range(0, params.users, USER_BATCH):
        size = min(USER_BATCH, params.users - first)
        profiles, batch_nulls = draw_profiles(rng, pool, size, params.edge_cases, params.population)
        for column, count in batch_nulls.items():
            nulls[column] = nulls.get(column, 0) + count
        columns = [
            prefixed_ids("USR", np.arange(first + 1, first + size + 1), 8),
            date_strings(signup_days[first : first + size], params.population.epoch),
            *(profiles[column].tolist() for column in USER_COLUMNS),
        ]
        sink("users", columns)
    return nulls


def _write_events(
    sink: RowSink,
    time_rng: np.random.Generator,
    rng: np.random.Generator,
    items_rng: np.random.Generator,
    popularity: ItemPopularity,
    population: Population,
    signup_days: np.ndarray,
    counts: np.ndarray,
    progress: Progress | None,
    prepare_events: Callable[[EventBatch], Any],
) -> np.ndarray:
    """Write every event in timestamp order; return how many events each item got."""
    total = int(counts.sum())
    item_events = np.zeros(ITEM_COUNT + 1, dtype=np.int64)
    batches = _event_batches(time_rng, rng, items_rng, popularity, population, signup_days, counts, item_events)
    prepared = ((len(batch), prepare_events(batch)) for batch in batches)
    written = 0
    if progress:
        progress(0, total)
    # closing() stops the producer thread at once if an insert or the progress callback raises.
    with closing(prefetched(prepared)) as ready_batches:
        for size, rows in ready_batches:
            sink("events", rows)
            written += size
            if progress:
                progress(written, total)
    return item_events[1:]


def _event_batches(
    time_rng: np.random.Generator,
    rng: np.random.Generator,
    items_rng: np.random.Generator,
    popularity: ItemPopularity,
    population: Population,
    signup_days: np.ndarray,
    counts: np.ndarray,
    item_events: np.ndarray,
) -> Iterator[EventBatch]:
    """Event rows in timestamp order, a batch at a time; tallies events per item into `item_events`."""
    total = int(counts.sum())
    window_events = int(np.clip(total // 50, 100_000, 1_000_000))
    labels = population.event_type.labels
    purchase = labels.index(population.purchase) if population.purchase in labels else -1
    timeline = time_ordered_events(time_rng, signup_days, counts, window_events, population.end_day,
                                   population.day(population.events_first))
    numbered = 0
    for window_users, window_seconds in timeline:
        for start in range(0, window_users.size, EVENT_DRAWS):
            users = window_users[start : start + EVENT_DRAWS]
            size = users.size
            types = draw_category(rng, population.event_type.shares, size, population.exact_shares)
            items = popularity.draw(items_rng, size)
            item_events += np.bincount(items, minlength=item_events.size)
            session = np.minimum(np.rint(rng.exponential(SESSION_MEAN_SECONDS, size)), MAX_SESSION_SECONDS)
            amount = np.zeros(size)
            purchases = types == purchase
            # Rounded to cents, and at least one cent: spend comes only from purchases.
            spend = np.round(_draw_spend(rng, population, int(purchases.sum())), 2)
            amount[purchases] = np.maximum(spend, 0.01)
            nulls = _nulls(rng, population.event_nulls, purchases) if population.event_nulls else ()
            drawn = EventBatch(first_number=numbered, users=users, types=types, type_names=labels,
                               seconds=window_seconds[start : start + EVENT_DRAWS], epoch=population.epoch,
                               items=items, session=session.astype(np.int64), amount=amount, nulls=nulls)
            yield from drawn.slices(EVENT_BATCH)
            numbered += size


def _draw_spend(rng: np.random.Generator, population: Population, size: int) -> np.ndarray:
    """Purchase amounts: the reference log-normal, or a twin's spend quantiles interpolated.

    The interpolation is linear in (logit(u), log(amount)), which stretches both
    tails logarithmically: between p1 and the smallest amount (at u = 1/2N) the
    amounts thin out as a power law would, instead of spreading evenly.
    """
    if population.spend_knots is None:
        return rng.lognormal(AMOUNT_LOG_MEAN, AMOUNT_LOG_SIGMA, size)
    levels, amounts = (np.array(values) for values in zip(*population.spend_knots))
    levels = np.clip(levels, 1e-12, 1 - 1e-12)
    # Stratified levels (one per purchase, in random order): a small twin's spend quantiles are the profile's.
    level = np.clip((rng.permutation(size) + rng.random(size)) / max(size, 1), levels[0], levels[-1])
    return np.exp(np.interp(_logit(level), _logit(levels), np.log(amounts)))


def _logit(level: np.ndarray) -> np.ndarray:
    return np.log(level) - np.log1p(-level)


def _nulls(rng: np.random.Generator, shares: tuple, purchases: np.ndarray) -> tuple[tuple[str, np.ndarray], ...]:
    """NULLs at each column's share of rows; amount's go to events without spend first, as production's do."""
    size = purchases.size
    masks = []
    for name, share in shares:
        chance = np.full(size, share)
        if name == "amount":
            # A NULL amount on a view or a click means "no spend"; on a purchase it is lost spend.
            others = max(1, size - int(purchases.sum()))
            chance = np.where(purchases, max(0.0, share * size - others) / max(1, int(purchases.sum())),
                              min(1.0, share * size / others))
        masks.append((name, rng.random(size) < chance))
    return tuple(masks)


def _write_user_stats(sink: RowSink, counts: np.ndarray) -> None:
    for first in range(0, counts.size, USER_BATCH):
        batch = counts[first : first + USER_BATCH]
        user_ids = prefixed_ids("USR", np.arange(first + 1, first + batch.size + 1), 8)
        sink("mlstress_user_stats", [user_ids, batch.tolist()])


def events_per_user(counts: np.ndarray) -> dict:
    """Mean, median, 99th percentile and maximum of events per user."""
    p50, p99 = np.percentile(counts, [50, 99])
    return {
        "mean": round(float(counts.mean()), 3),
        "p50": round(float(p50), 2),
        "p99": round(float(p99), 2),
        "max": int(counts.max()),
    }


def _meta(params: GenerateParams, counts: EventCounts, nulls: dict[str, int], item_events: np.ndarray) -> dict:
    extreme_counts = counts.counts[counts.extreme_users]
    top_items = np.sort(item_events)[::-1][: max(1, item_events.size // 100)]
    return {
        "users": params.users,
        "events": int(counts.counts.sum()),
        "seed": params.seed,
        "mean_events": params.mean_events,
        "max_events": params.event_cap,
        "locale": params.locale,
        "edge_cases": {
            "enabled": params.edge_cases,
            "zero_event_users": counts.zero_event_users,
            "extreme_users": int(extreme_counts.size),
            "extreme_user_events": {
                f"USR{user + 1:08d}": int(count) for user, count in zip(counts.extreme_users.tolist(), extreme_counts)
            },
            "null_fields": nulls,
        },
        "event_shape": {
            "events_per_user_law": counts.law,
            "item_popularity": f"Zipf, exponent {ITEM_ZIPF_EXPONENT:g}, over {ITEM_COUNT:,} items",
            "top_1pct_items_event_share": round(float(top_items.sum() / max(1, item_events.sum())), 4),
            "timestamps": "UTC, second resolution, uniform between signup and the end date",
            "events_end": params.population.events_end.isoformat(),
        },
        "events_per_user": events_per_user(counts.counts),
        "generator_version": GENERATOR_VERSION,
        "faker_version": faker.VERSION,
        "numpy_version": np.__version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
