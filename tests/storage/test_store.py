"""The Store itself: group commit, per-unit rollback, the bounded write queue, retries."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any

import pytest

from goalline.errors import Unavailable
from goalline.settings import Settings
from goalline.storage.store import Batched, Retry, RetryPolicy, Store, Tx, open_store

from conftest import POSTGRES_ONLY

NOW = "2026-01-01T00:00:00.000000Z"


def add_database(db_id: int) -> Any:
    def unit(tx: Tx) -> int:
        tx.execute(
            "INSERT INTO databases (id, name, unknown_profile, created_at) VALUES (?, ?, ?, ?)",
            (db_id, f"db{db_id}", "record", NOW),
        )
        return db_id

    return unit


def ids(store: Store) -> list[int]:
    return [r[0] for r in store.call(lambda tx: tx.all("SELECT id FROM databases ORDER BY id"),
                                     write=False)]  # fmt: skip


def test_a_failing_unit_rolls_back_alone(store: Store) -> None:
    def failing(tx: Tx) -> None:
        add_database(50)(tx)
        raise ValueError("no")

    async def main() -> list[Any]:
        units = [add_database(i) for i in range(1, 40)]
        units[10] = failing
        return await asyncio.gather(*(store.write(u) for u in units), return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[10], ValueError)
    assert [r for i, r in enumerate(results) if i != 10] == [i for i in range(1, 40) if i != 11]
    assert ids(store) == [i for i in range(1, 40) if i != 11]


def test_concurrent_writes_share_commits(store: Store) -> None:
    transactions = []

    def unit(i: int) -> Any:
        def fn(tx: Tx) -> int:
            transactions.append(id(tx))
            return add_database(i)(tx)

        return fn

    async def main() -> list[int]:
        return await asyncio.gather(*(store.write(unit(i)) for i in range(1, 201)))

    assert asyncio.run(main()) == list(range(1, 201))
    assert len(ids(store)) == 200
    assert len(set(transactions)) < 200  # several units went into one transaction


def test_a_failing_batch_is_undone_and_its_group_runs_unit_by_unit(store: Store) -> None:
    """A batch runs without a savepoint: when it raises, the whole group's transaction is
    rolled back and run again with every unit on its own. Nothing the batch wrote survives,
    and the plain units of the group are stored exactly once."""
    batch_calls: list[int] = []

    def write_all_then_fail(tx: Tx, items: list[int]) -> list[Any]:
        batch_calls.append(len(items))
        for db_id in items:
            add_database(db_id)(tx)
        add_database(1000)(tx)  # a row only the batch writes: must not survive
        raise RuntimeError("the batch lost a race")

    async def main() -> list[int]:
        writes = []
        for i in range(1, 41):
            if i % 2:
                writes.append(store.write(add_database(i), batch=Batched(write_all_then_fail, i)))
            else:
                writes.append(store.write(add_database(i)))
        return await asyncio.gather(*writes)

    assert asyncio.run(main()) == list(range(1, 41))
    assert batch_calls and max(batch_calls) > 1  # the batch path was taken, and failed
    assert ids(store) == list(range(1, 41))  # each unit once; the batch's own row is gone


def test_retry_reruns_only_that_unit(store: Store) -> None:
    attempts = []

    def flaky(tx: Tx) -> int:
        attempts.append(1)
        add_database(7)(tx)
        if len(attempts) < 3:
            raise Retry()
        return 7

    assert store.call(flaky) == 7
    assert len(attempts) == 3 and ids(store) == [7]


def test_full_write_queue_answers_503(kind: str, store: Store, tmp_path: Any) -> None:
    store.close()
    if kind == "sqlite":
        # SQLite units wait in the event loop's pending list until the flusher runs.
        store = open_store(str(tmp_path / "q.db"), settings=Settings(write_queue=2))
        store.migrate()

        async def main() -> list[Any]:
            writes = (store.write(add_database(i)) for i in (1, 2, 3))
            return await asyncio.gather(*writes, return_exceptions=True)

        results = asyncio.run(main())
        assert results[:2] == [1, 2]
        refused = results[2]
    else:
        # PostgreSQL units wait in a queue for a writer thread; hold every writer busy.
        store = open_store(store.location.target, settings=Settings(pg_writers=1, write_queue=1))
        gate, started = threading.Event(), threading.Event()

        def blocking(tx: Tx) -> None:
            started.set()
            gate.wait(10)

        results: list[Any] = []
        busy = threading.Thread(target=lambda: results.append(store.call(blocking)))
        busy.start()
        started.wait(10)
        queued = threading.Thread(target=lambda: results.append(store.call(add_database(1))))
        queued.start()
        while store._queue.qsize() < 1:
            pass
        with pytest.raises(Unavailable) as raised:
            store.call(add_database(2))
        refused = raised.value
        gate.set()
        busy.join()
        queued.join()
    assert isinstance(refused, Unavailable) and refused.retry_after == 1
    assert refused.text == "storage: write queue full; nothing was recorded"
    assert ids(store) == ([1, 2] if kind == "sqlite" else [1])
    store.close()


def test_sqlite_write_waits_for_another_process_lock_without_blocking_the_loop(
    tmp_path: Any,
) -> None:
    """The write lock is taken on the event loop's thread when free; when another process
    holds it, the group waits for it on a thread while the loop goes on serving."""
    import sqlite3

    store = open_store(str(tmp_path / "locked.db"))
    store.migrate()
    other = sqlite3.connect(str(tmp_path / "locked.db"), isolation_level=None)

    async def main() -> int:
        assert await store.write(add_database(1)) == 1  # the store's connection is open
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(store.write(add_database(2)))
        ticks = 0
        for _ in range(30):  # the loop keeps running while the write waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done()
        other.execute("COMMIT")
        result = await write
        assert ticks == 30
        return result

    try:
        assert asyncio.run(main()) == 2
        assert ids(store) == [1, 2]
    finally:
        other.close()
        store.close()


def test_sqlite_workers_take_turns_through_the_writer_lock(tmp_path: Any) -> None:
    """Two stores on one file (as two ``--workers`` processes: each opens its own lock file
    description) write in turns: while one holds ``<database>-lock``, the other's group waits
    for it on a thread, its loop still serving, and writes as soon as the first lets go."""
    path = str(tmp_path / "shared.db")
    first, second = open_store(path), open_store(path)
    first.migrate()

    async def main() -> None:
        assert await second.write(add_database(1)) == 1
        assert (tmp_path / "shared.db-lock").exists()
        first._writer_lock.acquire()  # type: ignore[attr-defined]  # first is mid-transaction
        write = asyncio.ensure_future(second.write(add_database(2)))
        for _ in range(20):
            await asyncio.sleep(0.01)  # the loop runs on while the write waits its turn
        assert not write.done()
        first._writer_lock.release()  # type: ignore[attr-defined]
        assert await asyncio.wait_for(write, 5) == 2

    async def both(store: Store, start: int) -> list[int]:
        return await asyncio.gather(*(store.write(add_database(start + i)) for i in range(50)))

    def worker(store: Store, start: int, out: list[Any]) -> None:
        out.extend(asyncio.run(both(store, start)))

    try:
        asyncio.run(main())
        results: list[Any] = []
        threads = [
            threading.Thread(target=worker, args=(store, start, results))
            for store, start in ((first, 100), (second, 200))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results) == [*range(100, 150), *range(200, 250)]
        assert ids(first) == [1, 2, *range(100, 150), *range(200, 250)]
    finally:
        first.close()
        second.close()


def test_sqlite_writes_fail_cleanly_when_the_database_cannot_be_opened(tmp_path: Any) -> None:
    store = open_store(str(tmp_path / "no-such-folder" / "goalline.db"))

    async def main() -> list[Any]:
        writes = (store.write(add_database(i)) for i in (1, 2))
        return await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 10)

    try:
        results = asyncio.run(main())
    finally:
        store.close()
    assert all(isinstance(r, Unavailable) for r in results)
    assert results[0].text == "storage unavailable; nothing was recorded"


def slow_write(started: threading.Event, seconds: float = 1.5) -> Any:
    """A unit that holds the writer ``seconds`` inside its transaction."""

    def unit(tx: Tx) -> int:
        add_database(1)(tx)
        started.set()
        time.sleep(seconds)
        return 1

    return unit


@pytest.mark.parametrize("how", ["large", "call"])
def test_sqlite_reads_do_not_wait_behind_a_long_write(tmp_path: Any, how: str) -> None:
    """While a 1.5 s write holds the writer (a ``large`` unit, or a ``call`` from another
    thread), with a group and another large unit queued behind it, a read answers at once:
    readers have threads and connections of their own, and nothing of a write waits on them."""
    store = open_store(str(tmp_path / "r.db"))
    store.migrate()

    async def main() -> float:
        started = threading.Event()
        if how == "large":
            slow = asyncio.ensure_future(store.write(slow_write(started), large=True))
        else:
            slow = asyncio.ensure_future(asyncio.to_thread(store.call, slow_write(started)))
        assert await asyncio.to_thread(started.wait, 10)
        behind = [
            asyncio.ensure_future(store.write(add_database(2))),
            asyncio.ensure_future(store.write(add_database(3), large=True)),
        ]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in behind)  # one writer at a time: they wait for it
        began = time.perf_counter()
        assert await store.read(lambda tx: tx.scalar("SELECT 1")) == 1
        waited = time.perf_counter() - began
        assert await slow == 1
        assert await asyncio.gather(*behind) == [2, 3]
        return waited

    try:
        waited = asyncio.run(main())
        assert ids(store) == [1, 2, 3]
    finally:
        store.close()
    assert waited < 0.05


def flaky(fails: int, db_id: int = 7) -> tuple[Any, list[int]]:
    """A unit that writes, then asks to be retried ``fails`` times; and its list of runs."""
    runs: list[int] = []

    def unit(tx: Tx) -> int:
        runs.append(1)
        add_database(db_id)(tx)
        if len(runs) <= fails:
            raise Retry()
        return db_id

    return unit, runs


#: Every way a unit of work reaches a store; each has run its own retry loop.
WAYS = ["call", "write", "group", "large"]


def run_way(store: Store, way: str, unit: Any, others: int = 100) -> Any:
    """Run ``unit`` on ``store`` one way; return its result or the exception it ended with.
    "group": among 20 other units written at once, databases ``others`` and up (they must
    all be stored)."""
    if way == "call":
        try:
            return store.call(unit)
        except Exception as exc:
            return exc

    async def main() -> Any:
        if way == "group":
            rest = [store.write(add_database(i)) for i in range(others, others + 20)]
            results = await asyncio.gather(store.write(unit), *rest, return_exceptions=True)
            assert results[1:] == list(range(others, others + 20))
            return results[0]
        try:
            return await store.write(unit, large=way == "large")
        except Exception as exc:
            return exc

    return asyncio.run(main())


def stored(store: Store, way: str) -> list[int]:
    return [i for i in ids(store) if way != "group" or i < 100]


@pytest.mark.parametrize("way", WAYS)
def test_a_unit_retried_twice_then_done_is_stored_once(store: Store, way: str) -> None:
    unit, runs = flaky(2)
    assert run_way(store, way, unit) == 7
    assert len(runs) == 3 and stored(store, way) == [7]


@pytest.mark.parametrize("way", WAYS)
def test_a_unit_that_always_asks_for_a_retry_ends_in_503(store: Store, way: str) -> None:
    unit, runs = flaky(10**6)
    refused = run_way(store, way, unit)
    assert isinstance(refused, Unavailable) and refused.retry_after == 1
    assert refused.text == "storage busy: too many conflicting writes; retry"
    assert len(runs) == 3 and stored(store, way) == []


@pytest.mark.parametrize("way", WAYS)
def test_every_way_runs_under_the_stores_retry_policy(store: Store, way: str) -> None:
    store.retry = RetryPolicy(attempts=5)
    unit, runs = flaky(4)
    assert run_way(store, way, unit) == 7
    assert len(runs) == 5
    store.retry = RetryPolicy(attempts=1)
    unit, runs = flaky(1, db_id=8)
    assert isinstance(run_way(store, way, unit, others=200), Unavailable)
    assert len(runs) == 1 and stored(store, way) == [7]


@pytest.mark.parametrize("way", WAYS)
def test_a_driver_unavailable_error_becomes_503(kind: str, store: Store, way: str) -> None:
    """A unit that meets a broken connection (here raised by hand) gets "storage unavailable";
    in a group, so does every other unit of its transaction (nothing of it is stored)."""
    if kind == "sqlite":
        broken: Exception = sqlite3.OperationalError("disk I/O error")
    else:
        import psycopg

        broken = psycopg.OperationalError("server closed the connection unexpectedly")

    def unit(tx: Tx) -> None:
        add_database(9)(tx)
        raise broken

    if way == "group":

        async def main() -> list[Any]:
            writes = [store.write(unit), *(store.write(add_database(i)) for i in (100, 101))]
            return await asyncio.gather(*writes, return_exceptions=True)

        results = asyncio.run(main())
    else:
        results = [run_way(store, way, unit)]
    refused = results[0]
    assert isinstance(refused, Unavailable) and refused.retry_after == 1
    assert refused.text == "storage unavailable; nothing was recorded"
    assert refused.__cause__ is broken
    # The other units shared its transaction, or (on PostgreSQL's writer threads) had their own.
    assert all(r is refused or r in ids(store) for r in results[1:])
    assert 9 not in ids(store)
    if kind == "sqlite":  # one group
        assert results[1:] == [refused] * (len(results) - 1) and ids(store) == []


@POSTGRES_ONLY
def test_postgres_conflicts_are_retried_alone(kind: str, store: Store) -> None:
    """A serialization failure or a deadlock in a unit that runs alone runs it again."""
    import psycopg

    runs: list[int] = []

    def unit(tx: Tx) -> int:
        runs.append(1)
        add_database(7)(tx)
        if len(runs) == 1:
            raise psycopg.errors.SerializationFailure("could not serialize access")
        if len(runs) == 2:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return 7

    assert store.call(unit) == 7
    assert len(runs) == 3 and ids(store) == [7]


def test_sqlite_writes_cancelled_while_waiting_give_the_writer_back(tmp_path: Any) -> None:
    """A large write cancelled while it waits for its turn, and a loop that ends while its
    group waits for another process's lock, leave the writer to the next write."""
    path = str(tmp_path / "c.db")
    store = open_store(path)
    store.migrate()

    async def cancelled_in_line() -> None:
        started = threading.Event()
        slow = asyncio.ensure_future(asyncio.to_thread(store.call, slow_write(started, 0.3)))
        assert await asyncio.to_thread(started.wait, 10)
        waiting = asyncio.ensure_future(store.write(add_database(2), large=True))
        await asyncio.sleep(0.05)
        waiting.cancel()
        assert await slow == 1
        assert await asyncio.wait_for(store.write(add_database(3), large=True), 5) == 3

    async def ended_while_locked_out() -> None:
        write = asyncio.ensure_future(store.write(add_database(4)))
        await asyncio.sleep(0.1)
        assert not write.done()  # the group waits for the lock; asyncio.run cancels it

    other = open_store(path)  # another process, as far as the lock file goes
    try:
        asyncio.run(cancelled_in_line())
        other._writer_lock.acquire()  # type: ignore[attr-defined]
        asyncio.run(ended_while_locked_out())
        threading.Timer(0.2, other._writer_lock.release).start()  # type: ignore[attr-defined]
        assert store.call(add_database(5)) == 5  # once the other process lets go
        assert ids(store) == [1, 3, 5]
    finally:
        other.close()
        store.close()


def test_sqlite_shutdown_commits_the_units_still_queued(tmp_path: Any) -> None:
    """The process lifecycle (App.running) closes the store it opened on the way out: a write
    still queued in a SQLite group at that moment is committed first, not cut off by the close
    (PostgreSQL's writer threads finish their queue in close() itself)."""
    from goalline.app import build

    database = str(tmp_path / "shutdown.db")
    app = build(Settings(database=database))

    async def main() -> int:
        async with app.running():
            write = asyncio.ensure_future(
                app.deps.store.write(
                    lambda uow: uow.create_database(
                        name="late", policy="record", db_id=5, now="2026-01-01T00:00:00Z"
                    )
                )
            )
            await asyncio.sleep(0)  # queued: the loop's flusher has the group, not done yet
        return await write

    assert asyncio.run(main()) == 5
    store = open_store(database)
    try:
        assert store.call(lambda uow: uow.get_database(5), write=False) is not None
    finally:
        store.close()
