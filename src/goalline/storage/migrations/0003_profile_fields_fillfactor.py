"""PostgreSQL: leave room in profile_fields pages for updates in place.

Every event with ``enrich_profile`` rewrites about a dozen of its profile's fields. With full
pages, PostgreSQL writes each new row version on another page and adds an entry to the primary
key's index for it; with free space on the page, the update is a heap-only tuple (HOT) update,
which touches no index (docs/performance.md). SQLite updates rows in place and has no such
setting, so this step does nothing there.
"""

from typing import Any

from yoyo import step  # type: ignore[import-untyped]

from goalline.storage.dialect import POSTGRES, dialect_of

__depends__ = {"0002_dedup"}


def apply(conn: Any) -> None:
    if dialect_of(conn) is POSTGRES:
        conn.cursor().execute("ALTER TABLE profile_fields SET (fillfactor = 70)")


def rollback(conn: Any) -> None:
    if dialect_of(conn) is POSTGRES:
        conn.cursor().execute("ALTER TABLE profile_fields RESET (fillfactor)")


steps = [step(apply, rollback)]
