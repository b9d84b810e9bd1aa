"""Administration units of work: databases, fields, pixels, tokens, retention (CLI now, admin
API later).

Tokens are generated as 32 hex characters (Altcraft's shape), shown once, stored as SHA-256.
Database names are unique, compared case-insensitively and without surrounding spaces: the
check is here, not a unique index, so a store that already holds two databases of one name
(made before the check) still migrates; only new duplicates are refused.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from goalline.model import FIELD_TYPES, POLICIES
from goalline.pipeline.context import hash_token
from goalline.pipeline.profiles import BUILTIN_FIELDS
from goalline.storage.ports import Store, UnitOfWork

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class AdminError(ValueError):
    """A refused admin change; the message says what and why."""


@dataclass(frozen=True)
class NewToken:
    id: int
    name: str
    token: str
    db_ids: tuple[int, ...]


def create_database(
    uow: UnitOfWork, *, name: str, policy: str = "record", db_id: int | None = None, now: str
) -> int:
    if policy not in POLICIES:
        raise AdminError(
            f"unknown-profile policy {policy!r}: expected one of {', '.join(POLICIES)}"
        )
    if not name.strip():
        raise AdminError("database name: expected at least one character other than spaces")
    if db_id is not None and uow.get_database(db_id) is not None:
        raise AdminError(f"database {db_id} already exists")
    same = [db for db in uow.list_databases() if _name_key(db.name) == _name_key(name)]
    if same:
        raise AdminError(
            f"database name {name!r}: database {same[0].id} is already called {same[0].name!r} "
            "(names are compared ignoring case)"
        )
    return uow.create_database(name=name, policy=policy, db_id=db_id, now=now)


def _name_key(name: str) -> str:
    """What two database names must differ in: case and surrounding spaces do not count."""
    return name.strip().casefold()


def set_policy(uow: UnitOfWork, *, db_id: int, policy: str) -> None:
    if policy not in POLICIES:
        raise AdminError(
            f"unknown-profile policy {policy!r}: expected one of {', '.join(POLICIES)}"
        )
    _database(uow, db_id)
    uow.set_policy(db_id, policy)


def add_field(uow: UnitOfWork, *, db_id: int, name: str, type_: str, now: str) -> None:
    _database(uow, db_id)
    if type_ not in FIELD_TYPES:
        raise AdminError(f"field type {type_!r}: expected one of {', '.join(FIELD_TYPES)}")
    if not _FIELD_NAME.match(name) or name in BUILTIN_FIELDS:
        raise AdminError(
            f"field name {name!r}: expected a letter then letters, digits or _ (at most 64), "
            f"not {' or '.join(BUILTIN_FIELDS)}"
        )
    if name in uow.fields_of(db_id):
        raise AdminError(f"database {db_id} already has a field {name!r}")
    uow.add_field(db_id=db_id, name=name, type_=type_, now=now)


def create_pixel(
    uow: UnitOfWork, *, name: str, db_id: int | None = None, pixel_id: int | None = None, now: str
) -> int:
    if db_id is not None:
        _database(uow, db_id)
    if pixel_id is not None and uow.get_pixel(pixel_id) is not None:
        raise AdminError(f"pixel {pixel_id} already exists")
    return uow.create_pixel(name=name, db_id=db_id, pixel_id=pixel_id, now=now)


def create_token(
    uow: UnitOfWork, *, name: str, db_ids: tuple[int, ...] = (), value: str | None = None, now: str
) -> NewToken:
    for db_id in db_ids:
        _database(uow, db_id)
    token = value if value is not None else secrets.token_hex(16)
    if not 1 <= len(token) <= 128 or token.strip() != token:
        raise AdminError("token value: expected 1 to 128 characters without surrounding spaces")
    if uow.token_exists(hash_token(token)):
        raise AdminError("token value: already in use")
    token_id = uow.create_token(
        name=name, token_hash=hash_token(token), db_ids=tuple(db_ids), now=now
    )
    return NewToken(token_id, name, token, tuple(db_ids))


def describe_databases(uow: UnitOfWork) -> list[dict[str, Any]]:
    return [
        {"id": db_id, "name": name, "unknown_profile": policy, "fields": uow.fields_of(db_id)}
        for db_id, name, policy in uow.list_databases()
    ]


# -- retention: goalline prune ---------------------------------------------------------------

#: Goal events deleted per transaction by prune: a serving process's writes wait behind one
#: such transaction for milliseconds, never for the whole prune.
PRUNE_BATCH = 1000


@dataclass(frozen=True)
class Pruned:
    """What prune deleted (or, in a dry run, would delete)."""

    events: int
    requests: int


def prunable(uow: UnitOfWork, *, before: str, db_id: int | None, now: str) -> Pruned:
    """What ``prune`` would delete now: the goal events that happened before ``before`` (of
    ``db_id``, or of every database) and the request-log entries expired by ``now``."""
    if db_id is not None:
        _database(uow, db_id)
    return Pruned(uow.count_events_before(before, db_id), uow.count_requests_expired(now))


def prune(
    store: Store,
    *,
    before: str,
    db_id: int | None,
    now: str,
    batch: int = PRUNE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> Pruned:
    """Delete the goal events whose ``event_at`` lies before ``before`` (of ``db_id``, or of
    every database), ``batch`` at a time, each batch in a transaction of its own; then the
    request-log entries that expired by ``now`` (they are past their dedup window, whatever
    the database). ``progress`` gets the number of events deleted so far after each batch.
    Safe beside a serving process; stopped half way, what was deleted stays deleted and a
    second run deletes the rest."""
    events = 0
    after = 0
    while True:
        deleted, last = store.call(_delete_events(before, db_id, after, batch))
        if last is None:
            break
        events += deleted
        after = last
        if progress is not None:
            progress(events)
    requests = 0
    while True:
        forgotten = store.call(_forget_requests(now, batch))
        requests += forgotten
        if forgotten < batch:
            break
    return Pruned(events, requests)


def _delete_events(
    before: str, db_id: int | None, after: int, batch: int
) -> Callable[[UnitOfWork], tuple[int, int | None]]:
    return lambda uow: uow.delete_events_before(before, db_id, after_id=after, limit=batch)


def _forget_requests(now: str, batch: int) -> Callable[[UnitOfWork], int]:
    return lambda uow: uow.forget_requests_before(now, batch)


def _database(uow: UnitOfWork, db_id: int) -> None:
    if uow.get_database(db_id) is None:
        raise AdminError(f"database {db_id} not found")
