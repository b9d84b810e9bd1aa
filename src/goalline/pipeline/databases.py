"""``databases/list`` and ``databases/fields_get``: what a token may use, and the profile fields
of a database (shared/research/altcraft-api.md §11; clients.md A; issue 4).

A token sees only its databases: ``list`` leaves the others out, and ``fields_get`` on one of
them is 403 whether it exists or not (pipeline/auth.py).
"""

from __future__ import annotations

from typing import Any

from goalline.errors import InvalidRequest
from goalline.model import PROFILE_ENRICHMENT, SYSTEM_FIELDS
from goalline.pipeline.auth import authenticate, authorise_database
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import DatabaseFieldsRequest, DatabasesListRequest
from goalline.pipeline.validate import required_id
from goalline.storage.ports import UnitOfWork

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

#: The built-in fields every database has: (name, type).
BUILTIN: tuple[tuple[str, str], ...] = (("email", "string"), ("phones", "array"))
#: The type each system field holds when enrichment or Altcraft's clients write it. System
#: fields take any scalar on import; these say what to expect (docs/api.md).
SYSTEM_TYPES: dict[str, str] = {
    "_bdate": "date",
    "_regdate": "date",
    "_status": "int",
    "_is_test": "bool",
    "_lat": "float",
    "_lon": "float",
}


def list_databases(
    uow: UnitOfWork, token_hash: str, from_id: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    token = authenticate(uow, token_hash)
    visible = [
        {"id": db_id, "name": name, "unknown_profile": policy}
        for db_id, name, policy in uow.list_databases()
        if db_id > from_id and token.may_use(db_id)
    ]
    return visible[:limit], len(visible) > limit


def fields_get(uow: UnitOfWork, token_hash: str, db_id: int) -> list[dict[str, Any]]:
    authorise_database(uow, token_hash, db_id)
    system = sorted(SYSTEM_FIELDS, key=_system_order)
    return [
        *({"name": name, "type": type_, "category": "system"} for name, type_ in BUILTIN),
        *(
            {"name": name, "type": SYSTEM_TYPES.get(name, "string"), "category": "system"}
            for name in system
        ),
        *(
            {"name": name, "type": type_, "category": "custom"}
            for name, type_ in uow.fields_of(db_id).items()
        ),
    ]


def _system_order(name: str) -> tuple[bool, str]:
    # Profile data fields first, then the ones enrichment writes (as model.py lists them).
    return name in {field for field, _ in PROFILE_ENRICHMENT}, name


async def handle_list(deps: Deps, ctx: Context, req: DatabasesListRequest) -> dict[str, Any]:
    from_id = req.from_id or 0
    if from_id < 0:
        raise InvalidRequest.field("from_id", "must not be negative")
    limit = DEFAULT_LIMIT if req.limit is None else req.limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest.field("limit", f"must be between 1 and {MAX_LIMIT}")
    token_hash = ctx.token_hash()
    rows, more = await deps.store.read(lambda uow: list_databases(uow, token_hash, from_id, limit))
    reply: dict[str, Any] = {"data": rows}
    if more:
        reply["next_from_id"] = rows[-1]["id"]
    return reply


async def handle_fields_get(deps: Deps, ctx: Context, req: DatabaseFieldsRequest) -> dict[str, Any]:
    db_id = required_id(req.db_id, "db_id")
    token_hash = ctx.token_hash()
    return {"data": await deps.store.read(lambda uow: fields_get(uow, token_hash, db_id))}
