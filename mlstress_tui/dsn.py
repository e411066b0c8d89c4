"""A PostgreSQL DSN as this tool uses it: its parts, a label without secrets, messages scrubbed, a checked connect.

Nothing assumes loopback: what the DSN leaves out, libpq fills from its
environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSERVICE, .pgpass) at connect
time, as it does for psql.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from mlstress_tui.errors import UsageError
from mlstress_tui.redaction import ENCODE_HINT, password_of, secrets_in, unquoted_tokens, user_info
from mlstress_tui.redaction import scrub as scrub_secrets

_ENVIRONMENT = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE", "service": "PGSERVICE"}

# Bad input (no server, refused login, missing database) is said within this long, never a hang.
CONNECT_TIMEOUT_S = 5


# Keys whose values are secrets: never in a label, a description or a message.
SECRET_KEYS = ("password", "sslpassword")


def dsn_parts(dsn: str) -> dict:
    """The DSN's parameters (libpq's environment fills what it leaves out, at connect time); UsageError if malformed.

    A DSN whose user information libpq reads otherwise than it is written (an
    unencoded '/' or '@' in the password moves part of it into the host, port or
    database) is refused: connecting would send the password's pieces elsewhere.
    """
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        reason = scrub(unquoted_tokens(str(error).strip().splitlines()[0]), dsn)
        hint = f"; {ENCODE_HINT}" if password_of(dsn) is not None else ""
        raise UsageError(f"--dsn is not a PostgreSQL connection string ({reason}): write "
                         f"postgresql://user@host:5432/dbname{hint}") from None
    info = user_info(dsn) if dsn.startswith(("postgresql://", "postgres://")) else None
    if info is not None:
        user, colon, password = info.partition(":")
        if (parts.get("user") or "") != unquote(user) or colon and (parts.get("password") or "") != unquote(password):
            raise UsageError("--dsn can be read two ways: a '/' or '@' in its user or password, or an '@' after its "
                             "host, is not percent-encoded (libpq would take part of it for the host, port or "
                             f"database); write an '@' after the host as %40, and {ENCODE_HINT}")
    return parts


def scrub(text: str, dsn: str) -> str:
    """`text` with the DSN's password removed, in every form and piece a parser could quote, and any password=… in it."""
    text = scrub_secrets(text, secrets_in(dsn))
    text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)
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
