"""Method name → typed request and handler: the single entry point for HTTP and AMQP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.errors import NotFound
from goalline.pipeline import bulk, databases, dedupe, history, profiles, reference, register
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import (
    DatabaseFieldsRequest,
    DatabasesListRequest,
    DictionaryRequest,
    HistoryGetRequest,
    ProfileGetRequest,
    ProfileImportBatchRequest,
    ProfileImportRequest,
    RegisterRequest,
)

Handler = Callable[[Deps, Context, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Method:
    name: str
    request: type[msgspec.Struct]
    handler: Handler
    summary: str
    writes: bool = False


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "goals/register",
            RegisterRequest,
            register.handle,
            "Register goal achievements and goal values for a profile",
            writes=True,
        ),
        Method(
            "profiles/import",
            ProfileImportRequest,
            profiles.handle_import,
            "Create or update one profile by matching",
            writes=True,
        ),
        Method(
            "profiles/get",
            ProfileGetRequest,
            profiles.handle_get,
            "Get one profile's data by matching",
        ),
        Method(
            "dictionary",
            DictionaryRequest,
            reference.handle_dictionary,
            "Valid values of browsers, oses, devices, tz or languages",
        ),
        Method(
            "profiles/import_batch",
            ProfileImportBatchRequest,
            bulk.handle_import_batch,
            "Create or update many profiles by matching (up to --max-batch-items, 10,000 by "
            "default), each with its own result",
            writes=True,
        ),
        Method(
            "subscribers/history_get",
            HistoryGetRequest,
            history.handle_history_get,
            "A profile's action history (goal events), newest first, paged",
        ),
        Method(
            "databases/list",
            DatabasesListRequest,
            databases.handle_list,
            "The databases the token may use",
        ),
        Method(
            "databases/fields_get",
            DatabaseFieldsRequest,
            databases.handle_fields_get,
            "A database's profile fields: email, phones, system and custom fields",
        ),
    )
}


def find(name: str) -> Method:
    method = METHODS.get(name)
    if method is None:
        raise NotFound(f"method: unknown API method {name!r}")
    return method


async def dispatch(deps: Deps, ctx: Context, method: Method, request: Any) -> dict[str, Any]:
    """Run ``method`` for a decoded request; the token in the body wins over the header's."""
    ctx.token = getattr(request, "token", None) or ctx.outer_token
    if deps.limiter is not None and ctx.token:
        deps.limiter.check(ctx.token)
    window = deps.settings.dedup_window
    if method.writes and window > 0 and ctx.token:
        if ctx.encode_reply is None:  # a transport's bug, not the client's
            raise RuntimeError("the transport did not say how it encodes replies")
        key = dedupe.request_key(
            method=method.name,
            token=ctx.token,
            request_id=ctx.request_id,
            request=request,
            reply_format=ctx.reply_format,
        )
        ctx.guard = dedupe.guard(
            key=key,
            method=method.name,
            now=ctx.now,
            now_iso=ctx.now_iso,
            window_seconds=window,
            reply_format=ctx.reply_format,
            encode=ctx.encode_reply,
        )
    return await method.handler(deps, ctx, request)
