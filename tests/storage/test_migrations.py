"""Schema migrations: every step applies and rolls back on both stores (a downgrade path), and
a fresh install's schema is the migrations' own, whatever the application's lists say."""

from __future__ import annotations

from typing import Any

import pytest
from yoyo import get_backend, read_migrations

from goalline import model
from goalline.storage.store import MIGRATIONS, Store, Tx, open_store

from conftest import POSTGRES_ONLY


def _tables(store: Store) -> set[str]:
    def read(tx: Tx) -> set[str]:
        if tx.dialect.name == "postgres":
            rows = tx.all("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        else:
            rows = tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows if not r[0].startswith(("_yoyo", "yoyo", "sqlite_"))}

    return store.call(read, write=False)


def _schema(store: Store) -> list[tuple[Any, ...]]:
    """Every table's columns (names, order, types) and every index, as the store reports them:
    SQLite's sqlite_master (the DDL text), PostgreSQL's information_schema and pg_indexes."""

    def read(tx: Tx) -> list[tuple[Any, ...]]:
        if tx.dialect.name == "postgres":
            columns = tx.all(
                "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, "
                "column_default, is_identity FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name NOT LIKE '%yoyo%' "
                "ORDER BY table_name, ordinal_position"
            )
            indexes = tx.all(  # each store has a schema of its own: leave its name out
                "SELECT indexname, replace(indexdef, current_schema() || '.', '') "
                "FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename NOT LIKE '%yoyo%' ORDER BY indexname"
            )
            return [tuple(r) for r in (*columns, *indexes)]
        rows = tx.all(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE '%yoyo%' ORDER BY type, name"
        )
        return [tuple(r) for r in rows]

    return store.call(read, write=False)


def _columns(store: Store, table: str) -> list[str]:
    def read(tx: Tx) -> list[str]:
        if tx.dialect.name == "postgres":
            rows = tx.all(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ? "
                "ORDER BY ordinal_position",
                (table,),
            )
        else:
            rows = tx.all("SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))
        return [r[0] for r in rows]

    return store.call(read, write=False)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("fingerprint", id="a-later-steps-column"),  # 0002 adds it: ADD COLUMN
        pytest.param("new_attribute", id="a-new-name"),
    ],
)
def test_a_fresh_install_does_not_read_the_applications_lists(
    store: Store, server_database: str, monkeypatch: pytest.MonkeyPatch, extra: str
) -> None:
    """The migrations carry their own columns: a fresh install made after EVENT_ATTRS grew
    gets the very schema of one made before (``store``), and a later step's ADD COLUMN of
    the new name still applies."""
    monkeypatch.setattr(model, "EVENT_ATTRS", (*model.EVENT_ATTRS, extra))
    fresh = open_store(server_database)
    try:
        fresh.migrate()
        assert _schema(fresh) == _schema(store)
        columns = _columns(fresh, "goal_events")
    finally:
        fresh.close()
    assert "new_attribute" not in columns
    assert columns.count("fingerprint") == 1 and columns[-1] == "fingerprint"


def test_every_migration_rolls_back_and_applies_again(store: Store) -> None:
    migrations = read_migrations(str(MIGRATIONS))
    ids = [m.id for m in migrations]
    assert ids == sorted(ids) and ids[-1] == "0004_statistics_targets"
    assert {"goal_events", "profile_fields", "request_log"} <= _tables(store)

    backend = get_backend(store.location.yoyo_url)
    try:
        with backend.lock():
            backend.rollback_migrations(backend.to_rollback(migrations))
    finally:
        backend.connection.close()
    assert _tables(store) == set()

    assert store.migrate() == ids
    assert {"goal_events", "profile_fields", "request_log"} <= _tables(store)


def test_profile_fields_leave_room_for_updates_on_postgres(store: Store) -> None:
    def options(tx: Tx) -> list[str]:
        if tx.dialect.name != "postgres":
            return []
        row = tx.one(
            "SELECT reloptions FROM pg_class WHERE relname = 'profile_fields' "
            "AND relnamespace = current_schema()::regnamespace"
        )
        return list(row[0] or [])

    found = store.call(options, write=False)
    if store.dialect.name == "postgres":
        assert "fillfactor=70" in found
    else:
        assert found == []  # SQLite has no such setting: the step does nothing there


@POSTGRES_ONLY  # SQLite keeps no per-column statistics targets: the step does nothing there
def test_analyze_keeps_statistics_only_for_the_columns_queries_use(store: Store) -> None:
    """After ANALYZE, PostgreSQL has statistics for goal_events' lookup columns and none for
    the attributes that are only returned (migration 0004: ANALYZE then costs less)."""

    def analyzed(tx: Tx) -> set[tuple[str, str]]:
        tx.execute("ANALYZE goal_events, request_log, profile_fields")
        rows = tx.all(
            "SELECT tablename, attname FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename IN ('goal_events', 'request_log', 'profile_fields')"
        )
        return {(r[0], r[1]) for r in rows}

    def fill(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO goal_events (db_id, pixel_id, profile_id, matching, match_kind, "
            "match_key, goal, event_at, received_at, is_test, skip_triggers, enrich_profile, "
            "token_id, browser, referer) SELECT 1, 1, 'p' || i, 'email', 'email', 'k' || i, "
            "'g', '2026-01-01', '2026-01-01', false, false, true, 1, 'Firefox', 'r' "
            "FROM generate_series(1, 100) AS i"
        )

    store.call(fill)
    found = store.call(analyzed)
    assert {("goal_events", "profile_id"), ("goal_events", "match_key")} <= found
    assert ("goal_events", "browser") not in found
    assert ("goal_events", "referer") not in found
