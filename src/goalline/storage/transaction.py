"""One open transaction: the raw statements every query is written against.

Queries use ``?`` placeholders on every store (the dialect rewrites them for PostgreSQL);
storage/queries.py builds every query of Goalline on this, and only storage/ sees it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

from goalline.storage.dialect import Dialect

_MAX_ROWID = 2**63 - 1


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

    def insert_ids(self, query: str, params: Sequence[Any], rows: int) -> list[int]:
        """Run ``INSERT ... VALUES`` of ``rows`` rows into a table whose key is an integer
        ``id`` given by the store; return the new ids in VALUES order.

        PostgreSQL: ``RETURNING id`` (identity values are drawn in VALUES order; RETURNING's
        own order is unspecified, so they are sorted). SQLite: the ids are consecutive and end
        at ``lastrowid``. SQLite gives a new row the largest rowid + 1, and the open write
        transaction keeps every other writer out, so one statement's rows get consecutive ids;
        this saves RETURNING's cost (a third of a narrow multi-row insert). SQLite picks
        rowids at random only once the largest possible one is used, which is refused here.
        """
        if self.dialect.name == "postgres":
            return sorted(row[0] for row in self.all(query + " RETURNING id", params))
        last = self.execute(query, params).lastrowid
        if not last or last >= _MAX_ROWID - rows:
            raise RuntimeError("goal_events ids are near SQLite's largest rowid")
        return list(range(last - rows + 1, last + 1))

    def copy_ids(
        self, table: str, columns: Sequence[str], params: Sequence[Any], rows: int
    ) -> list[int]:
        """PostgreSQL: store ``rows`` rows of ``columns`` (``params`` holds their values one
        row after another) with COPY, and return their new ids in row order. The ids are drawn
        from the table's identity sequence first and written with the rows, in ascending order
        (COPY writes given identity values, as INSERT's OVERRIDING SYSTEM VALUE would)."""
        drawn = self.all(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, ?)",
            (rows,),
        )
        ids = sorted(row[0] for row in drawn)
        width = len(params) // rows
        names = ", ".join(columns)
        with self._conn.cursor().copy(f"COPY {table} (id, {names}) FROM STDIN") as copy:
            for i, new_id in enumerate(ids):
                copy.write_row((new_id, *params[i * width : (i + 1) * width]))
        return ids

    def savepoint(self) -> _Savepoint:
        """``with tx.savepoint(): ...`` undoes only the block's own writes on error."""
        return _Savepoint(self)


class _Savepoint:
    _names = itertools.count(1)

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self._name = f"sp{next(self._names)}"

    def __enter__(self) -> None:
        self._tx.execute(f"SAVEPOINT {self._name}")

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> Literal[False]:
        if kind is None:
            self._tx.execute(f"RELEASE SAVEPOINT {self._name}")
        else:
            self._tx.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
            self._tx.execute(f"RELEASE SAVEPOINT {self._name}")
        return False
