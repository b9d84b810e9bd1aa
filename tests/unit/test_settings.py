"""The settings table is the one place a setting is declared: Settings, load() and the docs
follow its defaults, and a Settings that drifts from it is refused at import."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest

from goalline import settings
from goalline.settings import BY_NAME, SETTINGS, Settings, check_fields, load, markdown_table


def set_table_default(monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> None:
    """As if the table's ``default=`` of ``name`` were edited (Setting is frozen, so through
    its __dict__; monkeypatch restores it)."""
    monkeypatch.setitem(BY_NAME[name].__dict__, "default", value)


def test_a_changed_table_default_is_used_and_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    set_table_default(monkeypatch, "port", 9999)

    assert load({}, environ={}).port == 9999
    assert Settings().port == 9999
    assert load({}, environ={}).as_env()["GOALLINE_PORT"] == "9999"  # what workers are given
    assert "| `--port` | `GOALLINE_PORT` | `9999` |" in markdown_table()
    # the precedence still holds over the new default: flag > environment > table
    assert load({}, environ={"GOALLINE_PORT": "7000"}).port == 7000
    assert load({"port": 6000}, environ={"GOALLINE_PORT": "7000"}).port == 6000


def _other_value(setting: settings.Setting) -> Any:
    """A valid value of ``setting`` that is not its default."""
    if setting.choices:
        return next(c for c in setting.choices if c != setting.default)
    if setting.type is str:
        return setting.default + "x"
    return setting.default + 1


def test_settings_fields_are_exactly_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = dataclasses.fields(Settings)
    hints = typing.get_type_hints(Settings)
    assert [f.name for f in fields] == [s.name for s in SETTINGS]
    assert [hints[f.name] for f in fields] == [s.type for s in SETTINGS]

    # no field keeps a default of its own: every one follows its row of the table
    changed = {s.name: _other_value(s) for s in SETTINGS}
    for name, value in changed.items():
        set_table_default(monkeypatch, name, value)
    assert dataclasses.asdict(Settings()) == changed
    assert dataclasses.asdict(load({}, environ={})) == changed


def test_a_settings_class_that_drifts_from_the_table_is_refused() -> None:
    fields = [(f.name, f.type, settings._default(f.name)) for f in dataclasses.fields(Settings)]
    same = dataclasses.make_dataclass("Same", fields, frozen=True, kw_only=True)
    check_fields(same)  # a faithful copy passes

    drifts: dict[str, list[Any]] = {
        "missing": fields[:-1],
        "not in the table": [*fields, ("colour", "str", settings._default("colour"))],
        "another order": [fields[1], fields[0], *fields[2:]],
        "annotated": [(n, "str" if n == "port" else t, d) for n, t, d in fields],
        "must default to the table": [
            (n, t, dataclasses.field(default=8080) if n == "port" else d) for n, t, d in fields
        ],
    }
    for message, drifted in drifts.items():
        cls = dataclasses.make_dataclass("Drifted", drifted, frozen=True, kw_only=True)
        with pytest.raises(TypeError, match=message):
            check_fields(cls)


@pytest.mark.parametrize(
    ("name", "default"), [("port", "8080"), ("port", -1), ("log_level", "loud"), ("host", 1)]
)
def test_an_invalid_table_default_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, default: Any
) -> None:
    set_table_default(monkeypatch, name, default)
    with pytest.raises(TypeError, match=f"{name}'s default"):
        check_fields()
