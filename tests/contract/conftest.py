"""Fixtures of the contract tests: a database per test module, on SQLite and on PostgreSQL.

The seed examples and wire tests share one real server per module and store (each test reads
back only the events its own replies name); durability tests take conftest's per-test
``server_database``, since they kill their server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import _pg_schema_url

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=STORES)
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An empty database for one module's real server: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("contract") / "served.db"
        return str(path)
    return _pg_schema_url(request)
