"""Exactly-once: the request log (Altcraft's request deduplication) and idempotent goal events
(``external_type`` + ``external_event_id`` per database and goal name)."""

from typing import Any

from yoyo import step  # type: ignore[import-untyped]

from goalline.storage.dialect import run_ddl

__depends__ = {"0001_initial"}

DDL = [
    # One row per remembered data-changing request: claimed at the start of its transaction,
    # completed with the reply in the same transaction as the events it stored.
    """CREATE TABLE request_log (
        key TEXT PRIMARY KEY,
        method TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        reply_format TEXT,
        reply TEXT
    )""",
    "CREATE INDEX request_log_expiry ON request_log (expires_at)",
    "ALTER TABLE goal_events ADD COLUMN fingerprint TEXT",
    """CREATE UNIQUE INDEX goal_events_external ON goal_events
        (db_id, COALESCE(external_type, ''), external_event_id, COALESCE(goal, ''))
        WHERE external_event_id IS NOT NULL""",
]


def apply(conn: Any) -> None:
    run_ddl(conn, DDL)


def rollback(conn: Any) -> None:
    cursor = conn.cursor()
    cursor.execute("DROP INDEX goal_events_external")
    cursor.execute("ALTER TABLE goal_events DROP COLUMN fingerprint")
    cursor.execute("DROP TABLE request_log")


steps = [step(apply, rollback)]
