"""The Store: runs units of work (plain functions of a UnitOfWork) in transactions, with group
commit.

``await store.write(fn)`` queues ``fn``; a writer takes every unit waiting in the queue (up to
``write_batch``), runs each inside its own SAVEPOINT of one transaction, commits once, and only
then resolves each caller with its result or its exception. So replies are sent after their
rows are durable (SPEC §2), a failing unit rolls back alone, and the cost of a commit (an fsync)
is shared by every request that arrived meanwhile (issue 6). ``Retry`` raised by a unit re-runs
it from its savepoint (a lost race on a unique key), as often as the store's RetryPolicy allows.
The queue is bounded: when it is full, ``write`` answers 503 at once instead of letting memory
grow.

How a group runs differs by driver, because of the GIL. sqlite3 releases the GIL around every
statement, so a writer thread would wait for the event loop's thread at each of a unit's ten
or so statements (measured: 600 µs a unit under load). SQLite units therefore run on the event
loop's own thread, where a statement costs microseconds; only what may block (waiting for
another process's turn, a ``BEGIN IMMEDIATE`` that must wait, ``COMMIT``'s fsync) goes to the
writer's own thread, and new requests gather into the next group meanwhile. SQLite has one
writer connection, used by one writer at a time: a group, a ``large`` unit or a ``call`` (the
last two run on the writer's thread). PostgreSQL statements wait on the network, so PostgreSQL
has a few writer threads (``pg_writers``), each drawing groups from the shared queue on its
pooled connection. Reads run on reader threads with connections of their own in both (SQLite's
WAL lets them read while a write is under way), so a read never waits for a write.

The breaker (issue 17, item 9). When an operation fails with an error that may mean the
storage itself is gone (``dialect.is_outage``: connection refused or lost, no connection
within ``pg_connect_timeout``, a SQLite file that cannot be opened or written), the store's
probe thread tries one cheap connection at once. If that fails too, the storage is known
unreachable: ``write``, ``read`` and ``call`` raise Unavailable at once (one attribute check
on their path) instead of queueing or waiting for a connection, and the probe tries again
every ``storage_probe_seconds`` until it gets through. A unit that fails for its own reasons, a
SQLite file locked by another process, or a lost connection on a server that is still there
never opens it: the probe finds the storage and nothing changes. One probe thread per store
(a process has one store), started only while storage is suspect or down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import math
import os
import queue
import sqlite3
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from goalline.errors import Unavailable
from goalline.settings import Settings
from goalline.storage.dialect import (
    SQLITE,
    Dialect,
    Location,
    is_outage,
    is_unavailable,
    locate,
)
from goalline.storage.ports import Batched, Outcome, Retry
from goalline.storage.queries import Queries
from goalline.storage.transaction import Tx

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

__all__ = ["Batched", "Outcome", "Retry", "Store", "Tx", "open_store"]

T = TypeVar("T")
log = logging.getLogger("goalline.storage")

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How often a unit of work runs before a lost race is answered with 503 (see run_unit)."""

    #: Runs of a unit in all, the first included.
    attempts: int = 3


#: Every store's policy unless it is given another (``Store.retry``).
DEFAULT_RETRY = RetryPolicy()


class _Unbatch(Exception):
    """A batch failed: roll its transaction back and run the group again unit by unit."""


@dataclass(slots=True)
class _Unit:
    fn: Callable[[Queries], Any]
    done: Callable[[Any, BaseException | None], None]
    batch: Batched | None = None
    #: A unit awaited on an event loop: a writer thread settles every such future of a group
    #: with one call_soon_threadsafe per loop (one wake-up) instead of one per unit.
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None


_STOP = _Unit(lambda tx: None, lambda value, error: None)


#: What a caller hears when storage is unavailable (the envelope's error_text).
UNAVAILABLE_TEXT = "storage unavailable; nothing was recorded"


def _unavailable(exc: BaseException) -> Unavailable:
    log.warning("storage unavailable: %s", exc)
    error = Unavailable(UNAVAILABLE_TEXT, retry_after=1)
    error.__cause__ = exc
    return error


def run_unit(
    attempt: Callable[[], Any],
    *,
    policy: RetryPolicy,
    is_conflict: Callable[[BaseException], bool],
    unavailable: Callable[[BaseException], Unavailable] = _unavailable,
) -> Outcome:
    """Run a unit of work under ``policy``, the one retry loop of every store.

    ``attempt`` runs the unit once, in its own transaction or savepoint, which it undoes when
    the unit raises. ``Retry``, or an exception ``is_conflict`` accepts (a PostgreSQL
    serialization failure or deadlock), runs it again, up to ``policy.attempts`` runs in all;
    then the outcome is a 503 "storage busy". Any other exception is the unit's outcome, except
    a driver error meaning the storage is unavailable: that is raised, as ``unavailable``
    makes it (the store's own tells its breaker), because whatever else shares the connection
    fails with it.
    """
    for number in range(1, policy.attempts + 1):
        try:
            return attempt(), None
        except Retry:
            log.debug("unit of work retried (attempt %d)", number)
        except Exception as exc:
            if is_conflict(exc):
                continue
            if is_unavailable(exc):
                raise unavailable(exc) from exc
            return None, exc
    return None, Unavailable("storage busy: too many conflicting writes; retry", retry_after=1)


def _no_conflict(exc: BaseException) -> bool:
    return False


class Store:
    """Base: the write queue, group commit and the async bridge. Subclasses own connections."""

    dialect: Dialect

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgres``."""
        return self.dialect.name

    #: How often a unit that loses a race runs (see run_unit).
    retry: RetryPolicy = DEFAULT_RETRY

    def __init__(
        self, location: Location, settings: Settings, *, writers: int, readers: int
    ) -> None:
        self.location = location
        self.write_batch = max(1, settings.write_batch)
        self._queue: queue.Queue[_Unit] = queue.Queue(maxsize=max(1, settings.write_queue))
        self._readers: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max(1, readers), thread_name_prefix=f"goalline-{self.dialect.name}-read"
        )
        self._writers = [
            threading.Thread(target=self._writer, name=f"goalline-{self.dialect.name}-write-{i}",
                             daemon=True)
            for i in range(writers)
        ]  # fmt: skip
        self._closed = False
        # The breaker (module docstring): set while storage is known unreachable, to what the
        # probe last met; the only thing the ways in check.
        self._outage: BaseException | None = None
        self._down_since = 0.0
        self._probe_seconds = max(0.05, settings.storage_probe_seconds)
        self._retry_after = max(1, math.ceil(self._probe_seconds))
        self._breaker_lock = threading.Lock()
        self._probing = False
        self._suspected = False
        self._stop_probe = threading.Event()
        self._probe_thread: threading.Thread | None = None

    # -- the ways in ------------------------------------------------------------------------
    async def write(
        self, fn: Callable[[Queries], T], *, large: bool = False, batch: Batched | None = None
    ) -> T:
        """Run ``fn`` in a write transaction off the event loop; return after the commit.

        ``large`` marks a unit that runs long (a batch import); stores whose groups run on the
        event loop give such a unit a transaction of its own on a thread instead. ``batch``
        lets the unit run together with the others of its kind in its group (see Batched).
        """
        if self._outage is not None:
            raise self._refusal()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(_Unit(fn, _settled_by_finish, batch, loop, future))
        return await future

    async def read(self, fn: Callable[[Queries], T]) -> T:
        """Run ``fn`` in a read transaction on a reader connection."""
        assert self._readers is not None, "store is closed"
        if self._outage is not None:
            raise self._refusal()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read, fn)

    def call(self, fn: Callable[[Queries], T], *, write: bool = True) -> T:
        """Synchronous form for the CLI and tests."""
        if self._outage is not None:
            raise self._refusal()
        if not write:
            assert self._readers is not None, "store is closed"
            return self._readers.submit(self._read, fn).result()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def done(value: Any, error: BaseException | None) -> None:
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

        self._enqueue(_Unit(fn, done))
        return future.result()

    def _enqueue(self, unit: _Unit) -> None:
        assert not self._closed, "store is closed"
        try:
            self._queue.put_nowait(unit)
        except queue.Full:
            raise Unavailable(
                "storage: write queue full; nothing was recorded", retry_after=1
            ) from None

    # -- the writer ---------------------------------------------------------------------------
    def _writer(self) -> None:
        while True:
            unit = self._queue.get()
            if unit is _STOP:
                return
            group = [unit]
            while len(group) < self.write_batch:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is _STOP:
                    self._queue.put(_STOP)  # let this group finish, then stop
                    break
                group.append(unit)
            self._commit_group(group)

    def _commit_group(self, group: list[_Unit]) -> None:
        if len(group) == 1:  # alone: the transaction is the unit's, no savepoint needed
            self._commit_alone(group[0])
            return
        try:
            try:
                outcomes = self._in_transaction(lambda tx: self._run_group(tx, group))
            except _Unbatch:  # rolled back: the same group again, unit by unit
                outcomes = self._in_transaction(
                    lambda tx: self._run_group(tx, group, batched=False)
                )
        except BaseException as exc:  # the commit itself failed: nothing of the group is stored
            error = self._unavailable(exc) if is_unavailable(exc) else exc
            outcomes = [(None, error)] * len(group)
        _finish(group, outcomes)

    def _commit_alone(self, unit: _Unit) -> None:
        _finish([unit], [self._alone(unit)])

    def _alone(self, unit: _Unit) -> Outcome:
        try:
            return run_unit(
                lambda: self._in_transaction(unit.fn),
                policy=self.retry,
                is_conflict=self._is_conflict,
                unavailable=self._unavailable,
            )
        except BaseException as exc:  # Unavailable, or what is no Exception: the unit's outcome
            return None, exc

    def _run_group(self, tx: Queries, group: list[_Unit], *, batched: bool = True) -> list[Outcome]:
        """Every unit of a group in one open transaction: batched kinds first, one call per
        kind (even for one unit of a kind: a batch has no savepoint, so it is two statements
        cheaper, which counts in the small groups of a lightly loaded server), then the rest
        one by one, each in its own savepoint.

        A batch runs without a savepoint of its own (on PostgreSQL that saves two of a group's
        round trips). It runs before anything else of the transaction, so if it raises, the
        caller rolls the whole transaction back and runs the group again with
        ``batched=False`` (_Unbatch): that undoes exactly the batch's writes.
        """
        outcomes: list[Outcome | None] = [None] * len(group)
        kinds: dict[Any, list[int]] = {}
        if batched:
            for i, unit in enumerate(group):
                if unit.batch is not None:
                    kinds.setdefault(unit.batch.run, []).append(i)
        for run, members in kinds.items():
            items = [group[i].batch.item for i in members]  # type: ignore[union-attr]
            try:
                results = run(tx, items)
            except Exception as exc:
                if is_unavailable(exc):
                    raise  # the connection is gone: the whole group fails
                # A lost race (Retry, a unique key) or anything unexpected: the caller
                # undoes the batch and each unit runs on its own, which settles it exactly.
                log.debug("batch of %d fell back to single units: %r", len(items), exc)
                raise _Unbatch() from exc
            for i, outcome in zip(members, results, strict=True):
                outcomes[i] = outcome
        return [
            self._run_unit(tx, unit) if outcome is None else outcome
            for unit, outcome in zip(group, outcomes, strict=True)
        ]

    def _run_unit(self, tx: Queries, unit: _Unit) -> Outcome:
        def attempt() -> Any:
            with tx.savepoint():
                return unit.fn(tx)

        # In a group a conflict is not retried: psycopg's serialization and deadlock errors are
        # OperationalErrors, which is_unavailable counts as "unavailable", so run_unit raises
        # and the whole group fails (as before; only a unit alone retries them).
        return run_unit(
            attempt, policy=self.retry, is_conflict=_no_conflict, unavailable=self._unavailable
        )

    def _is_conflict(self, exc: BaseException) -> bool:
        return False

    def _read(self, fn: Callable[[Queries], T]) -> T:
        try:
            return self._read_transaction(fn)
        except Exception as exc:
            if is_unavailable(exc):
                raise self._unavailable(exc) from exc
            raise

    # -- the breaker ----------------------------------------------------------------------------
    @property
    def unavailable(self) -> bool:
        """Whether storage is known unreachable (the breaker is open): every way in refuses
        at once until the probe reaches it again."""
        return self._outage is not None

    def _refusal(self) -> Unavailable:
        """What every way in raises while storage is known unreachable."""
        error = Unavailable(UNAVAILABLE_TEXT, retry_after=self._retry_after)
        error.__cause__ = self._outage
        return error

    def _unavailable(self, exc: BaseException) -> Unavailable:
        """What a caller hears of a driver error meaning storage is unavailable; if the error
        may mean the storage is gone, the probe checks it at once."""
        if is_outage(exc):
            self._suspect()
        return _unavailable(exc)

    def _suspect(self) -> None:
        """Have the probe thread check the storage now (one thread at a time)."""
        with self._breaker_lock:
            self._suspected = True
            if self._probing or self._closed:
                return
            self._probing = True
            self._probe_thread = threading.Thread(
                target=self._watch, name=f"goalline-{self.dialect.name}-probe", daemon=True
            )
        self._probe_thread.start()

    def _watch(self) -> None:
        """The probe thread: probe until the storage answers, opening the breaker when it
        does not and closing it when it does again; then end, unless suspected meanwhile."""
        try:
            while not self._stop_probe.is_set():
                with self._breaker_lock:
                    self._suspected = False
                failure = self._try_probe()
                if failure is not None:
                    if self._outage is None:
                        self._down_since = time.monotonic()
                        self._outage = failure
                        log.warning(
                            "storage unreachable (%s): every request gets 503 with "
                            "Retry-After: %d until it answers again (probing every %.1f s)",
                            failure, self._retry_after, self._probe_seconds,
                        )  # fmt: skip
                        self._hook(self._on_down)
                    else:
                        self._outage = failure
                    self._stop_probe.wait(self._probe_seconds)
                    continue
                if self._outage is not None:
                    if not self._hook(self._on_up):
                        self._stop_probe.wait(self._probe_seconds)
                        continue
                    self._outage = None
                    log.info(
                        "storage reachable again after %.1f s: serving requests",
                        time.monotonic() - self._down_since,
                    )
                with self._breaker_lock:
                    if not self._suspected:
                        return
                # Suspected again while it answered: probe again, but not at once (a storm
                # of failures on a server that answers must not become a storm of probes).
                self._stop_probe.wait(self._probe_seconds)
        finally:
            with self._breaker_lock:
                self._probing = False

    def _hook(self, hook: Callable[[], None]) -> bool:
        try:
            hook()
        except Exception:
            log.exception("storage breaker: %s failed", hook.__name__)
            return False
        return True

    def _try_probe(self) -> BaseException | None:
        """None when the storage answers the probe, else the error that says it is gone."""
        try:
            self._probe()
        except Exception as exc:
            if is_outage(exc):
                return exc
            # It answered, if only to refuse (locked, too many clients): it is there.
            log.debug("storage probe: %r (storage is reachable)", exc)
        return None

    def _stop_probing(self) -> None:
        self._stop_probe.set()
        thread = self._probe_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    # -- per store ----------------------------------------------------------------------------
    def _in_transaction(self, fn: Callable[[Queries], T]) -> T:
        raise NotImplementedError

    def _read_transaction(self, fn: Callable[[Queries], T]) -> T:
        raise NotImplementedError

    def _probe(self) -> None:
        """One cheap attempt to reach the storage, with a short timeout (the probe thread's);
        raises what it meets."""
        raise NotImplementedError

    def _on_down(self) -> None:
        """Called on the probe thread once storage is known unreachable."""

    def _on_up(self) -> None:
        """Called on the probe thread when storage answers again, before requests come in."""

    # -- lifecycle ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations (yoyo, locked against concurrent nodes); return their ids."""
        from yoyo import get_backend, read_migrations  # type: ignore[import-untyped]

        backend = get_backend(self.location.yoyo_url)
        migrations = read_migrations(str(MIGRATIONS))
        try:
            with backend.lock():
                pending = backend.to_apply(migrations)
                backend.apply_migrations(pending)
        finally:
            backend.connection.close()
        return [m.id for m in pending]

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` s) for the units this event loop has queued to be
        committed, before ``close``: PostgreSQL's writer threads finish theirs in ``close``."""

    def close(self) -> None:
        """Finish every queued unit, then stop the threads."""
        if self._closed:
            return
        with self._breaker_lock:
            self._closed = True
        self._stop_probing()
        for _ in self._writers:
            self._queue.put(_STOP)
        for thread in self._writers:
            if thread.is_alive():
                thread.join()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None


def _settled_by_finish(value: Any, error: BaseException | None) -> None:
    raise AssertionError("a unit with a future is settled by _finish")


def _finish(group: list[_Unit], outcomes: list[Outcome]) -> None:
    """Hand each unit its outcome: futures through one callback per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, Any]]] = {}
    for unit, (value, error) in zip(group, outcomes, strict=True):
        if unit.loop is None:
            unit.done(value, error)
        else:
            by_loop.setdefault(unit.loop, []).append((unit.future, value, error))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in settled:
        _settle(future, value, error)


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


class SQLiteStore(Store):
    """SQLite: one writer connection, taken in turns (_Turn) by one writer at a time, and a
    connection per reader thread.

    A group's units run on the event loop's thread, on the writer connection; whatever of a
    write may block runs on the writer's own thread (``_writer_thread``, one): waiting for
    another process's turn (_WriterLock), a ``BEGIN IMMEDIATE`` that must wait, ``COMMIT``,
    and the whole of a ``large`` unit or a ``call``. The reader threads only ever read.
    """

    dialect = SQLITE

    def __init__(self, location: Location, settings: Settings) -> None:
        self._synchronous = settings.sqlite_synchronous
        self._local = threading.local()  # each reader thread's connection
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pending: list[_Unit] = []
        self._flushing: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._writer_lock = _WriterLock(
            None if location.target == ":memory:" else location.target + "-lock"
        )
        #: Whose turn it is to use ``_writer_conn`` (and ``_writer_lock``) in this process.
        self._turn = _Turn()
        self._writer_conn: sqlite3.Connection | None = None
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="goalline-sqlite-write")
        super().__init__(location, settings, writers=0, readers=2)
        self._max_pending = self._queue.maxsize

    def _open(self) -> sqlite3.Connection:
        # Used by one thread at a time, but not always the same one (the writer's: the loop's
        # and the writer thread; any: close), hence check_same_thread=False.
        conn = sqlite3.connect(
            self.location.target,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _reader_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def _writer_connection(self) -> sqlite3.Connection:
        """The writer connection; only whoever has the turn calls this."""
        if self._writer_conn is None:
            self._writer_conn = self._open()
        return self._writer_conn

    async def write(
        self, fn: Callable[[Queries], T], *, large: bool = False, batch: Batched | None = None
    ) -> T:
        """Queue ``fn`` for the next group; the loop's flusher runs and commits it.

        A ``large`` unit (a 10,000-item batch takes about a second) would stall every other
        request on the loop, so it gets its own transaction on the writer's thread, in its turn
        between groups.
        """
        assert not self._closed, "store is closed"
        if self._outage is not None:
            raise self._refusal()
        if large:
            await self._turn.take()
            return await asyncio.wrap_future(self._write_alone(fn))
        if len(self._pending) >= self._max_pending:
            raise Unavailable("storage: write queue full; nothing was recorded", retry_after=1)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Unit(fn, lambda value, error: _settle(future, value, error), batch))
        if loop not in self._flushing:  # one flusher per loop; it keeps the task referenced
            self._flushing[loop] = loop.create_task(self._flush())
        return await future

    def call(self, fn: Callable[[Queries], T], *, write: bool = True) -> T:
        """Synchronous form for the CLI and tests: a write runs on the writer's thread in its
        turn (this thread waits for it), a read on a reader thread."""
        if not write:
            return super().call(fn, write=False)
        assert not self._closed, "store is closed"
        if self._outage is not None:
            raise self._refusal()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop in self._flushing:  # its group would wait for this thread: never to end
            raise RuntimeError("store.call() on an event loop that is writing: await write()")
        self._turn.wait()
        return self._write_alone(fn).result()

    def _write_alone(self, fn: Callable[[Queries], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` in a transaction of its own on the writer's thread. The caller has the
        turn; it passes on as soon as ``fn`` is done (or will not run: cancelled)."""
        try:
            job = self._writer_thread.submit(self._alone_on_writer_thread, fn)
        except BaseException:
            self._turn.release()
            raise
        job.add_done_callback(self._release_if_cancelled)
        return job

    def _release_if_cancelled(self, job: concurrent.futures.Future[Any]) -> None:
        if job.cancelled():  # it never ran (its caller was cancelled first)
            self._turn.release()

    def _alone_on_writer_thread(self, fn: Callable[[Queries], T]) -> T:
        try:
            value, error = run_unit(
                lambda: self._in_transaction(fn),
                policy=self.retry,
                is_conflict=self._is_conflict,
                unavailable=self._unavailable,
            )
        finally:
            self._turn.release()
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await self._turn.take()
                try:
                    conn = self._writer_connection()
                except Exception as exc:  # cannot open the database: every waiting unit hears why
                    self._turn.release()
                    group, self._pending[:] = list(self._pending), []
                    cannot: BaseException = self._unavailable(exc) if is_unavailable(exc) else exc
                    for unit in group:
                        unit.done(None, cannot)
                    return
                group = self._pending[: self.write_batch]
                del self._pending[: self.write_batch]
                try:
                    outcomes = await self._commit_group_here(conn, group)
                except BaseException as exc:
                    failed = self._unavailable(exc) if is_unavailable(exc) else exc
                    for unit in group:
                        unit.done(None, failed)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for unit, (value, error) in zip(group, outcomes, strict=True):
                    unit.done(value, error)
                await asyncio.sleep(0)  # let requests that arrived meanwhile join the next group
        finally:
            self._flushing.pop(loop, None)

    async def _commit_group_here(
        self, conn: sqlite3.Connection, group: list[_Unit]
    ) -> list[Outcome]:
        """Run ``group`` in one transaction, its units on this (the loop's) thread, and commit
        it. The caller has the turn; it passes on at the end, even on error or cancellation."""
        job: concurrent.futures.Future[Any] | None = None

        def on_writer_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
            nonlocal job
            job = self._writer_thread.submit(fn, *args)
            return asyncio.wrap_future(job)

        try:
            # Another process's turn: wait on the writer's thread, which the kernel wakes when
            # that process is done; at once on this thread when no other process is writing.
            if not self._writer_lock.try_acquire():
                await on_writer_thread(self._writer_lock.acquire)
            tx = Queries(conn, SQLITE)
            await self._begin(conn, on_writer_thread)
            try:
                outcomes = self._run_group(tx, group)
            except _Unbatch:  # undo the batch's writes; the group again, unit by unit
                conn.execute("ROLLBACK")
                await self._begin(conn, on_writer_thread)
                outcomes = self._run_group(tx, group, batched=False)
            await on_writer_thread(conn.execute, "COMMIT")
            return outcomes
        finally:
            if job is not None and not job.done():
                # Cancelled while the writer's thread works on the connection: end the turn
                # on that thread once it is done.
                job.add_done_callback(lambda _: self._end_group(conn))
            else:
                self._end_group(conn)

    def _end_group(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:  # even if the rollback fails: other writers wait for these
            try:
                self._writer_lock.release()
            finally:
                self._turn.release()

    async def _begin(
        self,
        conn: sqlite3.Connection,
        on_writer_thread: Callable[[Callable[..., Any], str], asyncio.Future[Any]],
    ) -> None:
        """BEGIN IMMEDIATE on the loop's thread when the write lock is free (it nearly always
        is: this process is the only writer), saving two thread hand-offs a group; if another
        program holds it, wait for it on the writer's thread, as the busy timeout may sleep."""
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await on_writer_thread(conn.execute, "BEGIN IMMEDIATE")

    def _in_transaction(self, fn: Callable[[Queries], T]) -> T:
        """One run of ``fn`` in a transaction of its own (on the writer's thread, in its turn),
        holding this process's writer lock from BEGIN to COMMIT like a group."""
        conn = self._writer_connection()
        self._writer_lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(Queries(conn, SQLITE))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            self._writer_lock.release()
        return result

    def _read_transaction(self, fn: Callable[[Queries], T]) -> T:
        conn = self._reader_connection()
        conn.execute("BEGIN")
        try:
            return fn(Queries(conn, SQLITE))
        finally:
            conn.execute("ROLLBACK")

    def _probe(self) -> None:
        """Open the file (never creating it: a missing volume is not an empty database),
        read its header and write it back, as a commit would. Another process holding the
        write lock answers "locked" at once (busy timeout 0): the file is there."""
        if self.location.target == ":memory:":
            return
        uri = "file:" + urllib.parse.quote(self.location.target) + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def drain(self, timeout: float = 10.0) -> None:
        """SQLite's groups run on the event loop's flusher task: let it finish the groups it has
        (a request cut off by the graceful-shutdown timeout, a background job's unit), so
        ``close`` never closes the writer under it."""
        task = self._flushing.get(asyncio.get_running_loop())
        if task is not None and not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)

    def close(self) -> None:
        super().close()
        self._writer_thread.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            self._writer_conn = None
        self._writer_lock.close()


class _Turn:
    """Whose turn it is to write, within one process: one holder at a time, the others in the
    order they asked. An event loop waits for its turn without blocking its thread; a plain
    thread (``call``) blocks. The holder ends its turn with ``release``, passing it on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._waiting: deque[concurrent.futures.Future[None]] = deque()

    def _ask(self) -> concurrent.futures.Future[None] | None:
        """None when the turn is the caller's now, else a future set when it is."""
        with self._lock:
            if not self._held:
                self._held = True
                return None
            waiter: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._waiting.append(waiter)
            return waiter

    async def take(self) -> None:
        waiter = self._ask()
        if waiter is None:
            return
        try:
            await asyncio.wrap_future(waiter)
        except BaseException:  # cancelled: give the turn back if it came meanwhile
            if not waiter.cancel():
                self.release()
            raise

    def wait(self) -> None:
        waiter = self._ask()
        if waiter is None:
            return
        try:
            waiter.result()
        except BaseException:
            if not waiter.cancel():
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiting:
                waiter = self._waiting.popleft()
                if waiter.set_running_or_notify_cancel():  # not cancelled: its turn now
                    break
            else:
                self._held = False
                return
        waiter.set_result(None)


class _WriterLock:
    """Whose turn it is to write a SQLite file, among Goalline's processes (``--workers``).

    A process holds an ``flock`` on ``<database>-lock`` from ``BEGIN IMMEDIATE`` to ``COMMIT``
    of every write (a group, a ``large`` unit, a ``call``: the CLI's too). Without it, a
    process that finds the file's write lock taken waits in SQLite's busy handler, which polls
    with sleeps of up to 100 ms: with two workers, ``json-1goal`` had a p99 of 530 ms. A
    process waiting on the flock is woken by the kernel as soon as the other one commits.
    Other programs writing the file do not take it; Goalline waits for them through the busy
    timeout.
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._fd: int | None = None

    def _file(self) -> int | None:
        if self._fd is None and self._path is not None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def try_acquire(self) -> bool:
        fd = self._file()
        if fd is None:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self) -> None:
        fd = self._file()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PostgresStore(Store):
    """PostgreSQL: a pool of ``pg_pool_size`` connections, ``pg_writers`` writer threads.

    No connection takes longer than ``pg_connect_timeout`` to open, and no thread waits longer
    for one. When the breaker opens, the pool is closed: threads still waiting for a connection
    hear at once (PoolClosed, a 503), and the pool stops retrying in the background. When the
    probe gets through again, a new pool takes its place (the old one's reconnection back-off
    may by then be many seconds long)."""

    def __init__(self, location: Location, settings: Settings) -> None:
        from goalline.storage.dialect import POSTGRES

        self.dialect = POSTGRES
        self._pool_size = max(2, settings.pg_pool_size)
        writers = min(max(1, settings.pg_writers), self._pool_size - 1)  # one or more read
        readers = self._pool_size - writers
        self._connect_timeout = max(1, settings.pg_connect_timeout)
        self._pool = self._new_pool(location)
        super().__init__(location, settings, writers=writers, readers=readers)
        for thread in self._writers:
            thread.start()

    def _new_pool(self, location: Location) -> ConnectionPool[Any]:
        import psycopg
        from psycopg_pool import ConnectionPool

        return ConnectionPool(
            location.target,
            kwargs={"cursor_factory": psycopg.RawCursor, "connect_timeout": self._connect_timeout},
            configure=_configure,
            min_size=1,
            max_size=self._pool_size,
            timeout=self._connect_timeout,
            open=True,
            name="goalline",
        )

    def _probe(self) -> None:
        import psycopg

        with psycopg.connect(
            self.location.target, connect_timeout=self._connect_timeout, autocommit=True
        ) as conn:
            conn.execute("SELECT 1")

    def _on_down(self) -> None:
        self._pool.close(timeout=1)

    def _on_up(self) -> None:
        pool = self._new_pool(self.location)
        with self._breaker_lock:
            if not self._closed:
                pool, self._pool = self._pool, pool
        pool.close(timeout=1)  # the old pool (closed already), or the new one: store closed

    def _in_transaction(self, fn: Callable[[Queries], T]) -> T:
        with self._pool.connection() as conn, conn.transaction():
            return fn(Queries(conn, self.dialect))

    def _read_transaction(self, fn: Callable[[Queries], T]) -> T:
        with self._pool.connection() as conn, conn.transaction():
            return fn(Queries(conn, self.dialect))

    def _is_conflict(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(
            exc, (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
        )

    def close(self) -> None:
        super().close()
        self._pool.close()


#: Prepared statements kept per PostgreSQL connection (psycopg's default is 100). A group's
#: multi-row INSERT has one text per row count, tens of KiB each, and psycopg keeps every
#: prepared text: at 100, private memory grew 18 MiB more through json-full. Not preparing at
#: all cost goals-100 a tenth of its rate (PostgreSQL then plans each 100-row INSERT).
PG_PREPARED_MAX = 16


def _configure(conn: Any) -> None:
    conn.prepared_max = PG_PREPARED_MAX


def open_store(database: str, settings: Settings | None = None) -> Store:
    """A Store for a ``--database`` value (not yet migrated), set up by ``settings`` (its
    write_batch, write_queue, sqlite_synchronous, pg_pool_size and pg_writers; None: the
    defaults)."""
    settings = Settings() if settings is None else settings
    location = locate(database)
    if location.dialect is SQLITE:
        return SQLiteStore(location, settings)
    return PostgresStore(location, settings)
