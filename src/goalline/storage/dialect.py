"""Where SQLite and PostgreSQL differ: placeholders, DDL types, driver errors, connections.

Every check of "which store is this?" lives here: ``dialect_of`` for a DB-API connection (a
migration's yoyo connection, or the store's own), ``Dialect.name`` for a store's transaction.

Placeholders: queries are written once, with ``?`` placeholders, in storage/queries.py.
SQLite takes the text as it is (``?`` is its own paramstyle). PostgreSQL's dialect turns it into
``$1, $2, …``, left to right, once per statement text (cached): every ``?`` is a placeholder,
even inside a string literal or a comment, except that ``??`` stands for one literal ``?`` (the
JDBC convention). That is how a query writes PostgreSQL's jsonb key operators: ``?`` as ``??``,
``?|`` as ``??|``, ``?&`` as ``??&``::

    tx.all("SELECT id FROM goal_events WHERE db_id = ? AND categories ?? ?", (db_id, "shoes"))
    # PostgreSQL receives: ... WHERE db_id = $1 AND categories ? $2

Pairs are read left to right, so ``???`` is a literal ``?`` followed by a placeholder. SQLite
has no ``?`` operator, and its text is not rewritten (no per-call cost on the SQLite path), so
``??`` belongs only in PostgreSQL-only queries (SQLite would read two placeholders); a query
run on both stores has no ``?`` that is not a placeholder (bind a string holding a ``?`` as a
parameter instead of writing it as a literal).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Dialect:
    name: str
    #: DDL fragments substituted into migrations (``run_ddl``). They are part of every
    #: migration's text, so an existing one never changes (that would change what a fresh
    #: install gets, but no existing store): a new type is a new key.
    ddl: dict[str, str]

    def sql(self, query: str) -> str:
        return _to_numbered(query) if self.name == "postgres" else query

    def json_value(self, value: Any) -> Any:
        """A JSON column read back: SQLite gives text, PostgreSQL's jsonb gives objects."""
        if isinstance(value, str):
            import msgspec

            return msgspec.json.decode(value)
        return value


@lru_cache(maxsize=512)
def _to_numbered(query: str) -> str:
    """``?`` → ``$1, $2, …`` and ``??`` → ``?`` (module docstring): PostgreSQL's own
    placeholders, sent as they are by psycopg's RawCursor. (psycopg's ``%s`` conversion caches
    only queries of up to 50 parameters, so the 60-column event insert was re-parsed in Python
    on every request.)"""
    number = 0
    pieces = []
    for piece in query.split("??"):  # left to right: "???" is "??" then "?"
        parts = piece.split("?")
        pieces.append(parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], number + 1)))
        number += len(parts) - 1
    return "?".join(pieces)


SQLITE = Dialect(
    "sqlite",
    {
        "autoid": "INTEGER PRIMARY KEY",
        "json": "TEXT",
        "bigint": "BIGINT",
        "double": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
    },
)
POSTGRES = Dialect(
    "postgres",
    {
        "autoid": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "json": "JSONB",
        "bigint": "BIGINT",
        "double": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
    },
)


@dataclass(frozen=True)
class Location:
    """A parsed ``--database`` value."""

    dialect: Dialect
    #: SQLite: a file path (or ``:memory:``); PostgreSQL: a libpq connection URL.
    target: str

    @property
    def yoyo_url(self) -> str:
        if self.dialect is SQLITE:
            return "sqlite:///" + self.target
        return "postgresql+psycopg://" + self.target.split("://", 1)[1]

    def describe(self) -> str:
        """For logs and --version: never shows a password."""
        if self.dialect is SQLITE:
            return f"sqlite:{self.target}"
        parts = urlsplit(self.target)
        host = parts.hostname or "localhost"
        return (
            f"postgresql://{parts.username or ''}{'@' if parts.username else ''}{host}"
            + (f":{parts.port}" if parts.port else "")
            + parts.path
        )


def locate(database: str) -> Location:
    """``goalline.db``, ``sqlite:///abs/path.db``, ``postgresql://…`` → a Location."""
    if database.startswith(("postgresql://", "postgres://")):
        return Location(POSTGRES, "postgresql://" + database.split("://", 1)[1])
    path = database
    if path.startswith("sqlite:///"):
        path = path[len("sqlite:///") :]
    elif path.startswith("sqlite:"):
        path = path[len("sqlite:") :]
    if "://" in path:
        raise ValueError(
            f"GOALLINE_DATABASE={database!r}: expected a SQLite file path or a postgresql:// URL"
        )
    import os

    return Location(SQLITE, path if path == ":memory:" else os.path.abspath(path))


def is_unavailable(exc: BaseException) -> bool:
    """Driver errors that mean "storage unavailable, retry later" rather than a bug."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(w in text for w in ("locked", "busy", "disk", "unable to open", "readonly"))
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover - both are dependencies
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout))


#: PostgreSQL error classes (SQLSTATE) of a server that cannot serve anyone: connection
#: exceptions (08: cannot connect, connection lost) and the server shutting down or starting
#: up (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now).
_PG_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03")


def is_outage(exc: BaseException) -> bool:
    """Of the ``is_unavailable`` errors, those that may mean the storage itself is gone, not
    just this unit's bad luck: the store then probes it (storage/store.py, "The breaker").

    SQLite: the file cannot be opened, read or written (``unable to open``, ``disk I/O
    error``, ``database or disk is full``, ``readonly``). Not ``locked`` or ``busy``: that is
    another process writing, and the file is there. PostgreSQL: no connection within the
    timeout (PoolTimeout), a connection that failed or was lost (an OperationalError the
    client raised itself, without a SQLSTATE, or class 08), or a server shutting down.
    Not a serialization failure, a deadlock, a cancelled statement or "too many clients":
    the server is there and answering.
    """
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(w in text for w in ("disk", "unable to open", "readonly"))
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover - both are dependencies
        return False
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return True
    if isinstance(exc, psycopg_pool.PoolClosed) or not isinstance(exc, psycopg.OperationalError):
        return False  # a closed pool is the store's own doing (it closes it when storage is down)
    state = exc.sqlstate
    return state is None or state.startswith(_PG_OUTAGE_STATES)


def dialect_of(conn: object) -> Dialect:
    """The dialect of a DB-API connection: a migration step's yoyo connection (sqlite3 or
    psycopg) or one of the store's own. The one place that tells the drivers apart."""
    if isinstance(conn, sqlite3.Connection):
        return SQLITE
    import psycopg

    if isinstance(conn, psycopg.Connection):
        return POSTGRES
    kind = type(conn)
    raise TypeError(f"not a SQLite or PostgreSQL connection: {kind.__module__}.{kind.__name__}")


def run_ddl(conn: Any, statements: list[str]) -> None:
    """Run migration DDL on a yoyo connection, filling in its dialect's type names."""
    dialect = dialect_of(conn)
    cursor = conn.cursor()
    for statement in statements:
        cursor.execute(statement.format(**dialect.ddl))
