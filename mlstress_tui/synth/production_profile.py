"""A profile of a users/events database: aggregates of its shape, never a row.

`mlstress-tui profile` runs this against production (or a copy) and writes the
result as TOML; `generate --profile` builds a twin from it (synth/twin.py).
What leaves the database: row counts, quantiles of events per user and of
spend, the shares of categorical values, the date range (to the day) and the
share of NULLs per column (on PostgreSQL the quantiles are computed in the
database: no row leaves it). A categorical value is named only when at least
MIN_LABEL_ROWS rows carry it and it is among the MAX_LABELS commonest; the rest
are counted together as "other". Ids, names, emails, cities and items are
never read.

Table and column names can be mapped onto the reference schema (design.md) by
a small TOML file; identifiers are checked against the database's catalogue
before they are quoted into a query, and values are always bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlstress_tui.errors import UsageError
from mlstress_tui.toml_files import read_toml

PROFILE_SCHEMA = "mlstress.profile/1"
# Percent levels of events per user and of spend kept in a profile.
COUNT_LEVELS = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9)
SPEND_LEVELS = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)
MIN_LABEL_ROWS = 10
MAX_LABELS = 40
OTHER = "other"
USER_MIXES = ("segment", "country", "device_type")
# Columns whose share of NULLs is profiled (keys and the user link are not).
MISSING_COLUMNS = {
    "users": ("signup_date", "segment", "country", "device_type", "name", "email", "city"),
    "events": ("event_type", "event_timestamp", "item_id", "session_duration_seconds", "amount"),
}
REFERENCE_COLUMNS = {
    "users": ("user_id", *MISSING_COLUMNS["users"]),
    "events": ("event_id", "user_id", *MISSING_COLUMNS["events"]),
}


def level_key(percent: float) -> str:
    """'p50', 'p99.9': a quantile's key in a profile."""
    return f"p{percent:g}"


@dataclass(frozen=True)
class SchemaMap:
    """Where the reference schema's tables and columns are in the profiled database."""

    tables: Mapping[str, str] = field(default_factory=lambda: {"users": "users", "events": "events"})
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    purchase: str = "purchase"  # the event type whose events carry spend

    def table(self, reference: str) -> str:
        return self.tables.get(reference, reference)

    def column(self, table: str, reference: str) -> str:
        return self.columns.get(table, {}).get(reference, reference)

    def with_tables(self, **tables: str) -> SchemaMap:
        return SchemaMap({**self.tables, **tables}, self.columns, self.purchase)

    @classmethod
    def from_toml(cls, path: Path) -> SchemaMap:
        """A mapping file: [users]/[events] with `table = "…"` and reference column = "their column"; `purchase`."""
        data = read_toml(path, f"--mapping {path}", "; see 'mlstress-tui profile --help'")
        tables, columns = {}, {}
        for key, value in data.items():
            if key == "purchase":
                if not isinstance(value, str) or not value:
                    raise UsageError(f"--mapping {path}: purchase must be the event type that carries spend, in "
                                     f"quotes (got {value!r}); e.g. purchase = \"order\"")
                continue
            if key not in REFERENCE_COLUMNS or not isinstance(value, dict):
                raise UsageError(f"--mapping {path}: unknown entry {key!r}; expected [users], [events] and purchase")
            for reference, name in value.items():
                if not isinstance(name, str) or not name:
                    raise UsageError(f"--mapping {path}: {key}.{reference} must be a table or column name in quotes")
                if reference == "table":
                    tables[key] = name
                elif reference in REFERENCE_COLUMNS[key]:
                    columns.setdefault(key, {})[reference] = name
                else:
                    raise UsageError(f"--mapping {path}: {key}.{reference} is not a column of the reference schema "
                                     f"({', '.join(REFERENCE_COLUMNS[key])})")
        return cls({"users": "users", "events": "events", **tables}, columns, data.get("purchase", "purchase"))


class Source:
    """A database to profile: one read-only connection, its catalogue, its parameter style."""

    label: str
    param: str

    def columns(self, table: str) -> set[str] | None:
        """The table's column names, or None when there is no such table."""
        raise NotImplementedError

    def quote(self, identifier: str) -> str:
        raise NotImplementedError

    def rows(self, query: str, params: Iterable[Any] = ()) -> Iterable[tuple]:
        raise NotImplementedError

    def positive_number(self, column: str) -> str:
        """A condition: the column holds a number above zero."""
        return f"{column} > 0"

    def quantiles(self, values_query: str, levels: list[float], params: Iterable[Any] = ()) -> list[float]:
        """Quantiles (levels in 0..1, linear interpolation) of column `v` of `values_query`.

        Here the values come over to numpy; PostgreSQL computes them where the rows are.
        """
        values = np.fromiter((float(row[0]) for row in self.rows(values_query, params)), dtype=np.float64)
        if values.size == 0:
            return [0.0 for _ in levels]
        return [float(value) for value in np.quantile(values, levels)]


class SQLiteSource(Source):
    param = "?"

    def __init__(self, connection: sqlite3.Connection, label: str) -> None:
        self._connection = connection
        self.label = label

    def columns(self, table: str) -> set[str] | None:
        names = {row[0] for row in self._connection.execute("SELECT name FROM pragma_table_info(?)", (table,))}
        return names or None

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def positive_number(self, column: str) -> str:
        # SQLite columns take any type, and text compares above every number: only real numbers count.
        return f"typeof({column}) IN ('integer', 'real') AND {column} > 0"

    def rows(self, query: str, params: Iterable[Any] = ()) -> Iterable[tuple]:
        return self._connection.execute(query, tuple(params))


class PostgresSource(Source):
    param = "%s"

    def __init__(self, connection: Any, label: str) -> None:
        self._connection = connection
        self.label = label

    def columns(self, table: str) -> set[str] | None:
        names = {row[0] for row in self._connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s", (table,))}
        return names or None

    def quote(self, identifier: str) -> str:
        from psycopg import sql

        return sql.Identifier(identifier).as_string(self._connection)

    def quantiles(self, values_query: str, levels: list[float], params: Iterable[Any] = ()) -> list[float]:
        # percentile_cont interpolates as numpy does (position = level x (n - 1)); no row leaves the server.
        row = self._connection.execute(
            f"SELECT percentile_cont(%s::float8[]) WITHIN GROUP (ORDER BY v) FROM ({values_query}) AS source",
            (list(levels), *params)).fetchone()
        return [float(value) for value in row[0]] if row and row[0] else [0.0 for _ in levels]

    def rows(self, query: str, params: Iterable[Any] = ()) -> Iterable[tuple]:
        return self._connection.execute(query, tuple(params))


def read_profile(source: Source, schema: SchemaMap | None = None, *, exact: bool = False) -> dict:
    """The profile of `source` as a TOML-ready dict (schema mlstress.profile/1).

    Unless `exact`, what fewer than MIN_LABEL_ROWS rows hold is not written as it is: rarer categories count as
    "other", and extremes and tail quantiles are coarsened (`coarsen_high`, `coarsen_low`), each named under
    "coarsened". `exact` (the twin's own fit check, or --exact-extremes) writes every figure as found.
    """
    schema = schema or SchemaMap()
    reader = _Reader(source, schema, exact)
    users = reader.count("users")
    events = reader.count("events")
    if users == 0:
        raise UsageError(f"{source.label}: table {schema.table('users')!r} has no rows; a profile needs users to "
                         "describe: point --db or --dsn at the database that holds them")
    profile: dict[str, Any] = {
        "schema": PROFILE_SCHEMA,
        "source": source.label,
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extremes": "exact" if exact else "coarsened",
        "rows": {"users": users, "events": events},
        "events_per_user": reader.events_per_user(users),
        "mixes": {name: reader.mix(table, name) for table, name in
                  [*(("users", column) for column in USER_MIXES), ("events", "event_type")]
                  if reader.has(table, name)},
        "dates": reader.dates(),
        "missing": reader.missing(),
    }
    purchases = reader.purchases(events)
    if purchases:
        profile["purchases"] = purchases
    if reader.absent:
        profile["not_profiled"] = dict(sorted(reader.absent.items()))
    if reader.coarsened:
        profile["coarsened"] = reader.coarsened
    return profile


def coarsen_high(value: float) -> float:
    """An upper extreme as two significant figures: 21,968 events -> 22,000; 2,650.95 -> 2,700."""
    return float(f"{value:.2g}") if value else 0.0


class _Reader:
    def __init__(self, source: Source, schema: SchemaMap, exact: bool = False) -> None:
        self.source = source
        self.schema = schema
        self.exact = exact
        # The fewest rows a category, an extreme or a tail quantile must rest on to be written as found.
        self.min_rows = 1 if exact else MIN_LABEL_ROWS
        self.absent: dict[str, str] = {}
        self.coarsened: list[str] = []
        self._columns = {}
        for table in ("users", "events"):
            columns = source.columns(schema.table(table))
            if columns is None:
                raise UsageError(f"{source.label} has no table {schema.table(table)!r} (the reference {table} table): "
                                 "name it with a --mapping file ([" + table + '] table = "…")')
            self._columns[table] = columns
        for table in ("users", "events"):
            if not self.has(table, "user_id"):
                raise UsageError(f"{source.label}: table {schema.table(table)!r} has no column "
                                 f"{schema.column(table, 'user_id')!r} (the user id): map it in a --mapping file")
        for table, names in MISSING_COLUMNS.items():
            self.absent.update((f"{table}.{name}", "not in the database") for name in names if not self.has(table, name))

    def has(self, table: str, reference: str) -> bool:
        return self.schema.column(table, reference) in self._columns[table]

    def table(self, table: str) -> str:
        return self.source.quote(self.schema.table(table))

    def column(self, table: str, reference: str) -> str:
        return self.source.quote(self.schema.column(table, reference))

    def one(self, query: str, params: Iterable[Any] = ()) -> tuple:
        return next(iter(self.source.rows(query, params)))

    def count(self, table: str) -> int:
        return int(self.one(f"SELECT COUNT(*) FROM {self.table(table)}")[0])

    def events_per_user(self, users: int) -> dict:
        user_id = self.column("events", "user_id")
        per_user = f"SELECT COUNT(*) AS v FROM {self.table('events')} WHERE {user_id} IS NOT NULL GROUP BY {user_id}"
        groups, events, smallest, largest = self.one(
            f"SELECT COUNT(*), SUM(v), MIN(v), MAX(v) FROM ({per_user}) AS per_user")
        # Events of ids missing from the users table still count as someone's: users without events can't be negative.
        without = max(0, users - groups)
        everyone = without + groups
        if groups == 0:
            return {"mean": 0.0, "share_without_events": 1.0, "min_with_events": 0, "max": 0,
                    "quantiles": {level_key(level): 0.0 for level in COUNT_LEVELS}}
        # Each level's position among everyone sorted (zeros first), as numpy's linear interpolation places it;
        # then the positions coarsened low-side figures move to: the min_rows-th smallest of everyone, of users
        # with events.
        positions = [level / 100 * (everyone - 1) for level in COUNT_LEVELS]
        positions += [min(self.min_rows - 1, everyone - 1), without + min(self.min_rows - 1, groups - 1)]
        among_active = [max(0.0, position - without) / max(1, groups - 1) for position in positions]
        active_quantiles = self.source.quantiles(per_user, among_active)
        quantiles = []
        for position, value in zip(positions, active_quantiles):
            if position <= without - 1:
                value = 0.0
            elif position < without:  # between the last user without events and the first with
                value = (position - (without - 1)) * float(smallest)
            quantiles.append(value)
        *quantiles, low_of_everyone, low_of_active = quantiles
        by_level = {}
        for level, value in zip(COUNT_LEVELS, quantiles):
            key = level_key(level)
            by_level[key] = self.tail(f"events_per_user.quantiles.{key}", value, everyone, level / 100,
                                      low_of_everyone, digits=3)
        figures = {
            "mean": round(float(events) / everyone, 4),
            "share_without_events": round(without / everyone, 6),
            "min_with_events": int(self.low_extreme("events_per_user.min_with_events", smallest, low_of_active,
                                                    groups, min(by_level.values()) if without == 0 else None)),
            "max": int(self.high_extreme("events_per_user.max", largest, groups, max(by_level.values()))),
            "quantiles": by_level,
        }
        return figures

    def tail(self, key: str, value: float, rows: int, level: float, low: float, digits: int) -> float:
        """A quantile as found, or coarsened when fewer than min_rows rows lie beyond it on its side."""
        beyond = rows * (1 - level) if level >= 0.5 else rows * level
        if self.exact or beyond >= self.min_rows:
            return round(value, digits)
        self.coarsened.append(key)
        return coarsen_high(value) if level >= 0.5 else round(max(value, low), digits)

    def high_extreme(self, key: str, value: float, rows: int, highest_figure: float) -> float:
        """The largest value: as found only when exact; else two significant figures, and no lower than a figure
        that rests on enough rows."""
        if self.exact:
            return value
        self.coarsened.append(key)
        return max(coarsen_high(float(value)), highest_figure)

    def low_extreme(self, key: str, value: float, low: float, rows: int, lowest_figure: float | None) -> float:
        """The smallest value: as found only when exact; else the smallest that min_rows rows reach (at least
        that many hold it or less), and no higher than a figure that rests on enough rows."""
        if self.exact or rows < 1:
            return value
        self.coarsened.append(key)
        return min(low, lowest_figure) if lowest_figure is not None else low

    def mix(self, table: str, reference: str) -> dict[str, float]:
        """Shares of each value among non-NULL rows; rare values (and any beyond the commonest) as 'other'."""
        column = self.column(table, reference)
        tallies = sorted(((int(count), value) for value, count in self.source.rows(
            f"SELECT {column}, COUNT(*) FROM {self.table(table)} WHERE {column} IS NOT NULL GROUP BY {column}")),
            key=lambda pair: (-pair[0], str(pair[1])))
        total = sum(count for count, _ in tallies)
        shares: dict[str, float] = {}
        other = 0
        for rank, (count, value) in enumerate(tallies):
            if rank < MAX_LABELS and count >= self.min_rows and str(value) != OTHER:
                shares[str(value)] = count
            else:
                other += count
        if other:
            shares[OTHER] = other
        return {label: round(count / total, 6) for label, count in shares.items()} if total else {}

    def dates(self) -> dict[str, str]:
        """First and last day of signups and of events; unless exact, the days min_rows rows reach from either end."""
        found = {}
        for table, reference, name in (("users", "signup_date", "signup"), ("events", "event_timestamp", "events")):
            if not self.has(table, reference):
                continue
            column, where = self.column(table, reference), self.table(table)
            ordered = f"SELECT {column} AS v FROM {where} WHERE {column} IS NOT NULL ORDER BY {column}"
            limit = (self.min_rows,)
            first = self.one(f"SELECT MAX(v) FROM ({ordered} LIMIT {self.source.param}) AS head", limit)[0]
            last = self.one(f"SELECT MIN(v) FROM ({ordered} DESC LIMIT {self.source.param}) AS tail", limit)[0]
            first_day, last_day = _day(first), _day(last)
            if first_day and last_day:
                found[f"{name}_first"], found[f"{name}_last"] = first_day.isoformat(), last_day.isoformat()
                if not self.exact:
                    self.coarsened += [f"dates.{name}_first", f"dates.{name}_last"]
            else:
                self.absent[f"{table}.{reference}"] = "its values are not dates"
        return found

    def missing(self) -> dict[str, float]:
        shares = {}
        for table, names in MISSING_COLUMNS.items():
            present = [name for name in names if self.has(table, name)]
            if not present:
                continue
            counted = ", ".join(f"COUNT({self.column(table, name)})" for name in present)
            total, *non_null = self.one(f"SELECT COUNT(*), {counted} FROM {self.table(table)}")
            for name, kept in zip(present, non_null):
                shares[f"{table}.{name}"] = round(1 - kept / total, 6) if total else 0.0
        return shares

    def purchases(self, events: int) -> dict:
        if not (self.has("events", "event_type") and self.has("events", "amount")) or not events:
            return {}
        event_type, amount = self.column("events", "event_type"), self.column("events", "amount")
        purchase = (self.schema.purchase,)
        purchases = int(self.one(f"SELECT COUNT(*) FROM {self.table('events')} WHERE {event_type} = "
                                 f"{self.source.param}", purchase)[0])
        found: dict[str, Any] = {"event_type": self.schema.purchase, "share_of_events": round(purchases / events, 6)}
        spend = (f"SELECT {amount} AS v FROM {self.table('events')} WHERE {event_type} = {self.source.param} "
                 f"AND {self.source.positive_number(amount)}")
        paid, smallest, mean, largest = self.one(
            f"SELECT COUNT(*), MIN(v), AVG(v), MAX(v) FROM ({spend}) AS spend", purchase)
        if paid:
            levels = [level / 100 for level in SPEND_LEVELS] + [min(self.min_rows - 1, paid - 1) / max(1, paid - 1)]
            *quantiles, low = self.source.quantiles(spend, levels, purchase)
            by_level = {level_key(level): self.tail(f"purchases.spend.{level_key(level)}", value, paid, level / 100,
                                                    low, digits=4)
                        for level, value in zip(SPEND_LEVELS, quantiles)}
            average = round(float(mean), 4)
            if paid < self.min_rows:
                self.coarsened.append("purchases.spend.mean")
                average = coarsen_high(average)
            found["spend"] = {
                "min": round(float(self.low_extreme("purchases.spend.min", float(smallest), low, paid,
                                                    min(by_level.values()))), 2),
                "mean": average,
                **by_level,
                "max": round(float(self.high_extreme("purchases.spend.max", float(largest), paid,
                                                     max(by_level.values()))), 2),
            }
        return found


def _day(value: Any) -> date | None:
    """The calendar day of a date, timestamp or ISO text; None for anything else."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def load_profile(path: Path) -> dict:
    """A profile TOML written by `mlstress-tui profile` (and maybe edited by hand), checked key by key."""
    from mlstress_tui.synth.profile_schema import check_profile

    profile = read_toml(path, f"--profile {path}", "; write one with 'mlstress-tui profile'")
    if profile.get("schema") != PROFILE_SCHEMA:
        raise UsageError(f"--profile {path} is not a profile (schema {profile.get('schema')!r}, expected "
                         f"{PROFILE_SCHEMA!r}); write one with 'mlstress-tui profile'")
    check_profile(profile, path)
    return profile
