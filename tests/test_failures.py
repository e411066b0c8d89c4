"""What a target raised, as data: kinds and messages printable and bounded, and a failure to describe them named."""

from __future__ import annotations

import unicodedata

import pytest

from mlstress_tui.load.failures import KIND_LIMIT, MESSAGE_LIMIT, UNDESCRIBABLE, describe_failure, printable


class Claims(Exception):
    """An exception claiming whatever kind a test gives it."""

    def __init__(self, kind: object, message: str = "boom") -> None:
        super().__init__(message)
        self.error_kind = kind


class RaisingKind(Exception):
    @property
    def error_kind(self) -> str:
        raise RuntimeError("the kind is not known")


class ExitingKind(Exception):
    @property
    def error_kind(self) -> str:
        raise SystemExit(3)


class RaisingStr(Exception):
    error_kind = "missing_user"

    def __str__(self) -> str:
        raise ValueError("cannot say")


class InterruptingStr(Exception):
    def __str__(self) -> str:
        raise KeyboardInterrupt


class KindWithRaisingStr:
    def __str__(self) -> str:
        raise RuntimeError("no text")


class NotTextStr(Exception):
    def __str__(self):  # type: ignore[override]
        return 42


class HostileText(str):
    """A str subclass whose own methods fail: only the characters are data."""

    def __getitem__(self, index):  # type: ignore[override]
        raise RuntimeError("no slicing")

    def __iter__(self):  # type: ignore[override]
        raise RuntimeError("no iterating")


def assert_printable(text: str, limit: int) -> None:
    assert isinstance(text, str) and type(text) is str
    assert 0 < len(text) <= limit
    assert "\n" not in text and "\x1b" not in text
    assert not [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")], repr(text)


@pytest.mark.parametrize("claimed, kind", [
    ("missing_user", "missing_user"),
    (5, "5"),
    (0, "0"),
    (("a", 1), "('a', 1)"),
    (["timeout"], "['timeout']"),
    (b"raw", "b'raw'"),
    (None, "Claims"),
    ("", "Claims"),
    ("x\x1b[2Jy", "x\\x1b[2Jy"),
    ("two\nlines", "two lines"),
    ("\u202eevil", "\\u202eevil"),
    (HostileText("hostile"), "hostile"),
])
def test_a_claimed_kind_becomes_short_printable_text(claimed, kind) -> None:
    described = describe_failure(Claims(claimed))
    assert described == (kind, "boom")
    assert_printable(described[0], KIND_LIMIT)


def test_a_long_kind_is_cut_to_the_limit_and_says_so() -> None:
    kind, _ = describe_failure(Claims("k" * 10_000))
    assert len(kind) == KIND_LIMIT and kind.endswith("…") and kind.startswith("k" * 60)


@pytest.mark.parametrize("error, named", [
    (RaisingKind("m"), "RaisingKind raised RuntimeError"),
    (ExitingKind("m"), "ExitingKind raised SystemExit"),
    (RaisingStr(), "RaisingStr raised ValueError"),
    (InterruptingStr(), "InterruptingStr raised KeyboardInterrupt"),
    (Claims(KindWithRaisingStr()), "Claims raised RuntimeError"),
    (NotTextStr(), "NotTextStr raised TypeError"),
])
def test_a_failure_to_describe_an_error_is_an_error_of_its_own_kind(error, named) -> None:
    kind, message = describe_failure(error)
    assert kind == UNDESCRIBABLE
    assert message.startswith(named), message
    assert_printable(message, MESSAGE_LIMIT)


def test_an_error_kind_property_raising_attribute_error_counts_as_no_kind() -> None:
    class Missing(Exception):
        @property
        def error_kind(self) -> str:
            raise AttributeError("error_kind")

    assert describe_failure(Missing("gone")) == ("Missing", "gone")


def test_messages_are_printable_and_bounded() -> None:
    hostile = "\x1b[2J\x1b]0;pwned\x07" + "\r\n\t" + "é\u200b\ud800" + "x" * 100_000
    kind, message = describe_failure(ValueError(hostile))
    assert kind == "ValueError"
    assert_printable(message, MESSAGE_LIMIT)
    assert message.startswith("\\x1b[2J\\x1b]0;pwned\\x07 é\\u200b\\ud800x")
    assert message.endswith("…") and len(message) == MESSAGE_LIMIT


def test_an_empty_message_is_the_exception_name_and_a_class_name_is_made_printable() -> None:
    assert describe_failure(LookupError()) == ("LookupError", "LookupError")
    weird = type("Bad\x1b[2JName", (Exception,), {})
    kind, message = describe_failure(weird())
    assert kind == message == "Bad\\x1b[2JName"


def test_control_flow_exceptions_from_a_target_are_described_like_any_other() -> None:
    assert describe_failure(SystemExit("bye from USR00000003")) == ("SystemExit", "bye from USR00000003")
    assert describe_failure(KeyboardInterrupt()) == ("KeyboardInterrupt", "KeyboardInterrupt")


@pytest.mark.parametrize("text, limit, shown", [
    ("plain", 200, "plain"),
    ("  spaced \t\n out  ", 200, "spaced out"),
    ("abcdefghij", 5, "abcd…"),
    ("abcde", 5, "abcde"),
    ("\x00\x7f", 200, "\\x00\\x7f"),
    ("\U000e0041tag", 200, "\\U000e0041tag"),
    (12345, 200, "12345"),
    (KindWithRaisingStr(), 200, "<KindWithRaisingStr>"),
    (HostileText("a\x1bb"), 200, "a\\x1bb"),
])
def test_printable(text, limit, shown) -> None:
    assert printable(text, limit) == shown


def test_printable_escapes_never_push_past_the_limit() -> None:
    for limit in (4, 10, 64, 200):
        shown = printable("\x1b" * 1000, limit)
        assert len(shown) <= limit and shown.endswith("…")
