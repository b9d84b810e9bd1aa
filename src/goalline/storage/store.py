"""The Store: runs a unit of work (a plain function of a Tx) in one transaction.

``await store.write(fn)`` runs ``fn(tx)`` on a storage thread inside ``BEGIN IMMEDIATE`` (SQLite)
or a pooled connection's transaction (PostgreSQL), commits, and only then returns: a reply built
from the result is sent after the commit (SPEC §2, "An accepted reply ... durably committed").
Any exception rolls the transaction back. ``Retry`` raised by ``fn`` re-runs it (a lost race on
a unique key). SQLite writes go through one thread (one writer, like datasette); PostgreSQL runs
up to ``pg_pool_size`` units at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from goalline.errors import Unavailable
from goalline.storage.dialect import SQLITE, Dialect, Location, is_unavailable, locate

T = TypeVar("T")
log = logging.getLogger("goalline.storage")

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_RETRIES = 3


class Retry(Exception):
    """Raised inside a unit of work to run it again from the start in a new transaction."""


class Tx:
    """One open transaction. Queries use ``?`` placeholders on every store."""

    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self.dialect.sql(query), params)

    def one(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(query, params).fetchone()

    def all(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.execute(query, params).fetchall())

    def scalar(self, query: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(query, params)
        return None if row is None else row[0]

    def savepoint(self) -> Any:
        """``with tx.savepoint(): ...`` undoes only the block's own writes on error."""
        return _Savepoint(self)


class _Savepoint:
    _counter = 0

    def __init__(self, tx: Tx) -> None:
        _Savepoint._counter += 1
        self._tx = tx
        self._name = f"sp{_Savepoint._counter}"

    def __enter__(self) -> None:
        self._tx.execute(f"SAVEPOINT {self._name}")

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if kind is None:
            self._tx.execute(f"RELEASE SAVEPOINT {self._name}")
        else:
            self._tx.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
            self._tx.execute(f"RELEASE SAVEPOINT {self._name}")
        return False


class Store:
    """Base: the retry loop and the async bridge. Subclasses open connections."""

    dialect: Dialect

    def __init__(self, location: Location) -> None:
        self.location = location
        self._executor: ThreadPoolExecutor | None = None

    # -- the two ways in --------------------------------------------------------------------
    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a write transaction off the event loop; return after commit."""
        return await self._submit(fn, True)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self._submit(fn, False)

    def call(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        """Synchronous form for the CLI and tests (same thread rules as ``write``)."""
        assert self._executor is not None, "store is closed"
        return self._executor.submit(self._run, fn, write).result()

    async def _submit(self, fn: Callable[[Tx], T], write: bool) -> T:
        assert self._executor is not None, "store is closed"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, write)

    def _run(self, fn: Callable[[Tx], T], write: bool) -> T:
        for attempt in range(MAX_RETRIES):
            try:
                return self._transaction(fn, write)
            except Retry:
                log.debug("unit of work retried (attempt %d)", attempt + 1)
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("storage unavailable: %s", exc)
                    raise Unavailable(
                        "storage unavailable; nothing was recorded", retry_after=1
                    ) from exc
                raise
        raise Unavailable("storage busy: too many conflicting writes; retry", retry_after=1)

    def _transaction(self, fn: Callable[[Tx], T], write: bool) -> T:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations (yoyo, locked against concurrent nodes); return their ids."""
        from yoyo import get_backend, read_migrations

        backend = get_backend(self.location.yoyo_url)
        migrations = read_migrations(str(MIGRATIONS))
        try:
            with backend.lock():
                pending = backend.to_apply(migrations)
                backend.apply_migrations(pending)
        finally:
            backend.connection.close()
        return [m.id for m in pending]

    def ping(self) -> None:
        self.call(lambda tx: tx.scalar("SELECT 1"), write=False)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class SQLiteStore(Store):
    dialect = SQLITE

    def __init__(self, location: Location, *, synchronous: str = "FULL") -> None:
        super().__init__(location)
        self._synchronous = synchronous
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="goalline-sqlite")

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.location.target, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    def _transaction(self, fn: Callable[[Tx], T], write: bool) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = fn(Tx(conn, SQLITE))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def close(self) -> None:
        if self._executor is not None:
            self._executor.submit(self._close_connection).result()
        super().close()

    def _close_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class PostgresStore(Store):
    def __init__(self, location: Location, *, pool_size: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        from goalline.storage.dialect import POSTGRES

        super().__init__(location)
        self.dialect = POSTGRES
        self._pool = ConnectionPool(
            location.target,
            min_size=1,
            max_size=max(1, pool_size),
            timeout=10,
            open=True,
            name="goalline",
        )
        self._executor = ThreadPoolExecutor(max(1, pool_size), thread_name_prefix="goalline-pg")

    def _transaction(self, fn: Callable[[Tx], T], write: bool) -> T:
        import psycopg

        with self._pool.connection() as conn, conn.transaction():
            try:
                return fn(Tx(conn, self.dialect))
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                raise Retry() from None

    def close(self) -> None:
        super().close()
        self._pool.close()


def open_store(database: str, *, synchronous: str = "FULL", pool_size: int = 8) -> Store:
    """A Store for a ``--database`` value (not yet migrated)."""
    location = locate(database)
    if location.dialect is SQLITE:
        return SQLiteStore(location, synchronous=synchronous)
    return PostgresStore(location, pool_size=pool_size)
