"""``goals/register``: validate → authorise → deduplicate → match → store → enrich the profile,
in one unit of work (SPEC §2). The reply is built only after the transaction commits.

One function writes registrations: ``register_group``. A request alone is a group of one, so
the group commit's batch of a hundred and a request on its own take the same code; batching
only decides how many statements carry the writes (one INSERT for a group's events, one for
its request-log entries, one upsert for its profile enrichment). Anything else a registration
must write in its own transaction (trigger outbox rows, segment state) goes in
``_write_group``, which sees every planned registration of the group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from goalline.errors import ApiError, Conflict
from goalline.model import Database, EventDraft, Registration
from goalline.pipeline import dedupe, profiles, validate
from goalline.pipeline.auth import AuthCache, authorise_database, authorise_pixel
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.enrich import profile_values
from goalline.pipeline.requests import RegisterRequest
from goalline.storage.ports import Batched, Outcome, Retry, UnitOfWork


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


@dataclass(slots=True)  # one per request: plain slots, as frozen init costs 2x
class Pending:
    """A validated registration waiting for its group to be written."""

    reg: Registration
    token_hash: str
    received_at: str
    guard: dedupe.Guard | None
    cache: AuthCache

    def run(self, uow: UnitOfWork) -> dict[str, Any]:
        """The registration on its own: a group of one."""
        (outcome,) = register_group(uow, [self])
        assert outcome is not None
        value, error = outcome
        if error is not None:
            raise error
        assert isinstance(value, dict)
        return value


@dataclass(slots=True)
class _Planned:
    """One registration of the group, matched and ready to write."""

    index: int
    item: Pending
    draft: EventDraft
    #: The guard's log entry expired: the reply replaces it instead of a new entry.
    takes_over: bool
    registered: Registered | None = None


@dataclass(slots=True)
class _Group:
    """What the group's registrations share while they are planned."""

    uow: UnitOfWork
    databases: dict[int, Database | None] = field(default_factory=dict)
    #: Databases in which an earlier registration of the group created a profile: a later one
    #: that found no profile looks again, as it would in a transaction of its own (a tags key
    #: "a" finds the profile created for "a, b").
    created_in: set[int] = field(default_factory=set)


def register_group(uow: UnitOfWork, items: Sequence[Pending]) -> list[Outcome | None]:
    """Store every registration of ``items`` in ``uow``; one outcome each, in order.

    An outcome that is an error was refused before anything of it was written. A 409 found
    only while writing (an external id stored with another payload) or a request key taken by
    another process meanwhile raises instead: the store then rolls the group back and runs
    each registration as a group of its own, which settles it exactly.
    """
    outcomes: list[Outcome | None] = [None] * len(items)
    keys = [item.guard.key for item in items if item.guard is not None]
    log = dedupe.logged(uow, keys) if keys else {}
    claimed: set[str] = set()
    twins: list[int] = []
    ready: list[tuple[int, Pending, bool]] = []
    for i, item in enumerate(items):
        guard, takes_over = item.guard, False
        if guard is not None:
            row = log.get(guard.key)
            if row is not None:
                done = dedupe.replayed(guard, row)
                if done is not None:
                    outcomes[i] = (None, done)
                    continue
                takes_over = True  # an expired entry: this request is new
            if guard.key in claimed:
                twins.append(i)  # after its twin is written, it finds the twin's reply
                continue
            claimed.add(guard.key)
        ready.append((i, item, takes_over))
    group = _Group(uow)
    planned: list[_Planned] = []
    for (i, item, takes_over), draft in zip(ready, _plan_all(group, ready), strict=True):
        if isinstance(draft, ApiError):
            outcomes[i] = (None, draft)
        else:
            planned.append(_Planned(i, item, draft, takes_over))
    _write_group(uow, planned)
    for p in planned:
        assert p.registered is not None
        outcomes[p.index] = (p.registered.reply(), None)
    if twins:
        again = register_group(uow, [items[i] for i in twins])
        for i, outcome in zip(twins, again, strict=True):
            outcomes[i] = outcome
    return outcomes  # every one set: a registration is refused, replayed or written


def _plan_all(group: _Group, ready: list[tuple[int, Pending, bool]]) -> list[EventDraft | ApiError]:
    """Authorise and match every registration (profile lookups read once for the group), then
    decide each one's profile in order: matched, recorded unmatched, created, or refused."""
    uow = group.uow
    fields_of = profiles.fields_reader(uow)
    authorised: list[tuple[Pending, int, str] | ApiError] = []
    for _, item, _ in ready:
        reg = item.reg
        try:
            token, policy = authorise_database(
                uow, item.token_hash, reg.db_id, item.cache, group.databases
            )
            authorise_pixel(uow, reg.pixel_id, reg.db_id, item.cache)
        except ApiError as exc:
            authorised.append(exc)
            continue
        authorised.append((item, token.id, policy))
    wanted = [(a[0].reg.db_id, a[0].reg.match) for a in authorised if not isinstance(a, ApiError)]
    found = iter(profiles.resolve_many(uow, wanted, fields_of))
    out: list[EventDraft | ApiError] = []
    for entry in authorised:
        if isinstance(entry, ApiError):
            out.append(entry)
            continue
        item, token_id, policy = entry
        resolved = next(found)
        try:
            if isinstance(resolved, ApiError):
                raise resolved
            profile_id = _profile_of(group, item, resolved, policy, fields_of)
        except ApiError as exc:
            out.append(exc)
            continue
        out.append(EventDraft(item.reg, profile_id, resolved.key_text, token_id, item.received_at))
    return out


def _profile_of(
    group: _Group,
    item: Pending,
    resolved: profiles.Resolved,
    policy: str,
    fields_of: profiles.FieldsOf,
) -> str | None:
    """The registration's profile under its database's unknown-profile policy (SPEC §2)."""
    reg = item.reg
    if resolved.profile_id is None and reg.db_id in group.created_in:
        (again,) = profiles.resolve_many(group.uow, [(reg.db_id, reg.match)], fields_of)
        if isinstance(again, ApiError):
            raise again
        resolved = again
    if resolved.profile_id is not None:
        return resolved.profile_id
    if policy == "record":
        return None
    if policy == "reject" or reg.match.kind == "profile_id":
        raise profiles.no_profile(reg.db_id, reg.match)
    fields = dict(fields_of(reg.db_id))
    data = profiles.data_from_key(reg.match, fields)
    with group.uow.savepoint():  # a refused creation leaves nothing of itself behind
        profile_id = profiles.create(
            group.uow, db_id=reg.db_id, data=data, fields=fields, now=item.received_at
        )
    group.created_in.add(reg.db_id)
    return profile_id


def _write_group(uow: UnitOfWork, planned: list[_Planned]) -> None:
    """Everything the group's planned registrations write, with a fixed number of statements:
    events, profile enrichment, request-log entries. The one place that says "and also write
    this in the same transaction"."""
    plain = [p for p in planned if p.draft.reg.attrs["external_event_id"] is None]
    once = [p for p in planned if p.draft.reg.attrs["external_event_id"] is not None]
    for p, ids in zip(plain, uow.insert_events([p.draft for p in plain]), strict=True):
        p.registered = Registered(p.draft.profile_id, ids, [])
    for p in once:
        p.draft.fingerprints = _fingerprints(p.draft.reg)
    stored = uow.insert_events_once([p.draft for p in once]) if once else []
    for p, results in zip(once, stored, strict=True):
        ids, repeats = _settle_once(p.draft, results)
        p.registered = Registered(p.draft.profile_id, ids, repeats)
    fields: list[tuple[str, str, str, str]] = []
    logged: list[tuple[dedupe.Guard, dict[str, Any]]] = []
    for p in planned:
        assert p.registered is not None
        reg, profile_id = p.draft.reg, p.draft.profile_id
        if profile_id is not None and reg.enrich_profile and p.registered.stores_new:
            fields.extend(enrichment(profile_id, reg))
        guard = p.item.guard
        if guard is not None:
            if p.takes_over:
                dedupe.take_over(uow, guard, p.registered.reply())
            else:
                logged.append((guard, p.registered.reply()))
    if fields:
        uow.write_fields_newer(fields)
    if logged and not dedupe.record(uow, logged):
        raise Retry()  # another process logged one of these keys: each runs on its own


def _fingerprints(reg: Registration) -> tuple[str, ...]:
    """Each goal's payload fingerprint, for external-id idempotency.

    The payload leaves out what a retry cannot keep equal: the server-side receive time, the
    matched profile, the token, and values derived by enrichment (a new GeoIP database may
    change them). It is the normalised event, so the same event sent as JSON and as XML has
    one fingerprint: ``pixel_data`` is compared as XML can spell it (``_comparable_pixel_data``);
    every other field is typed by its struct already (docs/api.md "Idempotent events").
    """
    derived = reg.attrs["sources"] or {}
    payload = tuple(
        _comparable_pixel_data(v) if k == "pixel_data" else v
        for k, v in reg.attrs.items()
        if k != "sources" and derived.get(k, "request") == "request"
    )
    common = (
        reg.pixel_id, reg.matching, reg.match.kind, reg.match.field, reg.match.value,
        reg.date_raw, reg.is_test, reg.skip_triggers, reg.enrich_profile, payload,
    )  # fmt: skip
    return tuple(dedupe.fingerprint((name, value, *common)) for name, value in reg.goals)


def _comparable_pixel_data(text: str | None) -> str | None:
    """``pixel_data`` (validated, compact JSON text) in the form a fingerprint compares: XML
    carries only text, so every scalar becomes the text XML would carry (``56893``, ``true``),
    an empty string is absent (``<a></a>``), an array of one item is that item (``<arr>``
    once), an absent value is no key (``null`` means absent), and keys are sorted."""
    if text is None:
        return None
    data: dict[str, Any] = msgspec.json.decode(text)
    values = ((key, _comparable_value(data[key])) for key in sorted(data))
    comparable = {key: value for key, value in values if value is not None}
    return msgspec.json.encode(comparable).decode() if comparable else None


def _comparable_value(value: Any) -> Any:
    if isinstance(value, list):
        items = [_comparable_scalar(item) for item in value]
        return items[0] if len(items) == 1 else items
    return _comparable_scalar(value)


def _comparable_scalar(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    return msgspec.json.encode(value).decode()  # a number as JSON writes it, true, false


def _settle_once(
    draft: EventDraft, results: list[tuple[int, str | None]]
) -> tuple[list[int], list[int]]:
    """Event ids and the ids of repeats; a stored event with the same key and another payload
    is a 409 that names the key (issue 5)."""
    reg = draft.reg
    assert draft.fingerprints is not None
    event_ids: list[int] = []
    duplicate_ids: list[int] = []
    for goal, fingerprint, (event_id, stored) in zip(
        reg.goals, draft.fingerprints, results, strict=True
    ):
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


def enrichment(profile_id: str, reg: Registration) -> list[tuple[str, str, str, str]]:
    """The profile fields an event writes: (profile_id, field, JSON value, the event's time)."""
    return [(profile_id, name, text, reg.event_at) for name, text in profile_values(reg.attrs)]


async def handle(deps: Deps, ctx: Context, req: RegisterRequest) -> dict[str, Any]:
    reg = validate.registration(
        req,
        now=ctx.now,
        max_future_seconds=deps.settings.max_future_seconds,
        phone_region=deps.settings.default_phone_region,
        now_iso=ctx.now_iso,
        max_goals=deps.settings.max_goals,
    )
    deps.enricher.apply(reg.attrs)
    pending = Pending(reg, ctx.token_hash(), ctx.now_iso, ctx.guard, deps.auth_cache)
    reply = await deps.store.write(pending.run, batch=Batched(register_group, pending))
    stored = len(reply["event_ids"]) - len(reply.get("duplicate_event_ids", ()))
    deps.metrics.events_stored += stored
    return reply
