"""``goalline backup``: a consistent copy of a SQLite store, taken while it serves.

``sqlite3.Connection.backup`` with its default of every page in one step copies the store as
one read transaction sees it. In WAL mode a reader never blocks a writer, so servers keep
committing meanwhile (their commits go to the WAL, which the copy does not need), and the copy
never restarts because of them, as a copy in several steps would each time another connection
writes. The copy is written to ``DESTINATION.partial``, checked (``PRAGMA quick_check``),
fsynced, and only then renamed to DESTINATION: an interrupted backup leaves no file that looks
complete. PostgreSQL has its own tools (pg_dump, base backups; docs/operations.md).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from goalline.storage.dialect import SQLITE, locate
from goalline.storage.store import BUSY_TIMEOUT_MS


class BackupError(Exception):
    """A backup that cannot be made; the message says why."""


@dataclass(frozen=True)
class Copied:
    path: Path
    bytes: int
    seconds: float


def sqlite_backup(database: str, destination: Path) -> Copied:
    """Copy the SQLite store ``database`` (a ``--database`` value) to the new file
    ``destination``."""
    try:
        location = locate(database)
    except ValueError as exc:
        raise BackupError(str(exc)) from None
    if location.dialect is not SQLITE:
        raise BackupError(
            "goalline backup copies SQLite stores; for PostgreSQL use pg_dump or a base backup "
            "(docs/operations.md, Backups)"
        )
    source = Path(location.target)
    if location.target == ":memory:" or not source.is_file():
        raise BackupError(f"{location.target}: no such SQLite file")
    if destination.exists():
        raise BackupError(f"{destination}: already exists; back up to a new file")
    if destination.resolve() == source.resolve():
        raise BackupError(f"{destination}: is the store itself")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    # mode=rw: never create the store (a mistyped path would otherwise back up an empty file).
    src = sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"{partial}: the copy failed its check ({check})")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backing up {source}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    _fsync(partial)
    os.replace(partial, destination)
    _fsync(destination.parent)
    return Copied(destination, destination.stat().st_size, time.monotonic() - started)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
