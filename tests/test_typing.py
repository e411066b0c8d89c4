"""The typed core type-checks (`mypy --strict` on results/, load/, session/), and the test fakes keep its contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the [test] extra")

pytestmark = pytest.mark.slow


def test_the_core_is_clean_under_mypy_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out, err, status = mypy_api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, out + err
    assert "Success" in out


def test_the_fake_engine_is_held_to_the_engine_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    # tui_fakes.py assigns FakeEngine to a `type[Engine]`: a missing or mistyped member fails here.
    monkeypatch.chdir(ROOT)
    out, err, status = mypy_api.run(["--config-file", str(ROOT / "pyproject.toml"), "--no-strict-optional",
                                     "--allow-untyped-defs", "--allow-incomplete-defs", "--allow-untyped-calls",
                                     "--disable-error-code", "type-arg", "--disable-error-code", "no-any-return",
                                     str(ROOT / "tests" / "tui_fakes.py")])
    assert status == 0, out + err
