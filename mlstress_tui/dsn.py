"""A PostgreSQL DSN as this tool uses it: its parts, a label without secrets, messages scrubbed, a checked connect.

Nothing assumes loopback: what the DSN leaves out, libpq fills from its
environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSERVICE, .pgpass) at connect
time, as it does for psql.
"""

from __future__ import annotations

import os
import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from mlstress_tui.errors import UsageError

_ENVIRONMENT = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE", "service": "PGSERVICE"}

# Bad input (no server, refused login, missing database) is said within this long, never a hang.
CONNECT_TIMEOUT_S = 5


def dsn_parts(dsn: str) -> dict:
    """The DSN's parameters (libpq's environment fills what it leaves out, at connect time); UsageError if malformed."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        raise UsageError(f"--dsn is not a PostgreSQL connection string ({scrub(str(error).splitlines()[0], dsn)}): "
                         "write postgresql://user@host:5432/dbname") from None


def scrub(text: str, dsn: str) -> str:
    """`text` with the DSN's password (and any password=… or :password@ in it) removed."""
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        text = text.replace(password, "***")
    text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text)
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def dsn_label(dsn: str) -> str:
    """user@host:port/dbname as far as the DSN says, without its password."""
    # What the DSN leaves out, libpq takes from its environment: the label says what will be used.
    parts = {**{key: os.environ[variable] for key, variable in _ENVIRONMENT.items() if os.environ.get(variable)},
             **(dsn_parts(dsn) if dsn else {})}
    where = parts.get("host") or "local socket"
    if parts.get("port"):
        where += f":{parts['port']}"
    user = f"{parts['user']}@" if parts.get("user") else ""
    database = f"/{parts['dbname']}" if parts.get("dbname") else ""
    service = f"service={parts['service']} " if parts.get("service") else ""
    return f"postgresql {service}{user}{where}{database}".strip()


def connect_checked(dsn: str, **options: Any) -> psycopg.Connection:
    """A connection, or one line (scrubbed) saying why there is none: no server, refused login, missing database."""
    dsn_parts(dsn)
    try:
        return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, **options)
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())
        raise UsageError(f"cannot connect to {dsn_label(dsn)}: {scrub(reason, dsn)[:300]}") from None
