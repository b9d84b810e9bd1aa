"""``goals/register``: validate → authorise → match → store → enrich the profile, in one unit
of work (SPEC §2). The reply is built only after the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from goalline.errors import NotFound
from goalline.model import PROFILE_ENRICHMENT, Registration
from goalline.pipeline import profiles, validate
from goalline.pipeline.auth import authorise_database, authorise_pixel
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import RegisterRequest
from goalline.storage import queries as q
from goalline.storage.store import Tx


@dataclass(frozen=True)
class Registered:
    profile_id: str | None
    event_ids: list[int]


def store_registration(tx: Tx, reg: Registration, token_hash: str, received_at: str) -> Registered:
    """The unit of work: everything a registration writes, or nothing."""
    token, policy = authorise_database(tx, token_hash, reg.db_id)
    authorise_pixel(tx, reg.pixel_id, reg.db_id)
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
        profile_id = profiles.create(
            tx,
            db_id=reg.db_id,
            data=profiles.data_from_key(key, fields),
            fields=fields,
            now=received_at,
        )
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
    rows = [(*head, goal.name, goal.value, *tail) for goal in reg.goals]
    event_ids = q.insert_events(tx, rows)
    if profile_id is not None and reg.enrich_profile:
        enrich_profile(tx, profile_id, reg)
    return Registered(profile_id, event_ids)


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
    token_hash = ctx.token_hash()
    received_at = ctx.now_iso
    done = await deps.store.write(lambda tx: store_registration(tx, reg, token_hash, received_at))
    reply: dict[str, Any] = {}
    if done.profile_id is not None:
        reply["profile_id"] = done.profile_id
    reply["event_ids"] = done.event_ids
    return reply
