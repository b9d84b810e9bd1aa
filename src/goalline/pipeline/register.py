"""``goals/register``: validate → authorise → deduplicate → match → store → enrich the profile,
in one unit of work (SPEC §2). The reply is built only after the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.errors import ApiError, Conflict, NotFound
from goalline.model import PROFILE_ENRICHMENT, Registration, TokenInfo
from goalline.pipeline import dedupe, profiles, validate
from goalline.pipeline.auth import AuthCache, authorise_database, authorise_pixel
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import RegisterRequest
from goalline.storage import queries as q
from goalline.storage.store import Batched, Outcome, Retry, Tx


@dataclass(slots=True)
class Registered:
    profile_id: str | None
    event_ids: list[int]
    #: Events whose external_type + external_event_id were already stored with this payload.
    duplicate_ids: list[int]

    @property
    def stores_new(self) -> bool:
        """Whether any event is new (a pure repeat does not enrich the profile again)."""
        return len(self.duplicate_ids) < len(self.event_ids)

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
            raise _no_profile(reg)
        fields = q.fields_of(tx, reg.db_id)
        data = profiles.data_from_key(key, fields)
        profile_id = profiles.create(tx, db_id=reg.db_id, data=data, fields=fields, now=received_at)
    template = _template(reg, profile_id, match_key, token.id, received_at)
    if reg.attrs["external_event_id"] is None:
        (event_ids,) = q.insert_events(tx, [(template, reg.goals)])
        duplicate_ids: list[int] = []
    else:
        event_ids, duplicate_ids = _insert_idempotent(tx, reg, template)
    registered = Registered(profile_id, event_ids, duplicate_ids)
    if profile_id is not None and reg.enrich_profile and registered.stores_new:
        enrich_profile(tx, profile_id, reg)
    return registered


def _no_profile(reg: Registration) -> NotFound:
    return NotFound(f"profile: no profile with {reg.match.describe()} in database {reg.db_id}")


def _template(
    reg: Registration, profile_id: str | None, match_key: str, token_id: int, received_at: str
) -> tuple[Any, ...]:
    """The values ``reg``'s events share, in EVENT_COLUMNS order: goal, value and fingerprint
    are None here (see queries.insert_events)."""
    key = reg.match
    head = (reg.db_id, reg.pixel_id, profile_id, reg.matching, key.kind, key.field, match_key)
    tail = (
        reg.event_at,
        reg.date_raw,
        received_at,
        reg.is_test,
        reg.skip_triggers,
        reg.enrich_profile,
        token_id,
        *reg.attrs.values(),
    )
    if reg.attrs["sources"]:  # a dict while the pipeline reads it; JSON text in the row
        tail = (*tail[:-1], msgspec.json.encode(reg.attrs["sources"]).decode())
    return (*head, None, None, *tail, None)


@dataclass(slots=True)  # one per request: plain slots, as frozen init costs 2x
class Pending:
    """A validated registration waiting for its group to be written."""

    reg: Registration
    token_hash: str
    received_at: str
    guard: dedupe.Guard | None
    cache: AuthCache

    def run(self, tx: Tx) -> dict[str, Any]:
        """The registration on its own: the unit of work, at most once."""

        def work(tx: Tx) -> dict[str, Any]:
            registered = store_registration(
                tx, self.reg, self.token_hash, self.received_at, self.cache
            )
            return registered.reply()

        return dedupe.once(tx, self.guard, work)


def store_many(tx: Tx, items: list[Pending]) -> list[Outcome | None]:
    """Many registrations of one group, with a fixed number of statements for all of them.

    The common case (an event for a profile looked up by id, email or phone) is planned for
    every item first: request-log replies, auth and profile lookups, each read with one query
    for the batch. Then the events go into one multi-row INSERT (another for those with an
    ``external_event_id``, which skips keys already stored), the profile enrichment into one
    upsert, and the replies into one request-log INSERT. The rest (creating a profile,
    custom-field keys, a key seen twice or due for take-over) gets outcome None and runs on
    its own right after, through ``Pending.run``: same rules, one code path for the decisions.
    An error outcome is only given before anything is written; an external id stored with
    another payload (a 409 after some writes) makes the whole batch run unit by unit instead.
    """
    outcomes: list[Outcome | None] = [None] * len(items)
    keys = [item.guard.key for item in items if item.guard is not None]
    log = dedupe.logged(tx, keys) if keys else {}
    seen: set[str] = set()
    databases: dict[int, Any] = {}
    planned: list[tuple[int, Pending, TokenInfo, str]] = []
    for i, item in enumerate(items):
        reg, guard = item.reg, item.guard
        if guard is not None:
            if guard.key in log:
                done = dedupe.replayed(guard, log[guard.key])
                if done is not None:
                    outcomes[i] = (None, done)
                continue  # an expired key to take over: on its own
            if guard.key in seen:
                continue  # its twin runs in the batch; this one then finds the twin's reply
            seen.add(guard.key)
        if reg.match.kind == "custom":
            continue
        try:
            token, policy = authorise_database(
                tx, item.token_hash, reg.db_id, item.cache, databases
            )
            authorise_pixel(tx, reg.pixel_id, reg.db_id, item.cache)
        except ApiError as exc:
            outcomes[i] = (None, exc)
            continue
        planned.append((i, item, token, policy))
    found = profiles.resolve_many(
        tx, [(item.reg.db_id, item.reg.match) for _, item, _, _ in planned]
    )
    events: list[q.EventGroup] = []
    once: list[tuple[Any, ...]] = []
    writes: list[tuple[int, Pending, str | None, tuple[int, list[tuple[Any, ...]]] | None]] = []
    for (i, item, token, policy), profile_id in zip(planned, found, strict=True):
        reg = item.reg
        if isinstance(profile_id, ApiError):
            outcomes[i] = (None, profile_id)
            continue
        if profile_id is None and policy != "record":
            if policy == "reject" or reg.match.kind == "profile_id":
                outcomes[i] = (None, _no_profile(reg))
            continue  # policy create: creating the profile is done on its own
        template = _template(reg, profile_id, reg.match.value, token.id, item.received_at)
        if reg.attrs["external_event_id"] is None:
            events.append((template, reg.goals))
            writes.append((i, item, profile_id, None))
        else:
            rows = _once_rows(reg, template)
            writes.append((i, item, profile_id, (len(once), rows)))
            once.extend(rows)
    plain = iter(q.insert_events(tx, events) if events else ())
    stored = q.insert_events_once(tx, once) if once else []
    fields: list[tuple[str, str, str, str]] = []
    logged: list[tuple[dedupe.Guard, dict[str, Any]]] = []
    for i, item, profile_id, idempotent in writes:
        if idempotent is None:
            registered = Registered(profile_id, next(plain), [])
        else:
            start, rows = idempotent
            try:
                ids, repeats = _settle_once(item.reg, rows, stored[start : start + len(rows)])
            except Conflict:
                raise Retry() from None  # its other goals may be written: run it alone
            registered = Registered(profile_id, ids, repeats)
        if profile_id is not None and item.reg.enrich_profile and registered.stores_new:
            fields.extend(_enrichment(profile_id, item.reg))
        data = registered.reply()
        outcomes[i] = (data, None)
        if item.guard is not None:
            logged.append((item.guard, data))
    if fields:
        q.write_fields_newer(tx, fields)
    if logged and not dedupe.record(tx, logged):
        raise Retry()  # another process logged one of these keys: each runs on its own
    return outcomes


def _insert_idempotent(
    tx: Tx, reg: Registration, template: tuple[Any, ...]
) -> tuple[list[int], list[int]]:
    """Store each event once per (database, external_type, external_event_id, goal name)."""
    rows = _once_rows(reg, template)
    return _settle_once(reg, rows, q.insert_events_once(tx, rows))


def _once_rows(reg: Registration, template: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Full event rows of ``reg`` with each goal's payload fingerprint.

    The payload leaves out what a retry cannot keep equal: the server-side receive time, the
    matched profile, the token, and values derived by enrichment (a new GeoIP database may
    change them).
    """
    derived = reg.attrs["sources"] or {}
    payload = tuple(
        v for k, v in reg.attrs.items() if k != "sources" and derived.get(k, "request") == "request"
    )
    common = (
        reg.pixel_id, reg.matching, reg.match.kind, reg.match.field, reg.match.value,
        reg.date_raw, reg.is_test, reg.skip_triggers, reg.enrich_profile, payload,
    )  # fmt: skip
    return [
        q.event_row(template, name, value, dedupe.fingerprint((name, value, *common)))
        for name, value in reg.goals
    ]


def _settle_once(
    reg: Registration, rows: list[tuple[Any, ...]], results: list[tuple[int, str | None]]
) -> tuple[list[int], list[int]]:
    """Event ids and the ids of repeats; a stored event with the same key and another payload
    is a 409 that names the key (issue 5)."""
    event_ids: list[int] = []
    duplicate_ids: list[int] = []
    for goal, row, (event_id, stored) in zip(reg.goals, rows, results, strict=True):
        if stored is not None:
            if stored != row[-1]:
                raise Conflict(
                    f"external_event_id: {reg.attrs['external_type']!r}/"
                    f"{reg.attrs['external_event_id']!r} for goal {goal.name!r} was already "
                    f"stored with a different payload (event {event_id})"
                )
            duplicate_ids.append(event_id)
        event_ids.append(event_id)
    return event_ids, duplicate_ids


def _enrichment(profile_id: str, reg: Registration) -> list[tuple[str, str, str, str]]:
    """The profile fields an event writes: (profile_id, field, JSON value, the event's time)."""
    values = reg.attrs
    ip = values["client_ip"] or values["client_ip_v4"] or values["client_ip_v6"]
    out = []
    for field, source in PROFILE_ENRICHMENT:
        value = ip if source == "ip" else values.get(source)
        if value is not None:
            out.append((profile_id, field, msgspec.json.encode(value).decode(), reg.event_at))
    return out


def enrich_profile(tx: Tx, profile_id: str, reg: Registration) -> None:
    """Write the event's system values onto the profile unless newer values are there."""
    q.write_fields_newer(tx, _enrichment(profile_id, reg))


async def handle(deps: Deps, ctx: Context, req: RegisterRequest) -> dict[str, Any]:
    reg = validate.registration(
        req,
        now=ctx.now,
        max_future_seconds=deps.settings.max_future_seconds,
        phone_region=deps.settings.default_phone_region,
        now_iso=ctx.now_iso,
    )
    deps.enricher.apply(reg.attrs)
    pending = Pending(reg, ctx.token_hash(), ctx.now_iso, ctx.guard, deps.auth_cache)
    reply = await deps.store.write(pending.run, batch=Batched(store_many, pending))
    stored = len(reply["event_ids"]) - len(reply.get("duplicate_event_ids", ()))
    deps.metrics.events_stored += stored
    return reply
