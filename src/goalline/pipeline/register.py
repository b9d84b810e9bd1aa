"""``goals/register``: validate → authorise → deduplicate → match → store → enrich the profile,
in one unit of work (SPEC §2). The reply is built only after the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.errors import Conflict, NotFound
from goalline.model import PROFILE_ENRICHMENT, Registration
from goalline.pipeline import dedupe, profiles, validate
from goalline.pipeline.auth import AuthCache, authorise_database, authorise_pixel
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import RegisterRequest
from goalline.storage import queries as q
from goalline.storage.store import Tx


@dataclass(frozen=True)
class Registered:
    profile_id: str | None
    event_ids: list[int]
    #: Events whose external_type + external_event_id were already stored with this payload.
    duplicate_ids: list[int]

    def reply(self) -> dict[str, Any]:
        reply: dict[str, Any] = {}
        if self.profile_id is not None:
            reply["profile_id"] = self.profile_id
        reply["event_ids"] = self.event_ids
        if self.duplicate_ids:
            reply["duplicate_event_ids"] = self.duplicate_ids
        return reply


def store_registration(
    tx: Tx, reg: Registration, token_hash: str, received_at: str, cache: AuthCache | None = None
) -> Registered:
    """The unit of work: everything a registration writes, or nothing."""
    token, policy = authorise_database(tx, token_hash, reg.db_id, cache)
    authorise_pixel(tx, reg.pixel_id, reg.db_id, cache)
    key = reg.match
    match_key = key.value
    if key.kind == "custom":
        _, texts = profiles.lookup(tx, reg.db_id, key)
        match_key = ", ".join(texts)
    profile_id = profiles.resolve(tx, reg.db_id, key)
    if profile_id is None and policy != "record":
        if policy == "reject" or key.kind == "profile_id":
            raise NotFound(f"profile: no profile with {key.describe()} in database {reg.db_id}")
        fields = q.fields_of(tx, reg.db_id)
        data = profiles.data_from_key(key, fields)
        profile_id = profiles.create(tx, db_id=reg.db_id, data=data, fields=fields, now=received_at)
    head = (reg.db_id, reg.pixel_id, profile_id, reg.matching, key.kind, key.field, match_key)
    tail = (
        reg.event_at,
        reg.date_raw,
        received_at,
        reg.is_test,
        reg.skip_triggers,
        reg.enrich_profile,
        token.id,
        *reg.attrs.values(),
    )
    if reg.attrs["sources"]:  # a dict while the pipeline reads it; JSON text in the row
        tail = (*tail[:-1], msgspec.json.encode(reg.attrs["sources"]).decode())
    rows = [(*head, goal.name, goal.value, *tail) for goal in reg.goals]
    if reg.attrs["external_event_id"] is None:
        event_ids = q.insert_events(tx, [(*row, None) for row in rows])
        duplicate_ids: list[int] = []
    else:
        event_ids, duplicate_ids = _insert_idempotent(tx, reg, rows)
    if profile_id is not None and reg.enrich_profile and len(duplicate_ids) < len(event_ids):
        enrich_profile(tx, profile_id, reg)
    return Registered(profile_id, event_ids, duplicate_ids)


def _insert_idempotent(
    tx: Tx, reg: Registration, rows: list[tuple[Any, ...]]
) -> tuple[list[int], list[int]]:
    """Store each event once per (database, external_type, external_event_id, goal name).

    A repeat with the same payload stores nothing and reports the stored event; the same key
    with another payload is a 409 that names the key (issue 5). The payload leaves out what a
    retry cannot keep equal: the server-side receive time, the matched profile, the token.
    """
    # Only what the client sent: values derived by enrichment may change with a new database.
    derived = reg.attrs["sources"] or {}
    payload = tuple(
        v for k, v in reg.attrs.items() if k != "sources" and derived.get(k, "request") == "request"
    )
    common = (
        reg.pixel_id, reg.matching, reg.match.kind, reg.match.field, reg.match.value,
        reg.date_raw, reg.is_test, reg.skip_triggers, reg.enrich_profile, payload,
    )  # fmt: skip
    event_ids: list[int] = []
    duplicate_ids: list[int] = []
    for goal, row in zip(reg.goals, rows, strict=True):
        fingerprint = dedupe.fingerprint((goal.name, goal.value, *common))
        event_id, stored = q.insert_event_once(tx, (*row, fingerprint))
        if stored is not None:
            if stored != fingerprint:
                raise Conflict(
                    f"external_event_id: {reg.attrs['external_type']!r}/"
                    f"{reg.attrs['external_event_id']!r} for goal {goal.name!r} was already "
                    f"stored with a different payload (event {event_id})"
                )
            duplicate_ids.append(event_id)
        event_ids.append(event_id)
    return event_ids, duplicate_ids


def enrich_profile(tx: Tx, profile_id: str, reg: Registration) -> None:
    """Write the event's system values onto the profile unless newer values are there."""
    values = dict(reg.attrs)
    values["ip"] = reg.attrs["client_ip"] or reg.attrs["client_ip_v4"] or reg.attrs["client_ip_v6"]
    for field, source in PROFILE_ENRICHMENT:
        value = values.get(source)
        if value is not None:
            q.write_field(tx, profile_id, field, value, reg.event_at, newer_only=True)


async def handle(deps: Deps, ctx: Context, req: RegisterRequest) -> dict[str, Any]:
    reg = validate.registration(
        req,
        now=ctx.now,
        max_future_seconds=deps.settings.max_future_seconds,
        phone_region=deps.settings.default_phone_region,
    )
    deps.enricher.apply(reg.attrs)
    token_hash = ctx.token_hash()
    received_at = ctx.now_iso
    guard = ctx.guard
    cache = deps.auth_cache

    def work(tx: Tx) -> dict[str, Any]:
        return store_registration(tx, reg, token_hash, received_at, cache).reply()

    reply = await deps.store.write(lambda tx: dedupe.once(tx, guard, work))
    stored = len(reply["event_ids"]) - len(reply.get("duplicate_event_ids", ()))
    deps.metrics.events_stored += stored
    return reply
