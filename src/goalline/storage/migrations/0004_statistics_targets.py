"""PostgreSQL: planner statistics only for the columns that queries filter or sort on.

ANALYZE computes statistics for every column of a 30,000-row sample. ``goal_events`` has about
sixty columns, and queries look rows up by a handful of them; the rest (the event's attributes,
enrichment, the fingerprint) are only ever returned. The server ANALYZEs a table each time a
tenth of it has changed (app.keep_statistics, autovacuum's rule), so on a store that takes
100,000 events/s that can be a run every 10 s. Measured on a copy of a benchmark's store (439,417
events): ANALYZE goal_events took 0.81-0.99 s of PostgreSQL CPU before this step and 0.31-0.40 s
after; request_log 0.26 s before, 0.11 s after (its ``reply`` texts were sampled too);
profile_fields 0.14 s before, 0.07 s after. The planner still has statistics for every column
it uses to pick an index. SQLite keeps no such per-column setting, so this step does nothing
there.
"""

from typing import Any

from yoyo import step  # type: ignore[import-untyped]

from goalline.storage.dialect import POSTGRES, dialect_of

__depends__ = {"0003_profile_fields_fillfactor"}

#: Per table, the columns that keep statistics: those in a WHERE, JOIN or ORDER BY
#: (storage/queries.py, pipeline/dedupe.py). Every other column of the table gets none.
KEEP = {
    "goal_events": (
        "id", "db_id", "profile_id", "event_at", "match_kind", "match_field", "match_key",
        "goal", "external_type", "external_event_id",
    ),
    "request_log": ("key", "expires_at"),
    "profile_fields": ("profile_id", "name"),
}  # fmt: skip


def _columns(conn: Any, table: str) -> list[str]:
    cursor = conn.cursor()
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        (table,),
    )
    return [name for (name,) in cursor.fetchall() if name not in KEEP[table]]


def _set(conn: Any, target: int) -> None:
    if dialect_of(conn) is not POSTGRES:
        return
    for table in KEEP:
        columns = _columns(conn, table)
        conn.cursor().execute(
            f"ALTER TABLE {table} "
            + ", ".join(f"ALTER COLUMN {c} SET STATISTICS {target}" for c in columns)
        )


def apply(conn: Any) -> None:
    _set(conn, 0)


def rollback(conn: Any) -> None:
    _set(conn, -1)  # back to default_statistics_target


steps = [step(apply, rollback)]
