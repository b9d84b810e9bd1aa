"""The ASGI application: API calls on a lean path, everything else through Starlette.

``POST /api/v1.1/<method>`` is served straight from ASGI messages (it is the hot path); the path
is normalised first, so ``/api/v1.1//goals/register`` and ``/api/v1.1/goals/register/`` work as
real Altcraft clients send them (shared/research/clients.md). Bodies are read up to
``max_body_bytes`` and refused with 413 beyond it.

This is the outermost layer: anything unexpected that escapes a request becomes the 500
envelope with a reference (logged with its traceback), never a bare connection reset or a
server's plain-text page. The HTTP-only ``error_status`` setting is applied here, where API
replies are sent (``_send``); it is for legacy API clients, so the ops routes (/healthz,
/readyz, /metrics) keep their real statuses for probes and load balancers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from goalline.codecs import envelope
from goalline.codecs.negotiate import reply_format
from goalline.errors import ApiError, InvalidRequest, PayloadTooLarge, Unavailable
from goalline.pipeline.context import Context, Deps
from goalline.transport.api import Answer, answer, internal_error, refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1.1/"
#: A do-nothing endpoint on the same stack: the benchmark's baseline (docs/performance.md).
NOOP_PATH = "/bench/noop"
_NOOP_REPLY = envelope.encode(envelope.success({}), "json")
_SLASHES = re.compile(r"/{2,}")
log = logging.getLogger("goalline.http")


class BodyTooLarge(Exception):
    pass


class GoallineHTTP:
    """Routes ``/api/v1.1/*`` to the API and the rest to ``other`` (ops, docs, dashboard)."""

    def __init__(self, deps: Deps, other: ASGIApp) -> None:
        self.deps = deps
        self.other = other
        self.max_body = deps.settings.max_body_bytes
        self.max_in_flight = deps.settings.max_in_flight
        #: ``error_status = 200``: every reply is HTTP 200, for clients that read only the body.
        self.all_200 = deps.settings.error_status == "200"
        self.in_flight = 0
        # Read when /metrics is scraped, instead of a locked update on every request.
        deps.metrics.in_flight = lambda: self.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.other(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._route(scope, receive, tracked)
        except Exception:
            if started:  # the reply is under way: the ASGI server logs it and closes
                raise
            headers = _headers(scope)
            fmt = reply_format("json", headers.get("accept", ""), None)
            self.deps.metrics.count_request("unknown", "http", 500, None)
            await self._send(send, internal_error(f"serving {scope.get('path')!r}", fmt))

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if "//" in path:
            path = _SLASHES.sub("/", path)
        if not path.startswith(API_PREFIX):
            if path == NOOP_PATH:
                await _read_body(receive, {}, self.max_body)
                await self._send(send, Answer(200, _NOOP_REPLY, "json"))
            else:
                await self.other(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            # Shed load before reading the body: memory stays bounded (SPEC §1, 503).
            error = Unavailable("server: overloaded; nothing was recorded", retry_after=1)
            await self._send(send, self._refuse(error, _headers(scope)))
            return
        self.in_flight += 1
        try:
            await self._api(scope, receive, send, path)
        finally:
            self.in_flight -= 1

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method_name = path[len(API_PREFIX) :].strip("/")
        headers = _headers(scope)
        raw_query = scope.get("query_string")
        query = parse_qs(raw_query.decode("latin-1")) if raw_query else {}
        ctx = Context(
            transport="http",
            outer_token=_outer_token(headers, query),
            now=self.deps.clock(),
            request_id=headers.get("request-id") or headers.get("x-request-id") or None,
        )
        if scope["method"] != "POST":
            result = self._refuse(
                InvalidRequest(f"method: {scope['method']} is not allowed; use POST"),
                headers,
                405,
                [("allow", "POST")],
            )
        else:
            try:
                body = await _read_body(receive, headers, self.max_body)
            except BodyTooLarge:
                result = self._refuse(
                    PayloadTooLarge(f"body: larger than {self.max_body} bytes"), headers
                )
            else:
                result = await answer(
                    self.deps,
                    ctx,
                    method_name=method_name,
                    body=body,
                    content_type=headers.get("content-type", ""),
                    accept=headers.get("accept", ""),
                    query_format=(query.get("format") or [None])[0],
                )
        await self._send(send, result)

    def _refuse(
        self,
        error: ApiError,
        headers: dict[str, str],
        status: int | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Answer:
        """A call refused before it reaches ``answer``, in the format the client accepts."""
        fmt = reply_format("json", headers.get("accept", ""), None)
        return refusal(error, fmt, status=status, headers=extra or ())

    async def _send(self, send: Send, result: Answer) -> None:
        status = 200 if self.all_200 else result.status
        await _send(send, status, result)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _outer_token(headers: dict[str, str], query: dict[str, list[str]]) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    if query.get("token"):
        log.warning(
            "API token passed as ?token= query parameter: deprecated, use the body "
            "field or an Authorization: Bearer header"
        )
        return query["token"][0]
    return None


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


_CONTENT_TYPES = {fmt: value.encode() for fmt, value in envelope.CONTENT_TYPES.items()}


async def _send(send: Send, status: int, result: Answer) -> None:
    headers = [
        (b"content-type", _CONTENT_TYPES[result.format]),
        (b"content-length", b"%d" % len(result.body)),
    ]
    if result.headers:
        headers += [(k.encode(), v.encode()) for k, v in result.headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": result.body})
