"""Method name → typed request and handler: the single entry point for HTTP and AMQP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.codecs import json as json_codec
from goalline.codecs import xml as xml_codec
from goalline.codecs.negotiate import Format
from goalline.errors import NotFound
from goalline.pipeline import profiles, register
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.requests import (
    XML_ARRAYS,
    ProfileGetRequest,
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


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "goals/register",
            RegisterRequest,
            register.handle,
            "Register goal achievements and goal values for a profile",
        ),
        Method(
            "profiles/import",
            ProfileImportRequest,
            profiles.handle_import,
            "Create or update one profile by matching",
        ),
        Method(
            "profiles/get",
            ProfileGetRequest,
            profiles.handle_get,
            "Get one profile's data by matching",
        ),
    )
}


def decode(method: Method, body: bytes, fmt: Format) -> Any:
    if fmt == "xml":
        return json_codec.convert(
            xml_codec.decode(body, XML_ARRAYS[method.request]), method.request
        )
    return json_codec.decode(body, method.request)


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
    return await method.handler(deps, ctx, request)
