"""Shared fixtures: a real store on SQLite and PostgreSQL, the app, seeded admin objects, and a
real ``goalline serve`` process.

PostgreSQL tests read ``GOALLINE_TEST_POSTGRES_URL``; when it is unset or unreachable they skip
with the reason, unless ``GOALLINE_TEST_REQUIRE_SERVICES=1`` (CI) turns that skip into a failure.
Each PostgreSQL test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from goalline.app import App, build
from goalline.pipeline import admin
from goalline.settings import Settings
from goalline.storage.store import Store, open_store

PG_ENV = "GOALLINE_TEST_POSTGRES_URL"
REQUIRE_ENV = "GOALLINE_TEST_REQUIRE_SERVICES"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "contract" / "examples"


def example(name: str) -> bytes:
    """A request example of the seed page, kept verbatim in tests/contract/examples/."""
    return (EXAMPLES / name).read_bytes()


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 forbids skipping)")
    pytest.skip(reason)


def _postgres_base() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        _unavailable(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    assert url is not None
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL at {PG_ENV} is unreachable: {exc}")
    return url


#: Overrides the ``kind`` fixture (both stores) for a test that only PostgreSQL can run.
POSTGRES_ONLY = pytest.mark.parametrize(
    "kind", [pytest.param("postgres", marks=pytest.mark.postgres)]
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A migrated store, on SQLite and on PostgreSQL."""
    url = str(tmp_path / "goalline.db") if kind == "sqlite" else _pg_schema_url(request)
    s = open_store(url)
    s.migrate()
    yield s
    s.close()


def _pg_schema_url(request: pytest.FixtureRequest) -> str:
    base = _postgres_base()
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    request.addfinalizer(drop)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Seeded:
    """Admin objects most API tests need: database 1 (policy record) with custom fields,
    database 2, pixel 1 bound to db 1, pixel 2 unbound, pixel 3 bound to db 2, a token for
    every database and one scoped to database 1."""

    token: str
    scoped_token: str
    db_id: int = 1
    other_db_id: int = 2
    pixel_id: int = 1


@pytest.fixture
def seeded(store: Store) -> Seeded:
    def seed(tx: Any) -> Seeded:
        t = now()
        admin.create_database(tx, name="Shop", db_id=1, now=t)
        admin.create_database(tx, name="Other", db_id=2, now=t)
        for name, type_ in (
            ("CRM_ID", "string"),
            ("age", "int"),
            ("score", "float"),
            ("vip", "bool"),
            ("birthday", "date"),
            ("interests", "tags"),
        ):
            admin.add_field(tx, db_id=1, name=name, type_=type_, now=t)
        admin.create_pixel(tx, name="Site", db_id=1, pixel_id=1, now=t)
        admin.create_pixel(tx, name="Anywhere", pixel_id=2, now=t)
        admin.create_pixel(tx, name="Other site", db_id=2, pixel_id=3, now=t)
        every = admin.create_token(tx, name="all", value="token-all-databases", now=t)
        scoped = admin.create_token(tx, name="shop", db_ids=(1,), value="token-db-1", now=t)
        return Seeded(token=every.token, scoped_token=scoped.token)

    return store.call(seed)


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def app(store: Store, settings: Settings) -> App:
    return build(settings.replace(database=store.location.target), store)


@pytest.fixture
def client(app: App, seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(app.asgi, raise_server_exceptions=False) as c:
        yield c


def register(client: TestClient, seeded: Seeded, **fields: Any) -> httpx.Response:
    """POST goals/register as JSON with the seeded token, db 1 and pixel 1 unless overridden."""
    body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, **fields}
    body = {k: v for k, v in body.items() if v is not ...}
    return client.post("/api/v1.1/goals/register", json=body)


def events(
    store: Store, where: str = "1 = 1", params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:

    return store.call(lambda tx: tx.events(where, params), write=False)


# -- a real server process ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def goalline(*args: str, database: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the ``goalline`` CLI as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "goalline", *args, "--database", database],
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    database: str

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(database: str, *extra: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "goalline",
            "serve",
            "--database",
            database,
            "--port",
            str(port),
            "--log-level",
            "warning",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"goalline serve exited with {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return Server(url, process, database)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("goalline serve did not become ready in 20 s")


@pytest.fixture
def server_database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database for a real server: a SQLite file, or a PostgreSQL schema."""
    if kind == "sqlite":
        return str(tmp_path / "served.db")
    return _pg_schema_url(request)


def send_raw(client: Any, method: str, body: bytes, content_type: str = "application/json") -> Any:
    """POST raw ``body`` to API ``method`` as a client would; the reply (asked for as JSON)
    with its HTTP status under ``status``, which must mirror the envelope's error code."""
    r = client.post(
        "/api/v1.1/" + method,
        content=body,
        headers={"content-type": content_type, "accept": "application/json"},
    )
    reply: dict[str, Any] = r.json()
    assert r.status_code == reply["error"] or reply["error"] == 0, r.text
    reply["status"] = r.status_code
    return reply
