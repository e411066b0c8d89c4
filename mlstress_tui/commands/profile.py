"""`mlstress-tui profile`: the shape of a production database as a TOML of aggregates, for `generate --profile`."""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from pathlib import Path

import psycopg

from mlstress_tui.errors import EXIT_OK, UsageError

DEFAULT_OUT = Path("profile.toml")
MAPPING_EXAMPLE = """\
# mapping.toml: the reference name on the left, yours on the right; leave out what is already so
purchase = "order"            # the event type whose events carry spend
[users]
table = "customers"
user_id = "id"
segment = "plan"
[events]
table = "activity"
user_id = "customer_id"
event_timestamp = "created_at"
amount = "total"
"""


DESCRIPTION = (
    "Read a users/events database (production or a copy) and write its shape as TOML: row counts, "
    "events-per-user quantiles and the share of users without events, the segment, country, device and "
    "event-type mixes, the date range, the share of purchases and the spend quantiles, and the share of NULLs "
    "per column. No id, name, email, city, item or other row value is written. What fewer than 10 rows hold "
    "is not written as it is: a rarer category counts as 'other'; extremes and tail quantiles are coarsened "
    "(the largest values to two significant figures, the smallest and the first and last dates to what at "
    "least 10 rows reach) unless --exact-extremes, and the file's header says which.",
    "Tables and columns named differently from the reference schema are mapped by a TOML file:",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    import shutil
    import textwrap

    width = min(100, shutil.get_terminal_size((80, 24)).columns) - 2
    parser = subparsers.add_parser(
        "profile", help="write a database's shape (aggregates only, never a row) for 'generate --profile'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="\n\n".join(textwrap.fill(paragraph, width) for paragraph in DESCRIPTION)
                    + "\n\n" + MAPPING_EXAMPLE)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", type=Path, metavar="PATH", help="SQLite database, opened read-only")
    where.add_argument("--dsn", metavar="URL", help="PostgreSQL, read in a read-only session: postgresql://user@host:5432/db")
    parser.add_argument("--mapping", type=Path, metavar="FILE", help="TOML naming your tables and columns (see above)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="FILE", help=f"where the profile goes (default ./{DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--exact-extremes", action="store_true",
                        help="write extremes and tail quantiles as found, even when fewer than 10 rows hold them "
                             "(the heaviest user's exact count, the largest purchase); said in the file's header")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tomli_w

    from mlstress_tui.synth.production_profile import SchemaMap, read_profile

    out = args.out.expanduser()
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file path such as {out / 'profile.toml'}")
    if out.exists() and not args.force:
        raise UsageError(f"{out} already exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"directory {out.parent} for --out does not exist; create it first or choose another path")
    schema = SchemaMap.from_toml(args.mapping) if args.mapping else SchemaMap()
    connection, source = _open(args)
    try:
        profile = read_profile(source, schema, exact=args.exact_extremes)
    except (sqlite3.Error, psycopg.Error, ValueError, TypeError) as error:
        # A column holding what its name promises not (text in a count or an amount) is the source's shape.
        raise UsageError(f"cannot profile {source.label}: {' '.join(str(error).split())[:300]}; map the "
                         "columns with --mapping if they hold something else") from None
    finally:
        connection.close()
    _write_atomically(out, header(profile) + tomli_w.dumps(profile))
    print(describe(profile, out))
    return EXIT_OK


def _open(args: argparse.Namespace):
    from mlstress_tui.synth.production_profile import PostgresSource, SQLiteSource

    if args.dsn is not None:
        from mlstress_tui.dsn import connect_checked, dsn_label

        connection = connect_checked(args.dsn, autocommit=True, options="-c default_transaction_read_only=on")
        return connection, PostgresSource(connection, dsn_label(args.dsn))
    from mlstress_tui.load.targets.sqlite import open_read_only

    connection = open_read_only(args.db.expanduser())
    return connection, SQLiteSource(connection, args.db.name)


def _write_atomically(out: Path, text: str) -> None:
    """The profile appears whole or not at all."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as error:
        raise UsageError(f"cannot write to directory {out.parent} ({error.strerror}); choose another --out") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(name, 0o644)
        os.replace(name, out)
    except OSError as error:
        Path(name).unlink(missing_ok=True)
        raise UsageError(f"cannot write {out}: {error.strerror}; choose another --out") from None


def header(profile: dict) -> str:
    """Comment lines that open the file: what it is, and how exact its extremes are."""
    lines = [f"# The shape of {profile['source']}, taken {profile['taken_at']}: aggregates only, never a row.",
             "# Hand-edit with care: 'mlstress-tui generate --profile' checks every key before it writes anything."]
    if profile.get("extremes") == "exact":
        lines.append("# Extremes and tail quantiles are EXACT (--exact-extremes): the heaviest user's count and the "
                     "largest purchase are one row's values.")
    else:
        lines.append("# Extremes and tail quantiles resting on fewer than 10 rows are coarsened (listed under "
                     "'coarsened');")
        lines.append("# 'mlstress-tui profile --exact-extremes' writes them as found.")
    return "\n".join(lines) + "\n\n"


def describe(profile: dict, out: Path) -> str:
    """What the profile holds, in a few lines."""
    per_user = profile["events_per_user"]
    quantiles = per_user["quantiles"]
    lines = [
        f"wrote {out} (profile of {profile['source']}; aggregates only)",
        f"  users            {profile['rows']['users']:,}",
        f"  events           {profile['rows']['events']:,}",
        f"  events per user  mean {per_user['mean']:,.1f}  p50 {quantiles.get('p50', 0):,.0f}  "
        f"p99 {quantiles.get('p99', 0):,.0f}  p99.9 {quantiles.get('p99.9', 0):,.0f}  max {per_user['max']:,}  "
        f"({per_user['share_without_events']:.1%} without events)",
    ]
    for name, shares in profile.get("mixes", {}).items():
        lines.append(f"  {name:<16} " + "  ".join(f"{label} {share:.0%}" for label, share in list(shares.items())[:6])
                     + ("  …" if len(shares) > 6 else ""))
    dates = profile.get("dates", {})
    if dates:
        lines.append(f"  dates            signups {dates.get('signup_first', '?')} … {dates.get('signup_last', '?')}, "
                     f"events {dates.get('events_first', '?')} … {dates.get('events_last', '?')}")
    purchases = profile.get("purchases", {})
    if purchases:
        spend = purchases.get("spend", {})
        median = f", spend p50 {spend['p50']:,.2f} p99 {spend['p99']:,.2f}" if "p50" in spend and "p99" in spend else ""
        lines.append(f"  purchases        {purchases['share_of_events']:.1%} of events ({purchases['event_type']!r})"
                     f"{median}")
    missing = {column: share for column, share in profile.get("missing", {}).items() if share}
    if missing:
        lines.append("  missing          " + ", ".join(f"{column} {share:.1%}" for column, share in missing.items()))
    not_profiled = profile.get("not_profiled", {})
    for why in dict.fromkeys(not_profiled.values()):
        columns = ", ".join(column for column, reason in not_profiled.items() if reason == why)
        hint = "; map them with --mapping if they are there under another name" if why == "not in the database" else ""
        lines.append(f"  not profiled     {columns} ({why}{hint})")
    if profile.get("coarsened"):
        lines.append(f"  coarsened        {len(profile['coarsened'])} extremes and tail figures resting on fewer than "
                     "10 rows (--exact-extremes writes them as found)")
    lines.append(f"  next             mlstress-tui generate --profile {out} [--scale 0.1]")
    return "\n".join(lines)

