"""Secrets in what a user typed (a URL, a DSN, a header), found however malformed, and text with them taken out.

A parser that fails on a URL quotes the part it choked on, and with an unencoded
`/`, `?`, `#` or `@` in a password that part is a piece of the password
("Port could not be cast to integer value as 'Tr0ub4dor'"). So the secrets are
read here by a reading that cannot fail: the user information is everything
between `://` and the last `@`, as the user meant it, and every message built
from such text is scrubbed of the password whole, percent-decoded, re-encoded
and in the pieces a parser would split it into.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

MASK = "***"
# How to write a password that holds a reserved character, in the line that refuses one that does not.
ENCODE_HINT = "percent-encode / ? # @ : % in a user or password (%2F %3F %23 %40 %3A %25)"
# A password's pieces as parsers split them (at reserved characters); shorter pieces say nothing of it.
_PIECE = re.compile(r"[/?#@:%+=&;,\s\[\]!$'()*]+")
_SHORTEST_PIECE = 4
_SHORTEST_SECRET = 3
_PASSWORD_KEYWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)", re.IGNORECASE)
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def user_info(text: str) -> str | None:
    """What stands between `scheme://` and the last `@` (the user and password as meant), or None without both."""
    _, scheme, rest = text.partition("://")
    if not scheme or "@" not in rest:
        return None
    return rest.rpartition("@")[0]


def password_of(text: str) -> str | None:
    """The password as the user meant it (raw, not decoded): after the first ':' of the user information."""
    info = user_info(text)
    if info is None or ":" not in info:
        return None
    return info.partition(":")[2]


def has_bad_percent(text: str) -> bool:
    """A '%' not followed by two hex digits: a parser stops on it (and quotes it)."""
    return bool(_PERCENT.search(text))


def secrets_in(text: str, *, values: tuple[str, ...] = ()) -> list[str]:
    """Every form of the secrets in `text` (its password, `password=` values) and in `values`, longest first."""
    whole = [secret for secret in (password_of(text), *_keyword_passwords(text), *values) if secret]
    found: set[str] = set()
    for secret in whole:
        for form in (secret, unquote(secret), quote(secret, safe=""), quote(unquote(secret), safe="")):
            if len(form) >= _SHORTEST_SECRET:
                found.add(form)
            found.update(piece for piece in _PIECE.split(form) if len(piece) >= _SHORTEST_PIECE)
    return sorted(found, key=len, reverse=True)


def _keyword_passwords(text: str) -> list[str]:
    """`password=…` values of a libpq keyword string (quoted or not), as written."""
    return [match.group(1).strip("'") for match in _PASSWORD_KEYWORD.finditer(text)]


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every one of `secrets` (see `secrets_in`) masked."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def unquoted_tokens(message: str) -> str:
    """A parser's message with the tokens it quotes replaced by '…' (a quoted token may be part of a secret)."""
    return re.sub(r'"[^"]*"|\'[^\']*\'', lambda token: token[0] if len(token[0]) <= 3 else f"{token[0][0]}…{token[0][0]}",
                  message)
