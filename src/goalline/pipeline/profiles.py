"""Profiles: finding one by its match key, creating and updating them, and the two
Altcraft-shaped methods ``profiles/import`` and ``profiles/get``.

Units of work here are plain functions of a Tx; the handlers at the bottom run them through the
store. Profile data keeps every field with the time its value describes, so an import (time: now)
and event enrichment (time: the event's date) never overwrite newer data with older.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from goalline.errors import ApiError, Conflict, InvalidRequest, NotFound
from goalline.model import SYSTEM_FIELDS, MatchKey
from goalline.pipeline import dedupe, match, stitch
from goalline.pipeline.auth import authorise_database
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import ProfileGetRequest, ProfileImportRequest
from goalline.pipeline.validate import check_string, required_id
from goalline.storage import queries as q
from goalline.storage.store import Retry, Tx

BUILTIN_FIELDS = ("email", "phones")
MAX_PHONES = 20


def new_profile_id() -> str:
    """24 hex characters like Altcraft's ids; time first, so ids sort by creation."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


def lookup(tx: Tx, db_id: int, key: MatchKey) -> tuple[str, list[str]]:
    """The profile field and text keys that ``key`` searches in database ``db_id``."""
    if key.kind != "custom":
        assert key.field is not None
        return key.field, [key.value]
    assert key.field is not None
    field_type = q.fields_of(tx, db_id).get(key.field)
    if field_type is None:
        raise InvalidRequest.field("field_name", f"database {db_id} has no field {key.field!r}")
    value = match.typed_value(field_type, key.value, "field_value")
    return key.field, match.key_texts(field_type, value)


def resolve(tx: Tx, db_id: int, key: MatchKey) -> str | None:
    """The one profile ``key`` names in ``db_id``; None if none; 409 if several."""
    if key.kind == "profile_id":
        return key.value if q.profile_in_database(tx, db_id, key.value) else None
    name, keys = lookup(tx, db_id, key)
    return _one(db_id, key, q.find_profiles(tx, db_id, name, keys))


def _one(db_id: int, key: MatchKey, found: list[str]) -> str | None:
    if len(found) > 1:
        raise Conflict(
            f"matching: {key.describe()} matches more than one profile in database {db_id} "
            f"({', '.join(found[:2])}); match by a unique field instead"
        )
    return found[0] if found else None


def resolve_many(tx: Tx, wanted: list[tuple[int, MatchKey]]) -> list[str | ApiError | None]:
    """``resolve`` for many (database, key) pairs: one query per database and field instead of
    one per key. Each answer is the profile id, None, or the error ``resolve`` would raise.
    Custom-field keys are not taken (their key texts depend on the field's type): use
    ``resolve`` for those."""
    results: list[str | ApiError | None] = [None] * len(wanted)
    by_id: dict[int, list[int]] = {}
    by_key: dict[tuple[int, str], list[int]] = {}
    for i, (db_id, key) in enumerate(wanted):
        if key.kind == "profile_id":
            by_id.setdefault(db_id, []).append(i)
        else:
            assert key.kind != "custom" and key.field is not None
            by_key.setdefault((db_id, key.field), []).append(i)
    for db_id, members in by_id.items():
        present = q.profiles_in_database_of(tx, db_id, [wanted[i][1].value for i in members])
        for i in members:
            results[i] = wanted[i][1].value if wanted[i][1].value in present else None
    for (db_id, name), members in by_key.items():
        owners: dict[str, list[str]] = {}
        for owned, profile_id in q.key_owners(
            tx, db_id, name, [wanted[i][1].value for i in members]
        ):
            owners.setdefault(owned, []).append(profile_id)
        for i in members:
            try:
                results[i] = _one(db_id, wanted[i][1], sorted(owners.get(wanted[i][1].value, [])))
            except ApiError as exc:
                results[i] = exc
    return results


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
    tx: Tx, *, db_id: int, profile_id: str, data: dict[str, Any], fields: dict[str, str], now: str
) -> None:
    """Write clean ``data`` onto a profile, re-index its keys and stitch waiting events."""
    owners: dict[tuple[str, str], dict[str, str]] = {}
    for kind, name, keys in index_keys(fields, data):
        q.drop_keys(tx, profile_id, name)
        if not q.add_keys(tx, db_id, profile_id, name, keys):
            owner = next(
                (o for k in keys if (o := q.key_owner(tx, db_id, name, k)) != profile_id), None
            )
            if owner is None:  # the other writer's transaction went away: try again
                raise Retry()
            raise Conflict(f"data.{name}: already belongs to profile {owner} in database {db_id}")
        owners[(kind, name)] = dict.fromkeys(keys, profile_id)
    # attach waiting events and replay their enrichment (issue 4; tags never match events)
    stitch.attach_all(tx, db_id=db_id, fields=fields, owners=owners)
    for name, value in data.items():
        q.write_field(tx, profile_id, name, value, now, newer_only=False)
    q.touch_profile(tx, profile_id, now)


def create(tx: Tx, *, db_id: int, data: dict[str, Any], fields: dict[str, str], now: str) -> str:
    profile_id = new_profile_id()
    q.create_profile(tx, db_id=db_id, profile_id=profile_id, now=now)
    save(tx, db_id=db_id, profile_id=profile_id, data=data, fields=fields, now=now)
    return profile_id


def data_from_key(key: MatchKey, fields: dict[str, str]) -> dict[str, Any]:
    """The profile data a match key implies (the ``create`` policy builds profiles from it)."""
    if key.kind == "email":
        return {"email": key.value}
    if key.kind == "phone":
        return {"phones": [key.value]}
    assert key.kind == "custom" and key.field is not None
    return {key.field: match.typed_value(fields[key.field], key.value, "field_value")}


# -- profiles/import --------------------------------------------------------------------------


def import_key(req: ProfileImportRequest, phone_region: str) -> MatchKey:
    """The match key of an import: top-level identifiers, else read from ``data`` (real clients
    send both shapes: shared/research/clients.md C, D)."""
    data = req.data or {}
    mode = req.matching or "email"
    fill: dict[str, Any] = {}
    if mode in ("email", "email_profile") and req.email is None:
        fill["email"] = data.get("email")
    elif mode == "phone" and req.phone is None:
        phones = data.get("phones")
        fill["phone"] = phones[0] if isinstance(phones, list) and phones else phones
    elif mode == "custom" and req.field_name is not None and req.field_value is None:
        value = data.get(req.field_name)
        fill["field_value"] = ", ".join(value) if isinstance(value, list) else value
    if fill:
        import msgspec

        req = msgspec.structs.replace(req, **fill)
    return match.match_key(req, phone_region=phone_region)


def import_profile(
    tx: Tx,
    *,
    token_hash: str,
    req: ProfileImportRequest,
    key: MatchKey,
    phone_region: str,
    now: str,
) -> tuple[str, bool]:
    """Create or update the profile ``key`` names; return (profile_id, created)."""
    assert req.db_id is not None
    authorise_database(tx, token_hash, req.db_id)
    fields = q.fields_of(tx, req.db_id)
    data = clean_data(req.data or {}, fields, req.db_id, phone_region)
    profile_id = resolve(tx, req.db_id, key)
    if profile_id is None:
        if key.kind == "profile_id":
            raise NotFound(
                f"profile_id: no profile {key.value!r} in database {req.db_id} "
                "(matching by profile_id only updates)"
            )
        data = {**data_from_key(key, fields), **data}
        return create(tx, db_id=req.db_id, data=data, fields=fields, now=now), True
    save(tx, db_id=req.db_id, profile_id=profile_id, data=data, fields=fields, now=now)
    return profile_id, False


async def handle_import(deps: Deps, ctx: Context, req: ProfileImportRequest) -> dict[str, Any]:
    required_id(req.db_id, "db_id")
    if req.data is not None and not isinstance(req.data, dict):
        raise InvalidRequest.field("data", "must be an object")
    key = import_key(req, deps.settings.default_phone_region)
    token_hash = ctx.token_hash()
    region = deps.settings.default_phone_region
    now = ctx.now_iso

    def work(tx: Tx) -> dict[str, Any]:
        profile_id, _ = import_profile(
            tx, token_hash=token_hash, req=req, key=key, phone_region=region, now=now
        )
        return {"profile_id": profile_id}

    return await deps.store.write(lambda tx: dedupe.once(tx, ctx.guard, work))


# -- profiles/get -----------------------------------------------------------------------------


def get_profile(tx: Tx, token_hash: str, db_id: int, key: MatchKey) -> dict[str, Any]:
    authorise_database(tx, token_hash, db_id)
    profile_id = resolve(tx, db_id, key)
    if profile_id is None:
        raise NotFound(f"profile: no profile with {key.describe()} in database {db_id}")
    meta = q.profile_meta(tx, db_id, profile_id)
    assert meta is not None
    fields = q.profile_fields(tx, profile_id)
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
    profile = await deps.store.read(lambda tx: get_profile(tx, token_hash, db_id, key))
    return {"profile_id": profile["id"], "data": profile}
