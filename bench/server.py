"""The system under test: a fresh store, set up with the CLI, served by ``goalline serve``."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

from bench.system import BenchError, say
from goalline.storage.store import Store, open_store

DB_ID = 1
PIXEL_ID = 1
CUSTOM_FIELD = "CRM_ID"


def goalline_command() -> list[str]:
    """The ``goalline`` console script next to this Python (as a user runs it)."""
    script = Path(sys.executable).parent / "goalline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "goalline"]


class BenchStore:
    """A fresh, empty store: a SQLite file in a temporary folder, or a new PostgreSQL schema
    (created and dropped with psycopg) inside the database that ``--database`` names."""

    def __init__(self, spec: str, workdir: Path) -> None:
        self.spec = spec
        self.kind = "postgresql" if spec.startswith(("postgresql://", "postgres://")) else "sqlite"
        self.workdir = workdir
        self.schema: str | None = None
        self._base = spec
        self._store: Store | None = None
        if self.kind == "sqlite":
            self.url = str(workdir / "bench.db")
            self.label = "SQLite (fresh file in a temporary folder)"
        else:
            self.schema = "bench_" + uuid.uuid4().hex[:12]
            sep = "&" if "?" in spec else "?"
            self.url = f"{spec}{sep}options={quote(f'-csearch_path={self.schema}')}"
            parts = urlsplit(spec)
            where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
            self.label = f"PostgreSQL {where} (fresh schema {self.schema})"

    def __enter__(self) -> BenchStore:
        if self.schema is not None:
            import psycopg

            try:
                with psycopg.connect(self._base, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"CREATE SCHEMA {self.schema}")
                    version = conn.execute("SHOW server_version").fetchone()
            except psycopg.Error as exc:
                raise BenchError(f"cannot prepare PostgreSQL at {self.label}: {exc}") from None
            if version:
                self.label = self.label.replace("PostgreSQL", f"PostgreSQL {version[0]}", 1)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self.schema is not None:
            import psycopg

            try:
                with psycopg.connect(self._base, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"DROP SCHEMA {self.schema} CASCADE")
            except psycopg.Error as err:
                say(f"warning: could not drop schema {self.schema}: {err}")

    def event_count(self, attempts: int = 3) -> int:
        """``SELECT COUNT(*) FROM goal_events``, read through Goalline's own Store (reopened
        and retried if the connection broke, e.g. PostgreSQL was restarted)."""
        for attempt in range(attempts):
            try:
                if self._store is None:
                    self._store = open_store(self.url)
                count = self._store.call(
                    lambda tx: tx.scalar("SELECT COUNT(*) FROM goal_events"), write=False
                )
                return int(count)
            except Exception as exc:
                if self._store is not None:
                    with contextlib.suppress(Exception):
                        self._store.close()
                    self._store = None
                if attempt == attempts - 1:
                    raise BenchError(f"cannot count the stored events: {exc}") from None
                time.sleep(1)
        raise AssertionError("unreachable")

    def settled_count(self, timeout: float = 10.0) -> int:
        """The event count once it stops changing (writes still in flight finish first)."""
        deadline = time.monotonic() + timeout
        last = self.event_count()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = self.event_count()
            if now == last:
                return now
            last = now
        return last


def cli(store: BenchStore, *args: str) -> str:
    """Run one ``goalline`` admin command on the store, as a user would; return its stdout."""
    cmd = [*goalline_command(), *args, "--database", store.url]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        shown = " ".join(["goalline", *args])
        raise BenchError(f"`{shown}` failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def set_up(store: BenchStore) -> str:
    """Database 1 with a custom field, pixel 1 and a token for database 1; returns the token."""
    cli(store, "migrate")
    cli(store, "db", "create", "Bench shop", "--id", str(DB_ID))
    cli(store, "db", "field", "add", str(DB_ID), CUSTOM_FIELD, "--type", "string")
    cli(store, "pixel", "create", "Bench site", "--db", str(DB_ID), "--id", str(PIXEL_ID))
    out = cli(store, "token", "create", "bench", "--db", str(DB_ID), "--json")
    token: str = json.loads(out)["token"]
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``goalline serve`` in its own process group; stopped by its PID (SIGTERM, then SIGKILL
    to that group only)."""

    def __init__(self, store: BenchStore, *, port: int, workers: int, workdir: Path) -> None:
        self.store = store
        self.port = port
        self.workers = workers
        self.log_path = workdir / f"server-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        return [
            *goalline_command(),
            "serve",
            "--database",
            self.store.url,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
        ]

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"goalline serve exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                status, _ = self.get("/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"goalline serve was not ready after {timeout:.0f} s:\n{self.tail()}")

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            say("goalline serve did not stop after SIGTERM; killing its process group")
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def seed_profiles(port: int, token: str, count: int, *, concurrency: int = 8) -> list[str]:
    """Create ``count`` profiles (email benchN@example.com, CRM_ID crm-N) with
    ``profiles/import`` over HTTP; return their ids in N order."""

    def worker(indices: range) -> list[tuple[int, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out: list[tuple[int, str]] = []
        try:
            for i in indices:
                email = f"bench{i}@example.com"
                body: dict[str, Any] = {
                    "token": token,
                    "db_id": DB_ID,
                    "matching": "email",
                    "email": email,
                    "data": {"email": email, CUSTOM_FIELD: f"crm-{i}"},
                }
                conn.request(
                    "POST",
                    "/api/v1.1/profiles/import",
                    body=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                reply = conn.getresponse()
                data = json.loads(reply.read())
                if data.get("error") != 0:
                    raise BenchError(f"profiles/import of {email} failed: {data}")
                out.append((i, data["profile_id"]))
        finally:
            conn.close()
        return out

    step = max(1, concurrency)
    with ThreadPoolExecutor(step) as pool:
        parts = list(pool.map(worker, [range(k, count, step) for k in range(step)]))
    ids = dict(pair for part in parts for pair in part)
    return [ids[i] for i in range(count)]


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="goalline-bench-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
