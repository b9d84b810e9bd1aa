"""The dialect layer: which store a connection belongs to, and how ``?`` placeholders reach
PostgreSQL (``??`` stands for a literal ``?``, as in its jsonb operators)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from yoyo import get_backend

from goalline.storage.dialect import POSTGRES, SQLITE, dialect_of
from goalline.storage.store import Store, Tx

from conftest import POSTGRES_ONLY


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("SELECT 1", "SELECT 1"),
        ("a = ? AND b IN (?, ?)", "a = $1 AND b IN ($2, $3)"),
        ("c ?? ?", "c ? $1"),
        (
            "d = ? AND c ??| ? AND c ??& ? AND e = ?",
            "d = $1 AND c ?| $2 AND c ?& $3 AND e = $4",
        ),
        ("c???", "c?$1"),  # pairs are read left to right: a literal ?, then a placeholder
        ("c????", "c??"),
        ("c ?? 'k' AND x = ?", "c ? 'k' AND x = $1"),
        ("'why??' = ?", "'why?' = $1"),
        (", ".join("?" * 12), ", ".join(f"${i}" for i in range(1, 13))),
    ],
)
def test_postgres_numbers_placeholders_and_reads_a_doubled_mark_as_a_literal(
    query: str, sent: str
) -> None:
    assert POSTGRES.sql(query) == sent


def test_sqlite_takes_the_query_text_as_it_is() -> None:
    query = "a = ? AND b = ?"
    assert SQLITE.sql(query) is query


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


@POSTGRES_ONLY  # SQLite has no ? operators (its query text is not rewritten)
def test_jsonb_key_operators_next_to_placeholders(store: Store) -> None:
    """``??``, ``??|`` and ``??&`` reach PostgreSQL as jsonb's ``?``, ``?|`` and ``?&``, and
    the placeholders around them keep their numbers."""
    events = [
        ("k1", "a", '["shoes", "hats"]'),
        ("k2", "b", '["shoes"]'),
        ("k3", "c", '["socks"]'),
        ("k4", "d", "[]"),
    ]

    def fill(tx: Tx) -> None:
        for key, goal, categories in events:
            tx.execute(
                "INSERT INTO goal_events (db_id, pixel_id, matching, match_kind, match_key, "
                "goal, event_at, received_at, is_test, skip_triggers, enrich_profile, "
                "token_id, categories) VALUES (?, 1, 'email', 'email', ?, ?, '2026-01-01', "
                "'2026-01-01', false, false, false, 1, CAST(? AS jsonb))",
                (1, key, goal, categories),
            )

    store.call(fill)

    def goals(where: str, *params: Any) -> list[str]:
        rows = store.call(
            lambda tx: tx.all(
                f"SELECT goal FROM goal_events WHERE db_id = ? AND {where} AND match_key <> ? "
                "ORDER BY goal",
                (1, *params, "none"),
            ),
            write=False,
        )
        return [r[0] for r in rows]

    assert goals("categories ?? ?", "shoes") == ["a", "b"]
    assert goals("categories ??| ?", ["hats", "socks"]) == ["a", "c"]
    assert goals("categories ??& ?", ["shoes", "hats"]) == ["a"]
    assert goals("categories ?? 'socks' AND goal = ?", "c") == ["c"]
    assert goals("NOT categories ??| ?", ["shoes", "hats", "socks"]) == ["d"]
