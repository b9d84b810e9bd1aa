"""Fixtures of the contract tests: databases made once per test module, on SQLite and on
PostgreSQL.

The seed examples and wire tests share real servers per module and store (each test reads back
only the events its own replies name); durability tests take conftest's per-test
``server_database``, since they kill their server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from conftest import _pg_schema_url

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=STORES)
def new_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """Makes empty databases for one module's servers: SQLite files or PostgreSQL schemas
    (dropped when the module is done)."""
    counter = itertools.count()

    def make() -> str:
        if request.param == "sqlite":
            return str(tmp_path_factory.mktemp("contract") / f"served-{next(counter)}.db")
        return _pg_schema_url(request)

    return make


@pytest.fixture(scope="module")
def module_database(new_database: Callable[[], str]) -> str:
    return new_database()
