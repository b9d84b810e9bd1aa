"""PostgreSQL: leave room in profile_fields pages for updates in place.

Every event with ``enrich_profile`` rewrites about a dozen of its profile's fields. With full
pages, PostgreSQL writes each new row version on another page and adds an entry to the primary
key's index for it; with free space on the page, the update is a heap-only tuple (HOT) update,
which touches no index (docs/performance.md). SQLite updates rows in place and has no such
setting, so this step does nothing there.
"""

from yoyo import step

__depends__ = {"0002_dedup"}


def _postgres(conn) -> bool:  # type: ignore[no-untyped-def]
    return not type(conn).__module__.startswith("sqlite3")


def apply(conn):  # type: ignore[no-untyped-def]
    if _postgres(conn):
        conn.cursor().execute("ALTER TABLE profile_fields SET (fillfactor = 70)")


def rollback(conn):  # type: ignore[no-untyped-def]
    if _postgres(conn):
        conn.cursor().execute("ALTER TABLE profile_fields RESET (fillfactor)")


steps = [step(apply, rollback)]
