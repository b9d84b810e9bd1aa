"""The goalline command as users run it: help texts, admin commands with --json, demo."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from goalline import demo
from goalline.cli import main
from goalline.settings import SETTINGS

from conftest import ROOT, free_port, goalline, start_server

COMMANDS = [
    [],
    ["serve"],
    ["demo"],
    ["migrate"],
    ["settings"],
    ["db"],
    ["db", "create"],
    ["db", "list"],
    ["db", "policy"],
    ["db", "field"],
    ["db", "field", "add"],
    ["pixel"],
    ["pixel", "create"],
    ["token"],
    ["token", "create"],
    ["import"],
    ["import", "profiles"],
    ["prune"],
    ["backup"],
]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every group of the goalline command, this one first."""
    out = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, (*path, name))
    return out


@pytest.mark.parametrize("width", [80, 60])
def test_command_summaries_are_whole_and_short(width: int) -> None:
    """Each command's line in `--help` is a whole sentence: click cut long ones at the
    terminal's width ("Seed a demo database, pixel, token and profiles, and print a...")."""
    for path in _commands(main):
        group = main
        for name in path:
            group = group.commands[name]  # type: ignore[assignment]
        output = CliRunner().invoke(main, [*path, "--help"], terminal_width=width).output
        listing = " ".join(output.split("Commands:", 1)[1].split())
        assert "..." not in listing, (path, output)
        for name, command in group.commands.items():
            summary = " ".join((command.help or "").split("\n\n", 1)[0].split())
            assert summary.endswith("."), (path, name, summary)
            assert len(summary) <= 60, f"{' '.join((*path, name))}: summary too long: {summary}"
            assert f"{name} {summary}" in listing, (path, name, output)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "goalline")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3


def test_serve_help_lists_every_setting() -> None:
    output = CliRunner().invoke(main, ["serve", "--help"]).output
    for setting in SETTINGS:
        assert setting.flag in output and setting.env in output


def test_admin_commands_print_json(server_database: str) -> None:
    db = json.loads(
        goalline(
            "db",
            "create",
            "Shop",
            "--id",
            "24",
            "--unknown-profile",
            "create",
            "--json",
            database=server_database,
        ).stdout
    )
    assert db == {"id": 24, "name": "Shop", "unknown_profile": "create"}
    second = json.loads(goalline("db", "create", "Next", "--json", database=server_database).stdout)
    assert second["id"] == 25
    field = json.loads(
        goalline(
            "db",
            "field",
            "add",
            "24",
            "CRM_ID",
            "--type",
            "string",
            "--json",
            database=server_database,
        ).stdout
    )
    assert field["name"] == "CRM_ID"
    pixel = json.loads(
        goalline(
            "pixel", "create", "Site", "--db", "24", "--id", "7", "--json", database=server_database
        ).stdout
    )
    assert pixel == {"id": 7, "name": "Site", "db_id": 24}
    token = json.loads(
        goalline(
            "token", "create", "backend", "--db", "24", "--json", database=server_database
        ).stdout
    )
    assert re.fullmatch(r"[0-9a-f]{32}", token["token"]) and token["db_ids"] == [24]
    listed = json.loads(goalline("db", "list", "--json", database=server_database).stdout)
    assert listed["databases"][0]["fields"] == {"CRM_ID": "string"}

    server = start_server(server_database)
    try:
        import httpx2

        r = httpx2.post(
            server.url + "/api/v1.1/goals/register",
            json={
                "token": token["token"],
                "db_id": 24,
                "pixel_id": 7,
                "matching": "custom",
                "field_name": "CRM_ID",
                "field_value": 123420,
                "goal": "card",
            },
        )
        assert r.json()["error"] == 0 and len(r.json()["profile_id"]) == 24
    finally:
        server.stop()


def test_token_is_stored_only_as_a_hash(server_database: str, kind: str) -> None:
    created = json.loads(
        goalline(
            "token",
            "create",
            "t",
            "--value",
            "my-altcraft-token-1",
            "--json",
            database=server_database,
        ).stdout
    )
    assert created["token"] == "my-altcraft-token-1"
    if kind == "sqlite":
        assert b"my-altcraft-token-1" not in Path(server_database).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db", "field", "add", "9", "x", "--type", "int"], "database 9 not found"),
        (["pixel", "create", "p", "--db", "9"], "database 9 not found"),
        (["token", "create", "t", "--db", "9"], "database 9 not found"),
        (["db", "create", "x", "--unknown-profile", "maybe"], "Invalid value"),
    ],
)
def test_admin_errors_are_one_clear_line(
    server_database: str, args: list[str], message: str
) -> None:
    result = goalline(*args, database=server_database, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALLINE_PORT", "http")
    result = CliRunner().invoke(main, ["settings"])
    assert result.exit_code == 2
    assert "GOALLINE_PORT='http': expected int" in result.output


def test_demo_prints_a_curl_that_works(server_database: str) -> None:
    seeded = json.loads(goalline("demo", "--json", database=server_database).stdout)
    again = json.loads(goalline("demo", "--json", database=server_database).stdout)
    assert again["profiles"] == seeded["profiles"]  # seeding twice changes nothing
    server = start_server(server_database)
    try:
        port = server.url.rsplit(":", 1)[1]
        command = seeded["curl"].replace(":8080", f":{port}")
        out = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
        reply = json.loads(out.stdout)
        assert reply["error"] == 0
        assert reply["profile_id"] == seeded["profiles"]["john@example.com"]
    finally:
        server.stop()


def test_docs_list_every_setting() -> None:
    from goalline.settings import markdown_table

    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert markdown_table() in doc, "docs/configuration.md is stale: run scripts/sync-docs"


def _set_table_default(monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> None:
    """As if the table's ``default=`` of ``name`` were edited (Setting is frozen, so through
    its __dict__; monkeypatch restores it). No GOALLINE_* variable may hide the default."""
    from goalline.settings import BY_NAME

    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setitem(BY_NAME[name].__dict__, "default", value)


def test_a_changed_port_default_is_served_on_and_documented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    import goalline.app

    _set_table_default(monkeypatch, "port", 9999)
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(kwargs))
    monkeypatch.setattr(goalline.app, "settle_heap", lambda: None)  # no gc.freeze() in pytest
    runner = CliRunner()

    result = runner.invoke(main, ["serve", "--database", str(tmp_path / "g.db")])
    assert result.exit_code == 0, result.output
    assert served["port"] == 9999

    listed = json.loads(runner.invoke(main, ["settings", "--json"]).output)["settings"]
    port = next(row for row in listed if row["name"] == "port")
    assert port["default"] == port["value"] == 9999
    assert re.search(
        r"--port +GOALLINE_PORT +default 9999 +now 9999\n", runner.invoke(main, ["settings"]).output
    )
    help_text = " ".join(runner.invoke(main, ["serve", "--help"]).output.split())
    assert "TCP port the HTTP server listens on. [env GOALLINE_PORT; default 9999]" in help_text

    demo = json.loads(
        runner.invoke(main, ["demo", "--json", "--database", str(tmp_path / "g.db")]).output
    )
    assert "http://127.0.0.1:9999/" in demo["curl"]


def test_a_changed_database_default_is_used_and_documented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    _set_table_default(monkeypatch, "database", "elsewhere.db")
    runner = CliRunner()

    result = runner.invoke(main, ["migrate"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "goalline.db").exists()
    for command in (["migrate"], ["db", "list"], ["import", "profiles"], ["serve"]):
        help_text = " ".join(runner.invoke(main, [*command, "--help"]).output.split())
        assert "[env GOALLINE_DATABASE; default elsewhere.db]" in help_text, command
    assert "serve the API on ./elsewhere.db" in runner.invoke(main, ["--help"]).output


def test_a_database_name_is_taken_once(server_database: str) -> None:
    """Two databases called "Shop" (or "shop ") are refused, naming the one that has the name;
    other names still work."""
    goalline("db", "create", "Shop", "--id", "1", database=server_database)
    for name in ("Shop", "shop ", "SHOP"):
        result = goalline("db", "create", name, database=server_database, check=False)
        assert result.returncode == 1, result.stdout
        assert f"database name {name!r}: database 1 is already called 'Shop'" in result.stderr
        assert "Traceback" not in result.stderr
    blank = goalline("db", "create", "  ", database=server_database, check=False)
    assert blank.returncode == 1 and "database name" in blank.stderr
    goalline("db", "create", "Shop 2", database=server_database)
    listed = json.loads(goalline("db", "list", "--json", database=server_database).stdout)
    assert [(d["id"], d["name"]) for d in listed["databases"]] == [(1, "Shop"), (2, "Shop 2")]


def test_demo_stays_out_of_a_store_with_real_databases(server_database: str) -> None:
    """The demo's token is published: seeding it next to real databases is refused, and the
    store is left as it was."""
    goalline("db", "create", "Shop", "--id", "1", database=server_database)
    for command in (["demo"], ["serve", "--demo", "--port", str(free_port())]):
        result = goalline(*command, database=server_database, check=False)
        assert result.returncode == 1, result.stdout
        assert "already holds databases (1 'Shop')" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    listed = json.loads(goalline("db", "list", "--json", database=server_database).stdout)
    assert [d["name"] for d in listed["databases"]] == ["Shop"]
    created = goalline(
        "token", "create", "t", "--value", demo.DEMO_TOKEN, database=server_database, check=False
    )
    assert created.returncode == 0  # the demo token was never stored in this store


def test_demo_uses_its_own_file_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOALLINE_DATABASE", raising=False)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "goalline-demo.db").exists() and not (tmp_path / "goalline.db").exists()
    assert str(tmp_path / "goalline-demo.db") in result.output
    assert "Start the server with: goalline serve --demo\n" in result.output
    # The real default is free for the README's real set-up.
    created = CliRunner().invoke(main, ["db", "create", "Shop", "--id", "1", "--json"])
    assert created.exit_code == 0, created.output
    assert (tmp_path / "goalline.db").exists()
