"""``dictionary``: the values enrichment produces and validation accepts (issue 3)."""

from __future__ import annotations

from typing import Any

from goalline.enrichment import dictionary
from goalline.errors import InvalidRequest
from goalline.pipeline.auth import authenticate
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import DictionaryRequest


async def handle_dictionary(deps: Deps, ctx: Context, req: DictionaryRequest) -> dict[str, Any]:
    names = ", ".join(dictionary.NAMES)
    if req.name is None:
        raise InvalidRequest.field("name", f"required: one of {names}")
    name = req.name.strip().lower()
    if name not in dictionary.NAMES:
        raise InvalidRequest.field("name", f"must be one of {names}")
    token_hash = ctx.token_hash()
    await deps.store.read(lambda uow: authenticate(uow, token_hash))
    return {"name": name, "data": list(dictionary.values(name))}
