"""Profiles: finding one by its match key, creating and updating them, and the two
Altcraft-shaped methods ``profiles/import`` and ``profiles/get``.

Units of work here are plain functions of a UnitOfWork; the handlers at the bottom run them
through the store. Profile data keeps every field with the time its value describes, so an
import (time: now) and event enrichment (time: the event's date) never overwrite newer data
with older.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.errors import ApiError, Conflict, InvalidRequest, NotFound
from goalline.model import SYSTEM_FIELDS, MatchKey
from goalline.pipeline import dedupe, match, stitch
from goalline.pipeline.auth import authorise_database
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import ProfileGetRequest, ProfileImportRequest
from goalline.pipeline.validate import check_string, required_id
from goalline.storage.ports import Retry, UnitOfWork

BUILTIN_FIELDS = ("email", "phones")
MAX_PHONES = 20


def new_profile_id() -> str:
    """24 hex characters like Altcraft's ids; time first, so ids sort by creation."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a match key found: the profile (None: no profile holds the key) and the text the
    key is recorded under on an event (a custom value as its field's type spells it)."""

    profile_id: str | None
    key_text: str


FieldsOf = Callable[[int], Mapping[str, str]]


def fields_reader(uow: UnitOfWork) -> FieldsOf:
    """A database's fields, read at most once per transaction."""
    read: dict[int, dict[str, str]] = {}

    def fields_of(db_id: int) -> Mapping[str, str]:
        if db_id not in read:
            read[db_id] = uow.fields_of(db_id)
        return read[db_id]

    return fields_of


def resolve(uow: UnitOfWork, db_id: int, key: MatchKey) -> str | None:
    """The one profile ``key`` names in ``db_id``; None if none; 409 if several."""
    (found,) = resolve_many(uow, [(db_id, key)])
    if isinstance(found, ApiError):
        raise found
    return found.profile_id


def resolve_many(
    uow: UnitOfWork, wanted: Sequence[tuple[int, MatchKey]], fields_of: FieldsOf | None = None
) -> list[Resolved | ApiError]:
    """Every (database, key) pair's profile, with one query per database and field for keys
    by profile id, email or phone, whatever their number (custom keys: one query each, as a
    custom field need not be unique). Each answer is a Resolved, or the error a lookup of that
    key alone raises (400 for a custom field the database lacks, 409 for a key that several
    profiles hold)."""
    fields_of = fields_of or fields_reader(uow)
    results: list[Resolved | ApiError | None] = [None] * len(wanted)
    by_id: dict[int, list[int]] = {}
    by_key: dict[tuple[int, str], list[int]] = {}
    for i, (db_id, key) in enumerate(wanted):
        if key.kind == "profile_id":
            by_id.setdefault(db_id, []).append(i)
        elif key.kind != "custom":
            assert key.field is not None
            by_key.setdefault((db_id, key.field), []).append(i)
        else:
            assert key.field is not None
            try:
                texts = match.key_texts_for(key, fields_of(db_id), db_id)
                found = uow.find_profiles(db_id, key.field, texts)
                results[i] = _one(db_id, key, found, ", ".join(texts))
            except ApiError as exc:
                results[i] = exc
    for db_id, members in by_id.items():
        present = uow.profiles_in_database_of(db_id, [wanted[i][1].value for i in members])
        for i in members:
            value = wanted[i][1].value
            results[i] = Resolved(value if value in present else None, value)
    for (db_id, name), members in by_key.items():
        owners: dict[str, list[str]] = {}
        for owned, profile_id in uow.key_owners(db_id, name, [wanted[i][1].value for i in members]):
            owners.setdefault(owned, []).append(profile_id)
        for i in members:
            key = wanted[i][1]
            results[i] = _one(db_id, key, sorted(owners.get(key.value, [])), key.value)
    answered: list[Resolved | ApiError] = []
    for result in results:
        if result is None:  # a slot left out would shift every later answer to another key
            raise AssertionError("resolve_many: a key was not answered")
        answered.append(result)
    return answered


def _one(db_id: int, key: MatchKey, found: list[str], key_text: str) -> Resolved | ApiError:
    if len(found) > 1:
        return ambiguous(db_id, key, found)
    return Resolved(found[0] if found else None, key_text)


def ambiguous(db_id: int, key: MatchKey, found: Sequence[str]) -> Conflict:
    """409: ``key`` names several profiles (found in id order)."""
    return Conflict(
        f"matching: {key.describe()} matches more than one profile in database {db_id} "
        f"({', '.join(found[:2])}); match by a unique field instead"
    )


def no_profile_id(db_id: int, profile_id: str) -> NotFound:
    """404 for matching by profile_id, which never creates a profile."""
    return NotFound(
        f"profile_id: no profile {profile_id!r} in database {db_id} "
        "(matching by profile_id only updates)"
    )


def key_taken(db_id: int, name: str, owner: str) -> Conflict:
    """409: a unique key (email, phone) of ``data.<name>`` belongs to another profile."""
    return Conflict(f"data.{name}: already belongs to profile {owner} in database {db_id}")


def no_profile(db_id: int, key: MatchKey) -> NotFound:
    return NotFound(f"profile: no profile with {key.describe()} in database {db_id}")


def clean_data(
    data: dict[str, Any], fields: dict[str, str], db_id: int, phone_region: str
) -> dict[str, Any]:
    """Profile ``data`` checked and typed: email, phones, system fields, declared custom fields."""
    out: dict[str, Any] = {}
    for name, raw in data.items():
        path = f"data.{name}"
        if raw is None:
            continue
        if name == "email":
            if not isinstance(raw, str):
                raise InvalidRequest.field(path, "must be a string")
            check_string(path, raw)
            out[name] = match.normalise_email(raw, path)
        elif name == "phones":
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
                raise InvalidRequest.field(path, "must be a list of phone numbers")
            if len(items) > MAX_PHONES:
                raise InvalidRequest.field(path, f"more than {MAX_PHONES} phone numbers")
            phones = [
                match.normalise_phone(p, phone_region, f"{path}[{i}]") for i, p in enumerate(items)
            ]
            out[name] = list(dict.fromkeys(phones))
        elif name.startswith("_"):
            if name not in SYSTEM_FIELDS:
                raise InvalidRequest.field(path, "not a system field")
            if isinstance(raw, (dict, list)):
                raise InvalidRequest.field(path, "must be a scalar")
            if isinstance(raw, str):
                check_string(path, raw)
            out[name] = raw
        elif name in fields:
            out[name] = match.typed_value(fields[name], raw, path)
        else:
            raise InvalidRequest.field(
                path, f"database {db_id} has no field {name!r} (add it: goalline db field add)"
            )
    return out


def index_keys(fields: dict[str, str], data: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(match kind, field, text keys) for every searchable value in clean ``data``."""
    out: list[tuple[str, str, list[str]]] = []
    for name, value in data.items():
        if name == "email":
            out.append(("email", "email", [value]))
        elif name == "phones":
            out.append(("phone", "phones", list(value)))
        elif name in fields:
            out.append(("custom", name, match.key_texts(fields[name], value)))
    return out


def save(
    uow: UnitOfWork,
    *,
    db_id: int,
    profile_id: str,
    data: dict[str, Any],
    fields: dict[str, str],
    now: str,
) -> None:
    """Write clean ``data`` onto a profile, re-index its keys and stitch waiting events."""
    owners: dict[tuple[str, str], dict[str, str]] = {}
    for kind, name, keys in index_keys(fields, data):
        uow.drop_keys(profile_id, name)
        if not uow.add_keys(db_id, profile_id, name, keys):
            owner = next(
                (o for k in keys if (o := uow.key_owner(db_id, name, k)) != profile_id), None
            )
            if owner is None:  # the other writer's transaction went away: try again
                raise Retry()
            raise key_taken(db_id, name, owner)
        owners[(kind, name)] = dict.fromkeys(keys, profile_id)
    # attach waiting events and replay their enrichment (issue 4; tags never match events)
    stitch.attach_all(uow, db_id=db_id, fields=fields, owners=owners)
    encode = msgspec.json.encode
    uow.write_fields([(profile_id, n, encode(v).decode(), now) for n, v in sorted(data.items())])
    uow.touch_profile(profile_id, now)


def create(
    uow: UnitOfWork, *, db_id: int, data: dict[str, Any], fields: dict[str, str], now: str
) -> str:
    profile_id = new_profile_id()
    uow.create_profile(db_id=db_id, profile_id=profile_id, now=now)
    save(uow, db_id=db_id, profile_id=profile_id, data=data, fields=fields, now=now)
    return profile_id


def data_from_key(key: MatchKey, fields: Mapping[str, str]) -> dict[str, Any]:
    """The profile data a match key implies (a profile created for the key starts with it)."""
    if key.kind == "profile_id":
        return {}
    if key.kind == "email":
        return {"email": key.value}
    if key.kind == "phone":
        return {"phones": [key.value]}
    assert key.kind == "custom" and key.field is not None
    return {key.field: match.typed_value(fields[key.field], key.value, "field_value")}


# -- profiles/import --------------------------------------------------------------------------


def import_profile(
    uow: UnitOfWork,
    *,
    token_hash: str,
    req: ProfileImportRequest,
    key: MatchKey,
    phone_region: str,
    now: str,
) -> tuple[str, bool]:
    """Create or update the profile ``key`` names; return (profile_id, created)."""
    assert req.db_id is not None
    authorise_database(uow, token_hash, req.db_id)
    fields = uow.fields_of(req.db_id)
    data = clean_data(req.data or {}, fields, req.db_id, phone_region)
    profile_id = resolve(uow, req.db_id, key)
    if profile_id is None:
        if key.kind == "profile_id":
            raise no_profile_id(req.db_id, key.value)
        data = {**data_from_key(key, fields), **data}
        return create(uow, db_id=req.db_id, data=data, fields=fields, now=now), True
    save(uow, db_id=req.db_id, profile_id=profile_id, data=data, fields=fields, now=now)
    return profile_id, False


async def handle_import(deps: Deps, ctx: Context, req: ProfileImportRequest) -> dict[str, Any]:
    required_id(req.db_id, "db_id")
    if req.data is not None and not isinstance(req.data, dict):
        raise InvalidRequest.field("data", "must be an object")
    key = match.match_key(req, phone_region=deps.settings.default_phone_region, data=req.data)
    token_hash = ctx.token_hash()
    region = deps.settings.default_phone_region
    now = ctx.now_iso

    def work(uow: UnitOfWork) -> dict[str, Any]:
        profile_id, _ = import_profile(
            uow, token_hash=token_hash, req=req, key=key, phone_region=region, now=now
        )
        return {"profile_id": profile_id}

    return await deps.store.write(lambda uow: dedupe.once(uow, ctx.guard, work))


# -- profiles/get -----------------------------------------------------------------------------


def get_profile(uow: UnitOfWork, token_hash: str, db_id: int, key: MatchKey) -> dict[str, Any]:
    authorise_database(uow, token_hash, db_id)
    profile_id = resolve(uow, db_id, key)
    if profile_id is None:
        raise no_profile(db_id, key)
    meta = uow.profile_meta(db_id, profile_id)
    assert meta is not None
    fields = uow.profile_fields(profile_id)
    return {
        "id": profile_id,
        "db_id": db_id,
        "_createtime": meta[0],
        "_updatetime": meta[1],
        **fields,
    }


async def handle_get(deps: Deps, ctx: Context, req: ProfileGetRequest) -> dict[str, Any]:
    db_id = required_id(req.db_id, "db_id")
    key = match.match_key(req, phone_region=deps.settings.default_phone_region)
    token_hash = ctx.token_hash()
    profile = await deps.store.read(lambda uow: get_profile(uow, token_hash, db_id, key))
    return {"profile_id": profile["id"], "data": profile}
