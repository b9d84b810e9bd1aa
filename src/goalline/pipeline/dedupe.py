"""Exactly-once (SPEC §2 "Duplicates"; issue 5): request fingerprints and the request log.

A data-changing request gets a key: its ``Request-ID`` (or ``X-Request-ID``) header with the
caller's token and the method, else a checksum of the method, the token, the reply format and
the request as decoded (so key order, whitespace and JSON-vs-XML spelling do not matter). The
unit of work claims the key in the request log first and stores the encoded reply there in the
same transaction as the events. A repeat inside the window therefore finds the reply and gets
it back byte for byte, with ``Duplicate-Key`` and ``Duplicate-Request: true``, and changes
nothing; two racing repeats serialise on the log's primary key, so exactly one does the work.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.model import LogEntry, LogRow, iso_utc
from goalline.storage.ports import Retry, UnitOfWork

Work = Callable[[UnitOfWork], dict[str, Any]]


@dataclass(slots=True)  # not frozen: built on every request, and frozen init costs 2x
class Guard:
    """What a unit of work needs to run at most once."""

    key: str
    method: str
    now: str
    expires: str
    reply_format: str
    #: The transport's encoder of a success reply: the log keeps the bytes it sent.
    encode: Callable[[dict[str, Any]], bytes]


class Replayed(Exception):
    """The request was already done inside the window; ``reply`` is the original reply."""

    def __init__(self, key: str, reply: bytes, reply_format: str) -> None:
        super().__init__(key)
        self.key = key
        self.reply = reply
        self.reply_format = reply_format


def request_key(
    *, method: str, token: str, request_id: str | None, request: Any, reply_format: str
) -> str:
    """The Duplicate-Key: 28 characters of base64 SHA-1, like Altcraft's."""
    digest = hashlib.sha1(usedforsecurity=False)
    if request_id:
        digest.update(b"id\0" + method.encode() + b"\0" + token.encode() + b"\0")
        digest.update(request_id.encode())
    else:
        digest.update(b"sum\0" + method.encode() + b"\0" + token.encode() + b"\0")
        digest.update(reply_format.encode() + b"\0" + msgspec.json.encode(request))
    return base64.b64encode(digest.digest()).decode()


def guard(
    *,
    key: str,
    method: str,
    now: dt.datetime,
    now_iso: str,
    window_seconds: int,
    reply_format: str,
    encode: Callable[[dict[str, Any]], bytes],
) -> Guard:
    """``now_iso`` is ``now`` as iso_utc spells it (the caller has it already)."""
    expires = iso_utc(now + dt.timedelta(seconds=window_seconds))
    return Guard(key, method, now_iso, expires, reply_format, encode)


def once(uow: UnitOfWork, guard: Guard | None, work: Work) -> dict[str, Any]:
    """Run ``work`` unless ``guard``'s key is already done; then raise Replayed instead.

    The log row is written once, with the reply, at the end of the unit. A concurrent twin
    (another process on PostgreSQL) that got there first makes that insert find the key: the
    unit then raises Retry, its savepoint rolls its writes back, and the re-run finds the
    twin's reply. Checking first and writing once costs one write per request, not two.
    """
    if guard is None:
        return work(uow)
    row = logged(uow, [guard.key]).get(guard.key)
    done = replayed(guard, row)
    if done is not None:
        raise done
    data = work(uow)
    if row is None:
        if not record(uow, [(guard, data)]):
            raise Retry()
    else:
        take_over(uow, guard, data)
    return data


def replayed(guard: Guard, row: LogRow | None) -> Replayed | None:
    """The replay for ``guard`` if its log ``row`` holds a reply that has not expired."""
    if row is not None and row.reply is not None and row.expires_at > guard.now:
        return Replayed(guard.key, row.reply.encode(), row.reply_format or "json")
    return None


def logged(uow: UnitOfWork, keys: list[str]) -> dict[str, LogRow]:
    """The request-log rows of ``keys`` that exist."""
    return uow.request_log_rows(keys)


def _entry(guard: Guard, data: dict[str, Any]) -> LogEntry:
    reply = guard.encode(data).decode()
    return LogEntry(guard.key, guard.method, guard.now, guard.expires, guard.reply_format, reply)


def record(uow: UnitOfWork, done: list[tuple[Guard, dict[str, Any]]]) -> bool:
    """Log the replies of requests whose keys were not in the log; False when another
    transaction took one of the keys meanwhile (the caller retries)."""
    return uow.log_requests([_entry(guard, data) for guard, data in done])


def take_over(uow: UnitOfWork, guard: Guard, data: dict[str, Any]) -> None:
    """Log the reply under a key whose earlier entry has expired; Retry when another
    transaction took the key over (or the cleanup deleted the entry) since it was read: the
    re-run then finds the other reply, or logs a new entry."""
    if not uow.replace_logged_request(_entry(guard, data)):
        raise Retry()


def forget_expired(uow: UnitOfWork, now: dt.datetime, batch: int = 1000) -> int:
    """Delete up to ``batch`` expired keys (short transactions keep writers unblocked)."""
    return uow.forget_requests_before(iso_utc(now), batch)


def fingerprint(values: tuple[Any, ...]) -> str:
    """A goal event's payload identity, for external-id idempotency (issue 5)."""
    return hashlib.sha1(msgspec.json.encode(values), usedforsecurity=False).hexdigest()
