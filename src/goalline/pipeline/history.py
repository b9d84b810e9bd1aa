"""``subscribers/history_get``: a profile's action history, newest first, paged
(shared/research/altcraft-api.md §7.1; issue 4).

Each goal event is one action ``goal``; a pixel hit without a goal name is an action ``pixel``.
Events recorded before the profile existed show here once stitching has attached them.
Paging: ``from_id`` is the ``event_id`` of the last action of the previous page, and the reply
carries ``next_from_id`` while older actions remain. The order is the events' own time, newest
first (ties by id), so a backfilled event sits where its date puts it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.errors import InvalidRequest
from goalline.model import HistoryPage, MatchKey
from goalline.pipeline import match, profiles
from goalline.pipeline.auth import authorise_database
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import HistoryGetRequest
from goalline.storage.ports import UnitOfWork

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: Event columns shown under their own name when present.
OPTIONAL = (
    "value",
    "external_type",
    "external_event_id",
    "referer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class HistoryQuery:
    """A checked history request."""

    db_id: int
    key: MatchKey
    #: ``since <= event_at < until`` (fixed-width ISO text, so text comparison is time order).
    since: str | None
    until: str | None
    limit: int
    from_id: int | None


def check(req: HistoryGetRequest, *, phone_region: str = "") -> HistoryQuery:
    """Every field rule of the request (pure)."""
    db_id = req.db_id if req.db_id is not None else req.list_id
    if db_id is None:
        raise InvalidRequest.field("list_id", "required (the database id; db_id is accepted too)")
    if req.db_id is not None and req.list_id is not None and req.db_id != req.list_id:
        raise InvalidRequest.field("list_id", f"differs from db_id {req.db_id}")
    if db_id <= 0:
        name = "db_id" if req.db_id is not None else "list_id"
        raise InvalidRequest.field(name, "must be a positive integer")
    if req.matching is None and req.profile_id is not None and req.email is None:
        req = msgspec.structs.replace(req, matching="profile_id")
    key = match.match_key(req, phone_region=phone_region)
    date_from = _date("date_from", req.date_from)
    date_to = _date("date_to", req.date_to)
    if date_from is not None and date_to is not None and date_to < date_from:
        raise InvalidRequest.field("date_to", f"before date_from {date_from.isoformat()}")
    limit = DEFAULT_LIMIT if req.limit is None else req.limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest.field("limit", f"must be between 1 and {MAX_LIMIT}")
    if req.from_id is not None and req.from_id <= 0:
        raise InvalidRequest.field("from_id", "must be a positive event id")
    return HistoryQuery(
        db_id=db_id,
        key=key,
        since=None if date_from is None else date_from.isoformat(),
        until=None if date_to is None else (date_to + dt.timedelta(days=1)).isoformat(),
        limit=limit,
        from_id=req.from_id,
    )


def _date(name: str, raw: str | None) -> dt.date | None:
    if raw is None:
        return None
    text = raw.strip()
    if _DATE.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise InvalidRequest.field(name, "must be a date YYYY-MM-DD (UTC, inclusive)")


def history(
    uow: UnitOfWork, token_hash: str, query: HistoryQuery
) -> tuple[str, list[dict[str, Any]], bool]:
    """The read: (profile_id, up to ``limit`` events newest first, whether older ones remain)."""
    authorise_database(uow, token_hash, query.db_id)
    profile_id = profiles.resolve(uow, query.db_id, query.key)
    if profile_id is None:
        raise profiles.no_profile(query.db_id, query.key)
    before = None
    if query.from_id is not None:
        at = uow.event_time(query.db_id, profile_id, query.from_id)
        if at is None:
            raise InvalidRequest.field(
                "from_id", f"event {query.from_id} is not in this profile's history"
            )
        before = (at, query.from_id)
    page = HistoryPage(query.db_id, profile_id, query.since, query.until, before, query.limit + 1)
    events = uow.history_events(page)
    return profile_id, events[: query.limit], len(events) > query.limit


def action(event: dict[str, Any]) -> dict[str, Any]:
    """One history item: Altcraft's item shape with the goal event's own fields."""
    item: dict[str, Any] = {
        "action": "pixel" if event["goal"] is None else "goal",
        "datetime": rfc3339(event["event_at"]),
        "event_id": event["id"],
        "profile_id": event["profile_id"],
        "list_id": event["db_id"],
        "pixel_id": event["pixel_id"],
    }
    if event["goal"] is not None:
        item["goal"] = event["goal"]
    item["is_test"] = event["is_test"]
    if event["send_message_id"] is not None:
        item["smid"] = event["send_message_id"]
    for name in OPTIONAL:
        if event[name] is not None:
            item[name] = event[name]
    if event["pixel_data"] is not None:
        item["pixel_data"] = event["pixel_data"]
    return item


def rfc3339(event_at: str) -> str:
    """``2006-01-25T08:04:05.000000Z`` → ``2006-01-25T08:04:05Z`` (fractions kept if any)."""
    seconds, _, fraction = event_at.rstrip("Z").partition(".")
    fraction = fraction.rstrip("0")
    return f"{seconds}.{fraction}Z" if fraction else f"{seconds}Z"


async def handle_history_get(deps: Deps, ctx: Context, req: HistoryGetRequest) -> dict[str, Any]:
    query = check(req, phone_region=deps.settings.default_phone_region)
    token_hash = ctx.token_hash()
    _, events, more = await deps.store.read(lambda uow: history(uow, token_hash, query))
    reply: dict[str, Any] = {"data": [action(e) for e in events]}
    if more:
        reply["next_from_id"] = events[-1]["id"]
    return reply
