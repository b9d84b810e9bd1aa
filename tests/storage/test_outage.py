"""Storage outages made real (issue 17, item 9): once storage is known unreachable, every
request gets 503 + Retry-After at once until a probe finds it back; /readyz answers within a
second in every state; /metrics says whether storage is down.

PostgreSQL: the store talks to the shared server through a TCP proxy on 127.0.0.1 that the test
cuts (every connection reset, new ones refused) and heals, so only this test's store loses its
storage. SQLite: the server starts while its database's directory (its volume) is gone, and
the directory comes back. Each test prints what it measured (``pytest -s`` shows it).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from goalline.app import build
from goalline.errors import Conflict
from goalline.pipeline import admin
from goalline.settings import Settings
from goalline.storage import store as store_module
from goalline.storage.store import Store, open_store

from conftest import POSTGRES_ONLY, Seeded, events, now, register

#: 503s answered while storage is known down: each within FAST seconds.
REFUSED = 50
FAST = 0.100
UNAVAILABLE = "storage unavailable; nothing was recorded"


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of ``target`` that a test cuts, stalls and heals.

    ``cut``: every connection through it is reset and the port refuses new ones, as when the
    database host goes away. ``stall``: connections stay open but nothing is forwarded, as on
    a hung network. ``heal``: the same port forwards again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._flowing = threading.Event()
        self._listener: socket.socket | None = None
        self.port = 0
        self.heal()

    def heal(self) -> None:
        self._flowing.set()
        if self._listener is None:
            listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR
            listener.settimeout(0.1)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._start(self._accept, listener)

    def stall(self) -> None:
        self._flowing.clear()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _reset(sock)
        self._flowing.set()  # let stalled pumps see their sockets are gone
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(5)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                _reset(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while not self._flowing.wait(0.1):
                    pass
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Drop a connection at once (SO_LINGER 0: a reset), waking the thread reading it."""
    for step in (
        lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0"),
        lambda: sock.shutdown(socket.SHUT_RDWR),
    ):
        with contextlib.suppress(OSError):
            step()
    sock.close()


def seed(store: Store) -> Seeded:
    """Database 1, pixel 1 in it and a token for every database."""

    def unit(uow: Any) -> Seeded:
        t = now()
        admin.create_database(uow, name="Shop", db_id=1, now=t)
        admin.create_pixel(uow, name="Site", db_id=1, pixel_id=1, now=t)
        token = admin.create_token(uow, name="all", value="token-all-databases", now=t)
        return Seeded(token=token.token, scoped_token=token.token)

    return store.call(unit)


def timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.perf_counter()
    reply = send()
    return reply, time.perf_counter() - began


def breaker(client: TestClient) -> float:
    """The ``goalline_storage_unavailable`` gauge of /metrics."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("goalline_storage_unavailable "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no goalline_storage_unavailable gauge")


def wait_for(check: Callable[[], bool], seconds: float) -> float:
    """Poll ``check`` every 20 ms for at most ``seconds``; how long it took to hold."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - began


def goal(client: TestClient, seeded: Seeded, n: int) -> httpx.Response:
    return register(client, seeded, email=f"user{n}@example.com", goal="purchase", value=n)


def assert_down_and_fast(client: TestClient, seeded: Seeded, label: str) -> None:
    """Storage is known down: many requests, each a 503 with Retry-After within FAST seconds
    (checked as they come: before the breaker, each took the pool's 10 s); /readyz a 503 with
    the reason within a second; the gauge at 1."""
    took = []
    for n in range(REFUSED):
        reply, seconds = timed(functools.partial(goal, client, seeded, 1000 + n))
        assert reply.status_code == 503, reply.text
        assert reply.headers["retry-after"] == "1"
        assert reply.json() == {"error": 503, "error_text": UNAVAILABLE}
        assert seconds <= FAST, f"refusal {n} took {seconds:.3f} s"
        took.append(seconds)
    ready, ready_seconds = timed(lambda: client.get("/readyz"))
    print(
        f"\n{label}: {REFUSED} refusals while down: median {sorted(took)[REFUSED // 2] * 1000:.1f}"
        f" ms, max {max(took) * 1000:.1f} ms; /readyz {ready.status_code} in"
        f" {ready_seconds * 1000:.1f} ms: {ready.json()['reason']!r}"
    )
    assert max(took) <= FAST
    assert ready.status_code == 503 and ready_seconds <= 1.0
    assert ready.headers["retry-after"] == "1" and ready.json()["reason"]
    assert breaker(client) == 1


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy(("127.0.0.1", 5432))
    yield p
    p.cut()


def through(proxy: Proxy, url: str) -> str:
    """``url`` with its host and port replaced by the proxy's (and the proxy aimed at them)."""
    parts = urlsplit(url)
    proxy.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
    netloc = parts.netloc.rsplit("@", 1)
    netloc[-1] = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc="@".join(netloc)))


@POSTGRES_ONLY
def test_postgres_outage_is_503_at_once_until_storage_is_back(
    kind: str, server_database: str, proxy: Proxy
) -> None:
    """Before: every request during the outage waited for the pool's timeout (10 s) and
    /readyz for 5 s. Now the requests that meet the cut may wait up to pg_connect_timeout;
    once the probe has failed, each gets 503 at once; after healing, requests succeed again
    without a restart, and every acknowledged event is there."""
    url = through(proxy, server_database)
    settings = Settings(database=url)
    store = open_store(url, settings)
    store.migrate()
    seeded = seed(store)
    try:
        with TestClient(build(settings, store).asgi, raise_server_exceptions=False) as client:
            acknowledged = [goal(client, seeded, n) for n in range(5)]
            assert [r.json()["error"] for r in acknowledged] == [0] * 5

            proxy.cut()
            first, first_seconds = timed(lambda: goal(client, seeded, 100))
            assert first.status_code == 503, first.text
            assert first.headers["retry-after"] == "1"
            assert first_seconds <= 3.5  # pg_connect_timeout (default 3 s), and some slack
            known = wait_for(lambda: client.get("/readyz").status_code == 503, 10)
            print(f"\npostgres: first request after the cut: 503 in {first_seconds * 1000:.1f}"
                  f" ms; /readyz 503 {known * 1000:.0f} ms later")  # fmt: skip
            assert_down_and_fast(client, seeded, "postgres")

            proxy.heal()
            healed = wait_for(lambda: goal(client, seeded, 200).status_code == 200, 5)
            print(f"postgres: a request succeeded {healed * 1000:.0f} ms after healing")
            assert client.get("/readyz").status_code == 200
            assert breaker(client) == 0
            assert goal(client, seeded, 201).json()["error"] == 0
        ids = {i for r in acknowledged for i in r.json()["event_ids"]}
        assert ids <= {e["id"] for e in events(store)}
        assert len(events(store)) == 7  # the five, 200 and 201: nothing refused was stored
    finally:
        store.close()


@POSTGRES_ONLY
def test_postgres_readyz_answers_within_a_second_when_storage_hangs(
    kind: str, server_database: str, proxy: Proxy
) -> None:
    """A hung network (connections open, nothing answered) is not yet known as an outage:
    /readyz waits for the ping at most 0.9 s, then answers 503 (before: 5 s)."""
    url = through(proxy, server_database)
    settings = Settings(database=url)
    store = open_store(url, settings)
    store.migrate()
    try:
        with TestClient(build(settings, store).asgi, raise_server_exceptions=False) as client:
            assert client.get("/readyz").status_code == 200
            proxy.stall()
            ready, seconds = timed(lambda: client.get("/readyz"))
            print(f"\n/readyz on a hung network: {ready.status_code} in {seconds * 1000:.0f} ms")
            assert ready.status_code == 503 and seconds <= 1.0
            assert ready.json()["reason"] == "storage did not answer within 0.9 s"
            proxy.heal()
            wait_for(lambda: client.get("/readyz").status_code == 200, 5)
    finally:
        store.close()


def test_sqlite_missing_volume_is_503_at_once_until_it_is_back(tmp_path: Path) -> None:
    """The server starts while the database's directory is gone (a volume not mounted yet):
    requests get 503 at once, /readyz says why, and once the directory is back the server
    serves again, without a restart, with every event acknowledged before."""
    volume, away = tmp_path / "volume", tmp_path / "away"
    volume.mkdir()
    path = str(volume / "goalline.db")
    settings = Settings(database=path)
    before = open_store(path, settings)
    before.migrate()
    seeded = seed(before)
    with TestClient(build(settings, before).asgi, raise_server_exceptions=False) as client:
        acknowledged = [goal(client, seeded, n) for n in range(5)]
    before.close()
    assert [r.json()["error"] for r in acknowledged] == [0] * 5

    volume.rename(away)
    store = open_store(path, settings)
    try:
        with TestClient(build(settings, store).asgi, raise_server_exceptions=False) as client:
            first, first_seconds = timed(lambda: goal(client, seeded, 100))
            assert first.status_code == 503 and first.headers["retry-after"] == "1"
            assert first.json()["error_text"] == UNAVAILABLE
            known = wait_for(lambda: client.get("/readyz").status_code == 503, 10)
            print(f"\nsqlite: first request 503 in {first_seconds * 1000:.1f} ms; /readyz "
                  f"503 {known * 1000:.0f} ms later")  # fmt: skip
            assert_down_and_fast(client, seeded, "sqlite")
            assert "unable to open database file" in client.get("/readyz").json()["reason"]

            away.rename(volume)
            healed = wait_for(lambda: goal(client, seeded, 200).status_code == 200, 5)
            print(f"sqlite: a request succeeded {healed * 1000:.0f} ms after the volume came back")
            assert client.get("/readyz").status_code == 200
            assert breaker(client) == 0
        ids = {i for r in acknowledged for i in r.json()["event_ids"]}
        assert ids <= {e["id"] for e in events(store)}
        assert len(events(store)) == 6
    finally:
        store.close()


def test_sqlite_a_lock_held_by_another_process_is_no_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program holding the write lock past the busy timeout gets that request a 503,
    but the file is there: nothing opens the breaker and the next request succeeds at once."""
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    path = str(tmp_path / "goalline.db")
    settings = Settings(database=path)
    store = open_store(path, settings)
    store.migrate()
    seeded = seed(store)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        with TestClient(build(settings, store).asgi, raise_server_exceptions=False) as client:
            assert goal(client, seeded, 1).json()["error"] == 0
            blocker.execute("BEGIN EXCLUSIVE")
            assert goal(client, seeded, 2).status_code == 503
            assert breaker(client) == 0
            blocker.execute("ROLLBACK")
            assert goal(client, seeded, 3).json()["error"] == 0
            assert breaker(client) == 0 and not store.unavailable
    finally:
        blocker.close()
        store.close()


def test_units_failing_for_their_own_reasons_open_nothing(store: Store) -> None:
    """A unit's own error (a bug, a 409) is its outcome: no probe, no breaker."""

    def bug(uow: Any) -> None:
        raise ZeroDivisionError("a bug")

    def conflict(uow: Any) -> None:
        raise Conflict("external_event_id: used with another payload")

    for unit in (bug, conflict):
        with pytest.raises((ZeroDivisionError, Conflict)):
            store.call(unit)
    assert store._probe_thread is None  # type: ignore[attr-defined]
    assert not store.unavailable and store.call(lambda uow: uow.ping()) is None


def test_a_lost_connection_on_a_healthy_store_keeps_it_serving(kind: str, store: Store) -> None:
    """A driver error that may mean an outage, on storage that is there: the probe finds it
    and the breaker stays closed; the next write succeeds at once."""
    if kind == "sqlite":
        broken: Exception = sqlite3.OperationalError("disk I/O error")
    else:
        import psycopg

        broken = psycopg.OperationalError("server closed the connection unexpectedly")

    def unit(uow: Any) -> None:
        raise broken

    with pytest.raises(Exception, match="storage unavailable"):
        store.call(unit)
    probe = store._probe_thread  # type: ignore[attr-defined]
    assert probe is not None
    probe.join(5)
    assert not store.unavailable
    assert store.call(lambda uow: uow.ping()) is None


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.OperationalError("database table is locked"), False),
        (sqlite3.OperationalError("disk I/O error"), True),
        (sqlite3.OperationalError("database or disk is full"), True),
        (sqlite3.OperationalError("unable to open database file"), True),
        (sqlite3.OperationalError("attempt to write a readonly database"), True),
        (sqlite3.OperationalError("no such table: x"), False),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_sqlite_errors_may_mean_an_outage(error: Exception, outage: bool) -> None:
    from goalline.storage.dialect import is_outage

    assert is_outage(error) is outage


def test_which_postgres_errors_may_mean_an_outage() -> None:
    import psycopg
    import psycopg_pool
    from psycopg import errors

    from goalline.storage.dialect import is_outage

    assert is_outage(psycopg.OperationalError("connection refused"))  # the client's own
    assert is_outage(psycopg_pool.PoolTimeout("couldn't get a connection after 3.00 sec"))
    assert is_outage(errors.AdminShutdown("terminating connection"))
    assert is_outage(errors.ConnectionFailure("connection failure"))
    assert not is_outage(psycopg_pool.PoolClosed("the pool 'goalline' is already closed"))
    assert not is_outage(errors.SerializationFailure("could not serialize access"))
    assert not is_outage(errors.DeadlockDetected("deadlock detected"))
    assert not is_outage(errors.QueryCanceled("canceling statement"))
    assert not is_outage(errors.TooManyConnections("sorry, too many clients already"))
    assert not is_outage(errors.UniqueViolation("duplicate key"))
