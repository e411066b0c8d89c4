"""COPY text built from the row stream's arrays says exactly what the SQLite writer binds."""

from __future__ import annotations

from datetime import date

import numpy as np

from mlstress_tui.synth.generator import EventBatch
from mlstress_tui.synth.copy_rows import columns_copy_text
from mlstress_tui.synth.postgres_writer import event_copy_text

UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def parse_copy_text(text: bytes) -> list[list[str | None]]:
    """COPY's text format read back: one list of fields per line, None for \\N."""
    rows = []
    for line in text.decode("utf-8").split("\n")[:-1]:
        fields = []
        for field in line.split("\t"):
            if field == "\\N":
                fields.append(None)
                continue
            for escaped, plain in UNESCAPE.items():
                field = field.replace(escaped, plain)
            fields.append(field)
        rows.append(fields)
    return rows


def test_copy_text_holds_the_rows_the_sqlite_writer_binds():
    rng = np.random.default_rng(4)
    size = 5_000
    amount = np.where(rng.random(size) < 0.3, np.round(rng.lognormal(3, 2, size), 2), 0.0)
    amount[:3] = [0.01, 123456.78, 0.0]
    session = rng.integers(0, 86_401, size)
    session[:2] = [0, 86_400]
    batch = EventBatch(
        first_number=41, users=rng.integers(0, 99_999_999, size), types=rng.integers(0, 4, size),
        type_names=("view", "add\tto cart", "back\\slash", "kauf ä"), seconds=rng.integers(0, 100 * 365 * 86_400, size),
        epoch=date(1990, 5, 17), items=rng.integers(1, 50_001, size),
        session=session, amount=amount, nulls=(("item_id", rng.random(size) < 0.1), ("session_duration_seconds", rng.random(size) < 0.1),
                              ("amount", rng.random(size) < 0.1)))
    expected = batch.columns()
    parsed = parse_copy_text(event_copy_text(batch))
    assert len(parsed) == size and {len(row) for row in parsed} == {7}
    for column, (values, fields) in enumerate(zip(expected, zip(*parsed))):
        if column == 5:
            fields = [None if field is None else int(field) for field in fields]
        elif column == 6:
            fields = [None if field is None else float(field) for field in fields]
        assert list(fields) == values, column
    assert None in expected[6] and 123456.78 in expected[6] and "kauf ä" in expected[2]


def test_column_lists_become_copy_rows_with_nulls_escapes_and_numbers():
    columns = [["USR00000001", "tab\there", "back\\slash", "line\nbreak", "", None],
               [1, 22, 333, 0, 5, 6],
               ["kauf ä", None, "cr\rhere", "x", None, "y"]]
    parsed = parse_copy_text(columns_copy_text(columns))
    assert parsed == [[str(value) if isinstance(value, int) else value for value in row] for row in zip(*columns)]
    assert columns_copy_text([[], []]) == b""
