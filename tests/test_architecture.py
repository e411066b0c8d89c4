"""The layering rules of design.md, checked rather than remembered."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_engine_never_imports_the_tui_and_the_tui_never_touches_sql(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


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
        return  # an editable or source checkout reads themes/ and presets/ beside the package
    assert (package / "_data" / "themes").is_dir()
    assert (package / "_data" / "presets" / "default.toml").is_file()
