"""`goalline prune` as an operator runs it, on both stores, beside a store in use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from goalline.cli import main
from goalline.storage.store import Store

from conftest import Seeded, events, goalline, register


def test_prune_dry_run_then_prune(store: Store, client: TestClient, seeded: Seeded) -> None:
    for date in ("2020-01-01T10:00:00Z", "2020-02-01T10:00:00Z"):
        assert (
            register(client, seeded, email="a@example.com", goal="old", date=date).json()["error"]
            == 0
        )
    register(client, seeded, email="a@example.com", goal="new")
    database = store.location.target

    dry = json.loads(
        goalline(
            "prune", "--before", "2021-01-01", "--db", "1", "--dry-run", "--json", database=database
        ).stdout
    )
    assert dry == {
        "before": "2021-01-01T00:00:00.000000Z",
        "db_id": 1,
        "dry_run": True,
        "goal_events": 2,
        "request_log": 0,
        "seconds": dry["seconds"],
    }
    assert len(events(store)) == 3  # a dry run deletes nothing

    done = goalline("prune", "--before", "2021-01-01T03:00:00+03:00", database=database)
    assert done.stdout.startswith(
        "deleted 2 goal events of every database before 2021-01-01T00:00:00.000000Z and 0 "
        "expired request-log entries"
    ), done.stdout
    assert [e["goal"] for e in events(store)] == ["new"]
    again = goalline("prune", "--before", "2021-01-01", "--json", database=database)
    assert json.loads(again.stdout)["goal_events"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--before", "2999-01-01"], "'2999-01-01' is in the future"),
        (["--before", "yesterday"], "expected a date (2026-01-31, midnight UTC)"),
        (["--before", "2020-01-01T00:00:00"], "or a time with its offset"),
        (["--before", "2020-01-01", "--db", "9"], "database 9 not found"),
        ([], "Missing option '--before'"),
    ],
)
def test_prune_refusals_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["prune", *args, "--database", str(tmp_path / "g.db")])
    assert result.exit_code in (1, 2), result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
