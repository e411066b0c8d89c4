"""Whatever a target raised, as data: a short printable kind and a bounded printable message, never a new exception.

A target is code we do not control, and its exceptions are its self-description:
an `error_kind` may be an int, a tuple, a property that raises, a string holding
terminal escapes; `str(error)` may raise, return megabytes or clear the screen.
The send path turns each failure into (kind, message) here, so a misreporting
target is counted as an error of a named kind and its pool slot always goes back.
"""

from __future__ import annotations

import unicodedata

# Kinds are keys of errors_by_kind in every artefact and the labels of a Prometheus series: short.
KIND_LIMIT = 64
MESSAGE_LIMIT = 200
# The kind of an error whose own description failed (a raising `error_kind` or `__str__`).
UNDESCRIBABLE = "undescribable_error"
_ELLIPSIS = "…"
# Control, format (bidi overrides, zero-width), surrogate and separator characters: never written raw.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escaped(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """`text` on one line, every control or invisible character escaped (`\\x1b`), at most `limit` characters."""
    text = str.__str__(text) if isinstance(text, str) else _text_of(text)  # a str subclass's own methods are not ours
    limit = max(int(limit), len(_ELLIPSIS) + 1)
    # Escaping only lengthens: no more than `limit` source characters can be shown, so no more are read.
    head = text[: limit + 1]
    shown = "".join(" " if character.isspace() else
                    _escaped(character) if unicodedata.category(character) in _HIDDEN_CATEGORIES else character
                    for character in head)
    shown = " ".join(shown.split())
    if len(shown) > limit or len(text) > len(head):
        shown = shown[: limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
    return shown


def _text_of(value: object) -> str:
    """str(value); a value whose own str() fails is named by its type instead."""
    try:
        text = str(value)
    except BaseException:  # noqa: BLE001  (a target's __str__ may raise anything, SystemExit included)
        return f"<{_type_name(value)}>"
    return text if isinstance(text, str) else f"<{_type_name(value)}>"


def _type_name(value: object) -> str:
    name = type(value).__name__
    return name if isinstance(name, str) and name else "object"


def _kind_of(error: BaseException) -> str:
    """The target's own `error_kind` (any value, as text), else the exception's type name; raises if reading it does."""
    claimed = getattr(error, "error_kind", None)
    text = "" if claimed is None else claimed if isinstance(claimed, str) else str(claimed)
    if not isinstance(text, str):
        raise TypeError("error_kind's str() is not text")
    return printable(text, KIND_LIMIT) or printable(_type_name(error), KIND_LIMIT)


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(kind, message) for what a target raised: both printable and bounded; `undescribable_error` when reading them fails.

    Never raises: it runs the target's code (`error_kind` properties,
    `__str__`), which may raise anything, SystemExit and KeyboardInterrupt included.
    """
    try:
        kind = _kind_of(error)
        text = str(error)
        if not isinstance(text, str):
            raise TypeError("str() of the error is not text")
        message = printable(text, MESSAGE_LIMIT) or printable(_type_name(error), MESSAGE_LIMIT)
        return kind, message
    except BaseException as failure:  # noqa: BLE001  (see the docstring)
        name = printable(_type_name(error), KIND_LIMIT)
        return UNDESCRIBABLE, printable(f"{name} raised {_type_name(failure)} while it was being described", MESSAGE_LIMIT)
