"""Fixed-width text columns (ids, dates, timestamps) built as numpy bytes and turned into Python strings at once.

Creating a Python object per value is the cost that dominates a bulk load from
Python. A column's characters are written digit by digit into a byte matrix
(one contiguous row of the matrix per character position, so every write is a
fast vector operation), then one `decode().split()` makes all its strings in a
single C pass.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import numpy as np

from mlstress_tui.synth.mixes import EPOCH, SECONDS_PER_DAY

_SEPARATOR = ord("\n")
# Date tables are built this many days at a time, so one table serves a whole generation.
_DAYS_PER_TABLE = 4096


@lru_cache(maxsize=4)
def _date_rows(epoch: date, days: int) -> np.ndarray:
    """Character rows of 'YYYY-MM-DD' for `days` days from `epoch`: one row per character position."""
    text = "".join((epoch + timedelta(days=day)).isoformat() for day in range(days))
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(days, 10).T.copy()


class TextColumn:
    """`size` strings of `width` ASCII characters, filled position by position."""

    def __init__(self, size: int, width: int) -> None:
        self.width = width
        # One row per character position plus a separator row; transposed at the end.
        self._chars = np.empty((width + 1, size), dtype=np.uint8)
        self._chars[width] = _SEPARATOR

    def put_text(self, text: str, at: int = 0) -> None:
        """The same ASCII text in every string, from position `at`."""
        for offset, char in enumerate(text.encode("ascii")):
            self._chars[at + offset] = char

    def put_digits(self, values: np.ndarray, width: int, at: int = 0) -> None:
        """Integers in [0, 2**32), zero-padded to `width` digits from position `at`."""
        remaining = np.asarray(values).astype(np.uint32)
        for position in range(at + width - 1, at - 1, -1):
            remaining, digit = np.divmod(remaining, 10)
            np.add(digit, 48, out=self._chars[position], casting="unsafe")

    def put_date(self, days: np.ndarray, at: int = 0, epoch: date = EPOCH) -> None:
        """'YYYY-MM-DD' for days counted from `epoch`."""
        days = np.asarray(days)
        needed = int(days.max()) + 1 if days.size else 1
        table = _date_rows(epoch, -(-needed // _DAYS_PER_TABLE) * _DAYS_PER_TABLE)
        self._chars[at : at + 10] = table[:, days]

    def strings(self) -> list[str]:
        values = np.ascontiguousarray(self._chars.T).tobytes().decode("ascii").split("\n")
        values.pop()  # after the last separator
        return values


def prefixed_ids(prefix: str, numbers: np.ndarray, digits: int) -> list[str]:
    """Ids such as 'USR00000001': the prefix, then the number zero-padded to `digits`."""
    column = TextColumn(len(numbers), len(prefix) + digits)
    column.put_text(prefix)
    column.put_digits(numbers, digits, at=len(prefix))
    return column.strings()


def date_strings(days: np.ndarray, epoch: date = EPOCH) -> list[str]:
    """'YYYY-MM-DD' for days counted from `epoch`."""
    column = TextColumn(len(days), 10)
    column.put_date(days, epoch=epoch)
    return column.strings()


def timestamp_strings(seconds: np.ndarray, epoch: date = EPOCH) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' (UTC) for seconds counted from midnight UTC of `epoch`."""
    days, second_of_day = np.divmod(np.asarray(seconds, dtype=np.int64), SECONDS_PER_DAY)
    column = TextColumn(len(days), 19)
    column.put_date(days, epoch=epoch)
    column.put_text(" ", at=10)
    column.put_digits(second_of_day // 3600, 2, at=11)
    column.put_text(":", at=13)
    column.put_digits(second_of_day // 60 % 60, 2, at=14)
    column.put_text(":", at=16)
    column.put_digits(second_of_day % 60, 2, at=17)
    return column.strings()
