"""``goalline import profiles`` on both stores (issue 4): CSV and JSON Lines, counts, the
rejects file, idempotent re-runs, progress output, exit codes, and stitching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from goalline.cli import main
from goalline.importer import reason
from goalline.storage.store import Store

from conftest import Seeded, events, goalline

GOOD_CSV = (
    "email,phones,_fname,CRM_ID,age,interests\n"
    "ann@example.com,+79000000001;+79000000002,Ann,A-1,30,sport;news\n"
    'bob@example.com,"+7 900 000-00-03, +79000000004",Bob,A-2,,\n'
    "ANN@example.com,,Anna,,31,\n"
)


def run(store: Store, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["import", "profiles", *args, "--database", store.location.target]
    )


def profiles(store: Store) -> dict[str, dict[str, Any]]:
    """Every profile's fields, by email."""

    def read(tx: Any) -> dict[str, dict[str, Any]]:
        ids = [r[0] for r in tx.all("SELECT id FROM profiles ORDER BY id")]
        out = {}
        for profile_id in ids:
            fields = tx.profile_fields(profile_id)
            out[fields.get("email", profile_id)] = {"id": profile_id, **fields}
        return out

    return store.call(read, write=False)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_import_and_second_run(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    path = write(tmp_path, "people.csv", GOOD_CSV)
    first = run(store, str(path), "--db", "1")
    assert first.exit_code == 0, first.output
    assert "3 rows" in first.stdout and "created 2, updated 1, failed 0" in first.stdout
    people = profiles(store)
    assert set(people) == {"ann@example.com", "bob@example.com"}
    ann, bob = people["ann@example.com"], people["bob@example.com"]
    assert ann["phones"] == ["+79000000001", "+79000000002"]
    assert (ann["_fname"], ann["age"], ann["interests"]) == ("Anna", 31, ["news", "sport"])
    assert ann["CRM_ID"] == "A-1"
    assert bob["phones"] == ["+79000000003", "+79000000004"] and "age" not in bob
    assert not (tmp_path / "people.rejects.csv").exists()

    second = run(store, str(path), "--db", "1", "--json", "--quiet")
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert (summary["rows"], summary["created"], summary["updated"]) == (3, 0, 3)
    assert profiles(store) == people  # same profiles, same data


def test_failed_rows_go_to_the_rejects_file(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mixed.csv",
        "\ufeffemail,_fname,age\r\n"
        "good@example.com,Good,1\r\n"
        "not-an-email,Bad,2\r\n"
        "old@example.com,Old,old\r\n"
        "short@example.com,Short\r\n"
        '"quoted@example.com","Multi\r\nline",3\r\n',
    )
    result = run(store, str(path), "--db", "1", "--quiet")
    assert result.exit_code == 1
    assert "created 2, updated 0, failed 3" in result.stdout
    rejects = tmp_path / "mixed.rejects.csv"
    assert f"3 rows failed: they are in {rejects}" in result.stdout
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "line,error,email,_fname,age"
    assert lines[1].startswith("3,email: not a valid email address")
    assert lines[1].endswith(",not-an-email,Bad,2")
    assert lines[2] == "4,age: must be an integer,old@example.com,Old,old"
    assert lines[3] == '5,"2 columns, but the header has 3",short@example.com,Short'
    assert profiles(store)["quoted@example.com"]["_fname"] == "Multi\r\nline"


def test_jsonl_import(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "people.jsonl",
        '{"email": "ann@example.com", "phones": ["+79000000001"], "interests": ["a", "b"]}\n'
        "\n"
        '{"email": "bob@example.com", "vip": true, "score": 4.5}\n'
        "{not json}\n"
        "[1, 2]\n"
        '{"email": "x@example.com", "age": "old"}\n'
        '{"email": "wrapped@example.com", "data": {"_fname": "W"}}\n',
    )
    rejects = tmp_path / "out" / "bad.jsonl"
    rejects.parent.mkdir()
    result = run(store, str(path), "--db", "1", "--rejects", str(rejects), "--quiet")
    assert result.exit_code == 1, result.output
    assert "created 3, updated 0, failed 3" in result.stdout
    people = profiles(store)
    assert people["bob@example.com"]["vip"] is True
    assert people["wrapped@example.com"]["_fname"] == "W"
    bad = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(b["line"], b["error"][:20]) for b in bad] == [
        (4, "not valid JSON (JSON"),
        (5, "must be a JSON objec"),
        (6, "age: must be an inte"),
    ]
    assert bad[0]["data"] == "{not json}"
    assert bad[2]["data"] == {"email": "x@example.com", "age": "old"}
    again = run(store, str(path), "--db", "1", "--rejects", str(rejects), "--json", "--quiet")
    assert json.loads(again.stdout)["updated"] == 3


def test_matching_by_phone_and_custom_field(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    path = write(tmp_path, "crm.csv", "CRM_ID,phones,_fname\nC-1,+79000000001,One\nC-2,,Two\n")
    result = run(store, str(path), "--db", "1", "--matching", "custom", "--field", "CRM_ID")
    assert result.exit_code == 0, result.output
    again = run(store, str(path), "--db", "1", "--matching", "custom", "--field", "CRM_ID")
    assert "created 0, updated 2" in again.stdout
    phones = write(tmp_path, "phones.csv", "phones,_lname\n79000000001,Phoned\n+79009999999,New\n")
    result = run(store, str(phones), "--db", "1", "--matching", "phone", "--quiet")
    assert "created 1, updated 1, failed 0" in result.stdout
    by_crm = {p.get("CRM_ID"): p for p in profiles(store).values()}
    assert by_crm["C-1"]["_lname"] == "Phoned"


def test_batches_see_the_batches_before(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    rows = "".join(f"u{i % 3}@example.com,{i}\n" for i in range(10))
    path = write(tmp_path, "dupes.csv", "email,age\n" + rows)
    result = run(store, str(path), "--db", "1", "--batch-size", "2", "--json", "--quiet")
    summary = json.loads(result.stdout)
    assert (summary["created"], summary["updated"]) == (3, 7)
    assert {p["age"] for p in profiles(store).values()} == {7, 8, 9}


def test_progress_is_shown_unless_quiet(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    path = write(tmp_path, "people.csv", GOOD_CSV)
    shown = run(store, str(path), "--db", "1")
    assert "people.csv" in shown.stderr and "rows/s" in shown.stderr and "ETA" in shown.stderr
    quiet = run(store, str(path), "--db", "1", "--quiet")
    assert quiet.stderr == ""


@pytest.mark.parametrize(
    ("name", "text", "args", "message"),
    [
        ("a.csv", "email,nope\n", [], "CSV column(s) 'nope' are not fields of the database"),
        ("a.csv", "email,email\n", [], "CSV column(s) 'email' appear twice"),
        ("a.csv", "", [], "the CSV file is empty"),
        ("a.txt", "email\n", [], "cannot tell the format of 'a.txt'"),
        ("a.csv", "email\n", ["--matching", "custom"], "--matching custom needs --field NAME"),
        ("a.csv", "email\n", ["--field", "CRM_ID"], "--field is only for --matching custom"),
        ("a.csv", "email\n", ["--matching", "custom", "--field", "x"], "has no field 'x'"),
        ("a.csv", "email\n", ["--db", "99"], "database 99 not found"),
        ("a.csv", "email\n", ["--format", "xml"], "Invalid value for '--format'"),
        ("a.csv", "email\n", ["--rejects", "{dir}/a.csv"], "--rejects must not be the file"),
    ],
)
def test_usage_errors_exit_2(
    store: Store,
    seeded: Seeded,
    tmp_path: Path,
    name: str,
    text: str,
    args: list[str],
    message: str,
) -> None:
    path = write(tmp_path, name, text)
    db = [] if "--db" in args else ["--db", "1"]
    result = run(store, str(path), *db, *(a.format(dir=tmp_path) for a in args))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert profiles(store) == {}


def test_format_option_overrides_the_extension(
    store: Store, seeded: Seeded, tmp_path: Path
) -> None:
    path = write(tmp_path, "export.txt", '{"email": "a@example.com"}\n')
    result = run(store, str(path), "--db", "1", "--format", "jsonl", "--quiet")
    assert result.exit_code == 0, result.output
    assert list(profiles(store)) == ["a@example.com"]


def test_bad_utf8_rows_are_rejected(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"email,_fname\nok@example.com,Ok\nbad@example.com,Jos\xe9\n")
    result = run(store, str(path), "--db", "1", "--quiet")
    assert result.exit_code == 1
    rejects = (tmp_path / "latin1.rejects.csv").read_text(encoding="utf-8")
    assert "3,not valid UTF-8,bad@example.com" in rejects


def test_import_stitches_waiting_events(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from goalline.app import build
    from goalline.settings import Settings

    app = build(Settings(database=store.location.target), store)
    with TestClient(app.asgi) as client:
        r = client.post(
            "/api/v1.1/goals/register",
            json={"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "late@example.com",
                  "goal": "early", "city": "Kazan", "date": "2026-01-01T00:00:00Z"},
        )  # fmt: skip
        assert r.json()["error"] == 0
        path = write(tmp_path, "late.csv", "email,_fname\nlate@example.com,Late\n")
        assert run(store, str(path), "--db", "1", "--quiet").exit_code == 0
        profile = profiles(store)["late@example.com"]
        assert [e["profile_id"] for e in events(store)] == [profile["id"]]
        assert profile["_city"] == "Kazan"
        history = client.post(
            "/api/v1.1/subscribers/history_get",
            json={"token": seeded.token, "list_id": 1, "email": "late@example.com"},
        ).json()["data"]
        assert [a["goal"] for a in history] == ["early"]


def test_as_a_real_process(server_database: str, tmp_path: Path) -> None:
    goalline("db", "create", "Shop", "--id", "1", database=server_database)
    path = write(tmp_path, "people.csv", "email,_fname\na@example.com,A\nbad,B\n")
    done = goalline("import", "profiles", str(path), "--db", "1", database=server_database,
                    check=False)  # fmt: skip
    assert done.returncode == 1
    assert "created 1, updated 0, failed 1" in done.stdout
    assert "rows/s" in done.stderr
    missing = goalline("import", "profiles", str(tmp_path / "none.csv"), "--db", "1",
                       database=server_database, check=False)  # fmt: skip
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_help() -> None:
    result = CliRunner().invoke(main, ["import", "profiles", "--help"])
    assert result.exit_code == 0
    assert "--matching" in result.output and "--rejects" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data[3].email: not valid", "email: not valid"),
        ("data[12]: must be an object", "must be an object"),
        ("data[0].data.age: must be an integer", "data.age: must be an integer"),
    ],
)
def test_reason_drops_the_batch_index(text: str, expected: str) -> None:
    assert reason(text) == expected


def test_the_store_is_left_consistent(store: Store, seeded: Seeded, tmp_path: Path) -> None:
    rows = "".join(f"p{i}@example.com,+7900{i:07d}\n" for i in range(2500))
    path = write(tmp_path, "many.csv", "email,phones\n" + rows)
    assert run(store, str(path), "--db", "1", "--quiet").exit_code == 0
    assert run(store, str(path), "--db", "1", "--quiet").exit_code == 0

    def counts(tx: Any) -> tuple[int, int, int]:
        return (
            tx.scalar("SELECT COUNT(*) FROM profiles"),
            tx.scalar("SELECT COUNT(*) FROM profile_keys"),
            tx.scalar("SELECT COUNT(*) FROM profile_fields"),
        )

    assert store.call(counts, write=False) == (2500, 5000, 5000)
