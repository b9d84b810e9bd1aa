"""`goalline backup`: a whole, consistent copy of a SQLite store taken while a server writes to
it, and clear refusals."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import httpx2 as httpx

from goalline.storage.store import open_store

from conftest import goalline, start_server


def test_backup_while_serving(tmp_path: Path) -> None:
    database = str(tmp_path / "live.db")
    goalline("db", "create", "Shop", "--id", "1", database=database)
    goalline("pixel", "create", "Site", "--db", "1", "--id", "1", database=database)
    token = json.loads(goalline("token", "create", "t", "--json", database=database).stdout)
    server = start_server(database)
    acknowledged: list[int] = []
    stop = threading.Event()

    def send() -> None:  # a steady writer, bounded in count and time
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(5000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                reply = http.post(
                    "/api/v1.1/goals/register",
                    json={"token": token["token"], "db_id": 1, "pixel_id": 1,
                          "email": f"u{i}@example.com", "goal": "g"},
                ).json()  # fmt: skip
                assert reply["error"] == 0, reply
                acknowledged.extend(reply["event_ids"])

    writer = threading.Thread(target=send)
    try:
        writer.start()
        while len(acknowledged) < 50 and writer.is_alive():
            time.sleep(0.01)
        before = len(acknowledged)
        copy = tmp_path / "copy.db"
        out = json.loads(goalline("backup", str(copy), "--json", database=database).stdout)
        after = len(acknowledged)
        stop.set()
        writer.join(timeout=30)
    finally:
        stop.set()
        server.stop()
    assert before >= 50 and out["destination"] == str(copy) and out["bytes"] > 0
    assert not (tmp_path / "copy.db.partial").exists()
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restored = open_store(str(copy))
    try:
        restored.migrate()  # a copy is a store like any other
        ids = [e["id"] for e in restored.call(lambda uow: uow.events(), write=False)]
    finally:
        restored.close()
    # Everything acknowledged before the backup began is in it; nothing is half there.
    assert set(acknowledged[:before]) <= set(ids)
    assert before <= len(ids) <= after + 1
    assert ids == sorted(set(ids))


def test_backup_refusals(tmp_path: Path) -> None:
    taken = tmp_path / "taken.db"
    taken.write_text("")
    store = tmp_path / "g.db"
    goalline("migrate", database=str(store))
    cases = [
        (str(store), str(taken), "already exists; back up to a new file"),
        (str(tmp_path / "missing.db"), str(tmp_path / "x.db"), "no such SQLite file"),
        ("postgresql://nobody@127.0.0.1:1/x", str(tmp_path / "y.db"), "use pg_dump"),
    ]
    for database, destination, message in cases:
        result = goalline("backup", destination, database=database, check=False)
        assert result.returncode == 1, result.stdout
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "missing.db").exists()  # a mistyped store is not created
