"""Authorisation steps shared by every method: token → database → pixel (SPEC §1 codes).

Tokens and pixels never change once created (there is no command that edits them), so a
process keeps the ones it has seen in a small bounded cache: the hot path then skips three
queries per request. Unknown tokens are never cached, so a new token works at once; the
database row (with its unknown-profile policy, which can change) is always read.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from goalline.errors import Forbidden, NotFound, Unauthorized
from goalline.model import Database, TokenInfo
from goalline.storage.ports import UnitOfWork


class AuthCache:
    """Seen tokens and pixels, for ``ttl`` seconds, at most ``size`` of each kind."""

    def __init__(self, *, ttl: float = 60.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[tuple[str, Any], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, Any]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] < time.monotonic():
                return None
            return entry[1]

    def put(self, key: tuple[str, Any], value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size * 2:
                self._entries.popitem(last=False)


def authenticate(uow: UnitOfWork, token_hash: str, cache: AuthCache | None = None) -> TokenInfo:
    token = cache.get(("token", token_hash)) if cache else None
    if token is None:
        token = uow.token_by_hash(token_hash)
        if token is None:
            raise Unauthorized("token: unknown API token")
        if cache:
            cache.put(("token", token_hash), token)
    return token


def authorise_database(
    uow: UnitOfWork,
    token_hash: str,
    db_id: int,
    cache: AuthCache | None = None,
    read: dict[int, Database | None] | None = None,
) -> tuple[TokenInfo, str]:
    """The token and the database's unknown-profile policy; 401, 403 or 404 otherwise.

    A scoped token asking for a database outside its scope gets 403 whether or not the
    database exists, so tokens cannot probe for other databases. ``read`` keeps the database
    rows already read in this transaction (a batch of registrations reads each once).
    """
    token = authenticate(uow, token_hash, cache)
    if not token.may_use(db_id):
        raise Forbidden(f"db_id: token {token.name!r} may not use database {db_id}")
    if read is None:
        database = uow.get_database(db_id)
    elif db_id in read:
        database = read[db_id]
    else:
        database = read[db_id] = uow.get_database(db_id)
    if database is None:
        raise NotFound(f"db_id: database {db_id} not found")
    return token, database.policy


def authorise_pixel(
    uow: UnitOfWork, pixel_id: int, db_id: int, cache: AuthCache | None = None
) -> None:
    pixel = cache.get(("pixel", pixel_id)) if cache else None
    if pixel is None:
        pixel = uow.get_pixel(pixel_id)
        if pixel is None:
            raise NotFound(f"pixel_id: pixel {pixel_id} not found")
        if cache:
            cache.put(("pixel", pixel_id), pixel)
    if pixel.db_id is not None and pixel.db_id != db_id:
        raise Forbidden(
            f"pixel_id: pixel {pixel_id} belongs to database {pixel.db_id}, not {db_id}"
        )
