"""The dialect layer: which store a connection belongs to."""

from __future__ import annotations

import sqlite3

import pytest
from yoyo import get_backend

from goalline.storage.dialect import SQLITE, dialect_of
from goalline.storage.store import Store


def test_dialect_of_tells_migration_connections_apart(store: Store) -> None:
    backend = get_backend(store.location.yoyo_url)  # what a migration step is given
    try:
        assert dialect_of(backend.connection) is store.dialect
    finally:
        backend.connection.close()


def test_dialect_of_refuses_what_is_not_a_connection() -> None:
    memory = sqlite3.connect(":memory:")
    try:
        assert dialect_of(memory) is SQLITE
        with pytest.raises(TypeError, match="not a SQLite or PostgreSQL connection"):
            dialect_of(memory.cursor())
    finally:
        memory.close()
