"""``--prefill N``: fill ``goal_events`` up to N rows with SQL, so the store-size scenarios can be
run a second time against a store that already holds millions of events.

Ten million events over HTTP would take hours at the rates the benchmark measures, so the rows
are generated inside the database: one set-based ``INSERT … SELECT`` per chunk (a recursive CTE
on SQLite, ``generate_series`` on PostgreSQL), one transaction per chunk. The rows look like the
events ``json-1goal`` stores, so the indexes grow the way a real store's would:

- database 1, pixel 1, the bench token, ``matching`` and ``match_kind`` ``profile_id``;
- ``profile_id`` (and ``match_key``) spread over ``PROFILES`` distinct ids shaped like
  Goalline's own (8 hex digits of a creation time, then 16 pseudo-random hex digits), so
  ``goal_events_profile`` gets entries all over its key range, not one ever-growing tail;
- ``goal`` from a handful of names, ``value`` the row number, ``referer`` ``prefill``,
  ``is_test`` and ``skip_triggers`` false, ``enrich_profile`` true (the request defaults);
- ``event_at`` = ``received_at``, 100 ms apart, in the fixed-width stored form, ending an hour
  before the prefill started;
- every other column NULL (so no entries in the partial ``unmatched`` and ``external`` indexes,
  as for matched events without an ``external_event_id``).
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from typing import Any

from bench.server import DB_ID, PIXEL_ID, BenchStore
from bench.system import BenchError, say

#: Rows per INSERT and per transaction: big enough that per-statement cost vanishes, small
#: enough that one transaction's WAL (SQLite) stays bounded and progress shows every few s.
CHUNK = 500_000
#: Distinct fake profiles the prefilled events are spread over.
PROFILES = 100_000

_COLUMNS = (
    "db_id, pixel_id, profile_id, matching, match_kind, match_key, goal, value, event_at, "
    "received_at, is_test, skip_triggers, enrich_profile, token_id, referer"
)
_GOALS = ("card", "purchase", "view", "signup", "visit")

# Parameters (both dialects): token id, profile-id epoch, first row, last row, event epoch.
_SQLITE = f"""
WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last)
INSERT INTO goal_events ({_COLUMNS})
SELECT {DB_ID}, {PIXEL_ID}, p, 'profile_id', 'profile_id', p, g, i, t, t, 0, 0, 1, :token,
       'prefill'
FROM (
    SELECT i,
           printf('%08x%08x%08x', :pepoch + k, k * 2654435761 % 4294967296,
                  k * 2246822519 % 4294967296) AS p,
           CASE i % 5 {" ".join(f"WHEN {j} THEN '{g}'" for j, g in enumerate(_GOALS))} END AS g,
           strftime('%Y-%m-%dT%H:%M:%S', :eepoch + i / 10, 'unixepoch')
               || printf('.%06dZ', i % 10 * 100000) AS t
    FROM (SELECT i, i * 2654435761 % {PROFILES} AS k FROM n)
)
"""

_POSTGRES = f"""
INSERT INTO goal_events ({_COLUMNS})
SELECT {DB_ID}, {PIXEL_ID}, p, 'profile_id', 'profile_id', p, g, i, t, t, false, false, true,
       %(token)s, 'prefill'
FROM (
    SELECT i,
           lpad(to_hex(%(pepoch)s + k), 8, '0')
               || lpad(to_hex(mod(k * 2654435761, 4294967296)), 8, '0')
               || lpad(to_hex(mod(k * 2246822519, 4294967296)), 8, '0') AS p,
           CASE mod(i, 5) {" ".join(f"WHEN {j} THEN '{g}'" for j, g in enumerate(_GOALS))}
           END AS g,
           to_char((to_timestamp(%(eepoch)s) AT TIME ZONE 'UTC')
                       + i * interval '100 milliseconds',
                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
    FROM (
        SELECT i, mod(i * 2654435761, {PROFILES}) AS k
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n(i)
    ) AS numbered
) AS made
"""

_COUNT = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)$", re.IGNORECASE)


def parse_count(text: str) -> int:
    """``10000000``, ``10_000_000``, ``10,000,000``, ``10M``, ``500k``, ``1.5m`` -> an int (an
    argparse ``type``)."""
    m = _COUNT.match(text.strip().replace("_", "").replace(",", ""))
    if m is None:
        raise ValueError(text)
    scale = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}[m.group(2).lower()]
    return round(float(m.group(1)) * scale)


class _Sqlite:
    """The bench's own sqlite3 connection to the server's file; the server is idle meanwhile,
    so ``BEGIN IMMEDIATE`` gets the write lock at once (busy_timeout covers a straggler)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        self.conn.execute("PRAGMA busy_timeout=60000")
        # 512 MiB of page cache: the profile index is updated all over its key range, and the
        # default 2 MiB cache would send most of those page reads to the OS.
        self.conn.execute("PRAGMA cache_size=-524288")

    def scalar(self, sql: str) -> Any:
        return self.conn.execute(sql).fetchone()[0]

    def insert(self, params: dict[str, int]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(_SQLITE, params)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def finish(self) -> None:
        """Fold the WAL back into the file, as a long-running store's would be."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    """A psycopg connection (autocommit off: one transaction per chunk) into the bench schema
    (the store URL carries ``search_path``)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=False, connect_timeout=10)

    def scalar(self, sql: str) -> Any:
        row = self.conn.execute(sql).fetchone()
        self.conn.commit()
        return row[0] if row else None

    def insert(self, params: dict[str, int]) -> None:
        try:
            self.conn.execute(_POSTGRES, params)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def finish(self) -> None:
        """Fresh planner statistics: ten million rows arrived without autovacuum seeing them
        (and on some servers autovacuum is off), and the second pass should plan with them."""
        self.conn.autocommit = True
        self.conn.execute("ANALYZE goal_events")

    def close(self) -> None:
        self.conn.close()


def prefill(store: BenchStore, target: int) -> tuple[int, float]:
    """Add rows until ``goal_events`` holds ``target``; return (rows added, seconds taken)."""
    db: _Sqlite | _Postgres
    try:
        db = _Sqlite(store.url) if store.kind == "sqlite" else _Postgres(store.url)
    except Exception as exc:
        raise BenchError(f"prefill: cannot connect to the store: {exc}") from None
    try:
        return _fill(db, target)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"prefill failed: {exc}") from None
    finally:
        db.close()


def _fill(db: _Sqlite | _Postgres, target: int) -> tuple[int, float]:
    have = int(db.scalar("SELECT COUNT(*) FROM goal_events"))
    token = db.scalar("SELECT MIN(id) FROM tokens WHERE name = 'bench'")
    if token is None:
        raise BenchError("prefill: the bench token is missing from the store")
    missing = target - have
    if missing <= 0:
        say(f"prefill: the store already holds {have:,} events (>= {target:,}); nothing to add")
        return 0, 0.0
    now = int(time.time())
    # Events end an hour before now, 100 ms apart (row i at eepoch + i / 10 s); the fake
    # profiles were "created" one a second before the first event.
    eepoch = now - 3600 - math.ceil(target / 10)
    pepoch = eepoch - PROFILES
    say(
        f"prefill: {have:,} events stored; adding {missing:,} with SQL in chunks of "
        f"{CHUNK:,} rows ..."
    )
    t0 = time.monotonic()
    for first in range(have, target, CHUNK):
        last = min(first + CHUNK, target) - 1
        db.insert(
            {"token": int(token), "pepoch": pepoch, "eepoch": eepoch, "first": first, "last": last}
        )
        done = last + 1 - have
        took = time.monotonic() - t0
        say(
            f"  {last + 1:,} / {target:,} events ({done:,} added in {took:.0f} s, "
            f"{done / max(took, 1e-9):,.0f} rows/s)"
        )
    say("  finishing (" + ("ANALYZE" if isinstance(db, _Postgres) else "WAL checkpoint") + ")")
    db.finish()
    took = time.monotonic() - t0
    say(f"prefill: {missing:,} rows in {took:.1f} s ({missing / max(took, 1e-9):,.0f} rows/s)")
    return missing, took
