"""The layering rules of design.md, checked rather than remembered."""

import pkgutil
import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

import mlstress_tui

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_engine_never_imports_the_tui_and_the_tui_never_touches_sql(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_every_module_of_the_package_is_in_a_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(item for item in config["tool"]["importlinter"]["contracts"] if item["type"] == "layers")
    placed = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    modules = {f"mlstress_tui.{info.name}" for info in pkgutil.iter_modules(mlstress_tui.__path__)}
    assert modules, "no modules found in the package"
    assert modules <= placed, f"in no layer: {sorted(modules - placed)}"


def test_themes_and_presets_ship_inside_the_package():
    from mlstress_tui.paths import data_dir
    from mlstress_tui.presets import available_presets, load_preset

    assert {"default", "heavy-users", "traffic"} <= set(available_presets())
    assert load_preset("default").sla_p95_ms == 200.0
    assert len(list(data_dir("themes").glob("*"))) >= 3


def test_an_installed_package_carries_its_own_data():
    import mlstress_tui

    package = Path(mlstress_tui.__file__).resolve().parent
    if "site-packages" not in package.parts:
        pytest.skip("an editable or source checkout reads themes/ and presets/ beside the package")
    assert (package / "_data" / "themes").is_dir()
    assert (package / "_data" / "presets" / "default.toml").is_file()
