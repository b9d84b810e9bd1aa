"""Planner statistics: the server ANALYZEs stale PostgreSQL tables itself (app.keep_statistics).

PostgreSQL's planner treats a table it has never analyzed as nearly empty; a batch lookup of
profile keys then reads every key of the database. Autovacuum fixes that a minute later at best,
and not at all where it is turned off (as on the machine these tests were written on).
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from goalline.app import keep_statistics
from goalline.storage.store import Store, Tx

from conftest import POSTGRES_ONLY

NOW = "2026-01-01T00:00:00.000000Z"
PROFILES = 3000


def _grow(tx: Tx) -> None:
    """PROFILES profiles with an email key each, as a bulk import leaves them."""
    tx.create_database(name="stats", policy="record", db_id=1, now=NOW)
    ids = [f"p{i:05d}" for i in range(PROFILES)]
    tx.insert_profiles(1, ids, NOW)
    tx.insert_keys([(1, "email", f"user{i}@example.com", pid) for i, pid in enumerate(ids)])
    if tx.dialect.name == "postgres":  # publish the row counts now, not at the next idle flush
        tx.execute("SELECT pg_stat_force_next_flush()")


def _stale_soon(store: Store, want: bool, seconds: float = 5.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        stale = store.call(lambda tx: tx.stale_tables(), write=False)
        if bool(stale) == want or time.monotonic() > deadline:
            return stale
        time.sleep(0.1)


def _lookup_plan(tx: Tx) -> str:
    rows = tx.all(
        "EXPLAIN SELECT key, profile_id FROM profile_keys WHERE db_id = ? AND name = ? "
        "AND key IN (?, ?)",
        (1, "email", "user5@example.com", "user77@example.com"),
    )
    return "\n".join(r[0] for r in rows)


async def _run_job(store: Store, until: Any, seconds: float = 10.0) -> None:
    job = asyncio.create_task(keep_statistics(SimpleNamespace(store=store), period=0.1))
    try:
        deadline = time.monotonic() + seconds
        while not until() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        job.cancel()


def test_sqlite_has_no_stale_tables(tmp_path: Any) -> None:
    from goalline.storage.store import open_store

    store = open_store(str(tmp_path / "s.db"))
    store.migrate()
    try:
        store.call(_grow)
        assert store.call(lambda tx: tx.stale_tables(), write=False) == []
        store.call(lambda tx: tx.analyze(["profiles"]))  # a no-op there, and no error
    finally:
        store.close()


@POSTGRES_ONLY
def test_postgres_tables_grown_by_an_import_are_analyzed_and_lookups_use_the_key(
    store: Store,
) -> None:
    pg_store = store
    pg_store.call(_grow)
    stale = _stale_soon(pg_store, want=True)
    assert {"profiles", "profile_keys"} <= set(stale)
    # Never analyzed: the planner expects about one key and filters the database's keys.
    assert "Filter" in pg_store.call(_lookup_plan, write=False)

    def fresh() -> bool:
        return not pg_store.call(lambda tx: tx.stale_tables(), write=False)

    asyncio.run(_run_job(pg_store, fresh))

    assert _stale_soon(pg_store, want=False) == []
    plan = pg_store.call(_lookup_plan, write=False)
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "key" in index_cond.split("name")[-1], plan  # the keys are looked up in the index
    assert "Filter" not in plan, plan


@POSTGRES_ONLY
def test_analyze_refuses_other_tables(store: Store) -> None:
    with pytest.raises(ValueError, match="pg_class"):
        store.call(lambda tx: tx.analyze(["pg_class"]))


def test_start_up_warns_when_postgres_autovacuum_is_off(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The server says at start when autovacuum is off (as on the machine these tests were
    written on), and says nothing when it is on, or on SQLite."""
    from goalline.app import open_migrated
    from goalline.settings import Settings

    off = store.call(lambda tx: tx.autovacuum_off(), write=False)
    if store.dialect.name == "postgres":
        shown = store.call(lambda tx: tx.scalar("SHOW autovacuum"), write=False)
        assert off == (shown == "off")
    else:
        assert off is False
    with caplog.at_level("WARNING", logger="goalline"):
        opened = open_migrated(Settings(database=store.location.target))
        opened.close()
    warned = [r for r in caplog.records if "autovacuum is off" in r.getMessage()]
    assert len(warned) == (1 if off else 0)
