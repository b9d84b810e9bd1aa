"""Schema migrations: every step applies and rolls back on both stores (a downgrade path)."""

from __future__ import annotations

from yoyo import get_backend, read_migrations

from goalline.storage.store import MIGRATIONS, Store, Tx


def _tables(store: Store) -> set[str]:
    def read(tx: Tx) -> set[str]:
        if tx.dialect.name == "postgres":
            rows = tx.all("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        else:
            rows = tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows if not r[0].startswith(("_yoyo", "yoyo", "sqlite_"))}

    return store.call(read, write=False)


def test_every_migration_rolls_back_and_applies_again(store: Store) -> None:
    migrations = read_migrations(str(MIGRATIONS))
    ids = [m.id for m in migrations]
    assert ids == sorted(ids) and ids[-1] == "0003_profile_fields_fillfactor"
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
