"""A Redis URL as this tool uses it: checked, a label without secrets, messages scrubbed, a checked client.

The URL's password (in its user part or a `password=` query value) never
reaches any output: labels are built from the parts that are not secret, and
every message built from the URL or from what Redis answered is scrubbed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mlstress_tui.errors import UsageError

SCHEMES = ("redis", "rediss", "unix")
# No server, a refused login or a wrong database number is said within this long, never a hang.
CONNECT_TIMEOUT_S = 5.0
_EXAMPLE = "write redis://[user:password@]host:6379/N (N the database number)"


def _passwords(url: str) -> list[str]:
    """Every spelling of the URL's password (as written and percent-decoded), best effort on a malformed URL."""
    found = []
    try:
        found.append(urlsplit(url).password or "")
    except ValueError:
        pass
    # As written up to the first and up to the last '@': a password may hold '@' or '/' unencoded.
    for pattern in (r"^[a-z]+://[^:/@\s]*:([^@\s]*)@", r"^[a-z]+://[^:/@\s]*:(\S*)@"):
        match = re.match(pattern, url)
        if match:
            found.append(match.group(1))
    for value in re.findall(r"[?&]password=([^&#\s]*)", url):
        found.append(value)
    return sorted({spelling for password in found for spelling in (password, unquote(password)) if spelling},
                  key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with the URL's password (and any :password@ or password=… in it) removed."""
    for password in _passwords(url):
        text = text.replace(password, "***")
    text = re.sub(r"(password=)[^&#\s]+", r"\1***", text)
    return re.sub(r"([a-z]+://[^:/@\s]*:)\S*@", r"\1***@", text)


def redis_parts(url: str, option: str) -> dict[str, Any]:
    """host, port, db (and user, path for unix://) of a Redis URL; one scrubbed line when it is not one."""
    shown = scrub(url, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        # urllib's own words quote the text it read as a port, which may be part of a password: never shown.
        why = "its port is not a number from 0 to 65535" if "port" in str(error).lower() else "it cannot be parsed"
        raise UsageError(f"{option} {shown!r} is not a Redis URL ({why}): {_EXAMPLE}") from None
    if parts.scheme not in SCHEMES:
        raise UsageError(f"{option} {shown!r} is not a Redis URL (scheme {parts.scheme or 'missing'!r}): {_EXAMPLE}")
    query = parse_qs(parts.query)
    db_text = (query.get("db") or [""])[0] or (unquote(parts.path).strip("/") if parts.scheme != "unix" else "")
    if db_text and not db_text.isdigit():
        raise UsageError(f"{option} {shown!r} names database {scrub(db_text, url)!r}, not a number: {_EXAMPLE}")
    if parts.scheme == "unix":
        if not parts.path:
            raise UsageError(f"{option} {shown!r} has no socket path: write unix:///path/to/redis.sock?db=N")
        where = {"path": unquote(parts.path)}
    else:
        if not parts.hostname:
            raise UsageError(f"{option} {shown!r} has no host: {_EXAMPLE}")
        where = {"host": parts.hostname, "port": port or 6379}
    user = unquote(parts.username) if parts.username else None
    return {"scheme": parts.scheme, **where, "db": int(db_text or 0), "user": user}


def redis_label(url: str, option: str = "--redis") -> str:
    """redis user@host:port/db, without the password."""
    parts = redis_parts(url, option)
    user = f"{parts['user']}@" if parts["user"] else ""
    if "path" in parts:
        return f"redis {user}unix:{parts['path']}?db={parts['db']}"
    return f"{parts['scheme']} {user}{parts['host']}:{parts['port']}/{parts['db']}"


def client_options(timeout_s: float) -> dict[str, Any]:
    """Options for redis-py: decoded strings, `timeout_s` per call, one immediate retry on a broken connection only.

    redis-py's default (ten retries with backoff up to 1 s, timeouts included)
    would hide a stopped Redis behind seconds of retrying; one retry still lets
    a pooled connection the server closed (a restart) reconnect at once.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"decode_responses": True, "socket_timeout": timeout_s,
            "socket_connect_timeout": min(timeout_s, CONNECT_TIMEOUT_S),
            "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))}


def reason(error: Exception, url: str) -> str:
    """What redis-py said, on one line, scrubbed of the URL's password."""
    return scrub(" ".join(str(error).split()) or type(error).__name__, url)[:300]


def connect_checked(url: str, option: str = "--redis", timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A redis-py client that answered PING, or one line (scrubbed) saying why not: no server, refused login, bad db."""
    import redis

    label = redis_label(url, option)
    try:
        client = redis.Redis.from_url(url, **client_options(timeout_s))
        client.ping()
    except (redis.RedisError, OSError, ValueError) as error:
        raise UsageError(f"cannot reach Redis at {label} ({option}): {reason(error, url)}") from None
    return client
