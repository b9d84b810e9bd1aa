"""The ASGI application: API calls on a lean path, everything else through Starlette.

``POST /api/v1.1/<method>`` is served straight from ASGI messages (it is the hot path); the path
is normalised first, so ``/api/v1.1//goals/register`` and ``/api/v1.1/goals/register/`` work as
real Altcraft clients send them (shared/research/clients.md).

Limits (docs/operations.md, "Limits at the HTTP edge"): each method's body is read up to its
own limit (``BODY_LIMITS``) and refused with 413 beyond it; the bodies being read or handled
share one memory budget (``body_buffer_bytes``); a request takes one of the ``max_in_flight``
slots only once its body has arrived, so clients that send bodies slowly cannot lock others
out; a body larger than ``offload_body_bytes`` is decoded on a worker thread, at most
``offload_threads`` at once, so it does not stall the event loop. The connection's own limits
(header size and count, deadlines) are the HTTP server's: ``transport/server.py``.

This is the outermost layer: anything unexpected that escapes a request becomes the 500
envelope with a reference (logged with its traceback), never a bare connection reset or a
server's plain-text page. The HTTP-only ``error_status`` setting is applied here, where API
replies are sent (``_send``), and to the HTTP server's own refusals through ``edge_refusal``;
it is for legacy API clients, so the ops routes (/healthz, /readyz, /metrics) keep their real
statuses for probes and load balancers.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar
from urllib.parse import parse_qs

from goalline.codecs import envelope
from goalline.codecs.negotiate import reply_format
from goalline.errors import ApiError, InvalidRequest, PayloadTooLarge, Unavailable
from goalline.pipeline import dispatch
from goalline.pipeline.context import Context, Deps
from goalline.transport.api import Answer, answer, internal_error, refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")

API_PREFIX = "/api/v1.1/"
#: A do-nothing endpoint on the same stack: the benchmark's baseline (docs/performance.md).
NOOP_PATH = "/bench/noop"
_NOOP_REPLY = envelope.encode(envelope.success({}), "json")
_SLASHES = re.compile(r"/{2,}")
#: The setting that limits each method's body; every other method (one profile, or a query)
#: takes ``max_other_body_bytes``, and ``max_body_bytes`` caps them all.
BODY_LIMITS = {
    "goals/register": "max_register_body_bytes",
    "profiles/import_batch": "max_body_bytes",
}
#: Most tokens whose ``?token=`` warning is remembered; the oldest is forgotten first.
TOKEN_WARNINGS_KEPT = 1024
log = logging.getLogger("goalline.http")


class BodyTooLarge(Exception):
    pass


class BodiesFull(Exception):
    """The bodies held at once would exceed ``body_buffer_bytes``."""


class ClientGone(Exception):
    """The client disconnected (or the HTTP server gave up on it) before its body ended."""


class GoallineHTTP:
    """Routes ``/api/v1.1/*`` to the API and the rest to ``other`` (ops, docs, dashboard)."""

    def __init__(self, deps: Deps, other: ASGIApp) -> None:
        self.deps = deps
        self.other = other
        settings = deps.settings
        self.max_body = settings.max_body_bytes
        self.body_limits = {
            method: min(getattr(settings, name), self.max_body)
            for method, name in BODY_LIMITS.items()
        }
        self.other_body_limit = min(settings.max_other_body_bytes, self.max_body)
        self.max_in_flight = settings.max_in_flight
        #: ``error_status = 200``: every reply is HTTP 200, for clients that read only the body.
        self.all_200 = settings.error_status == "200"
        self.in_flight = 0
        #: Bytes of request bodies held now (being read, or read and being handled).
        self.buffered = 0
        self.body_buffer = settings.body_buffer_bytes
        self.offload_above = settings.offload_body_bytes
        self.decoding = (
            asyncio.Semaphore(settings.offload_threads) if settings.offload_threads else None
        )
        self.token_warnings = Once(settings.token_warning_seconds, TOKEN_WARNINGS_KEPT)
        # Read when /metrics is scraped, instead of a locked update on every request.
        deps.metrics.in_flight = lambda: self.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.other(scope, receive, send)
            return
        try:
            await self._route(scope, receive, send)
        except Exception as exc:
            headers = _headers(scope)
            fmt = reply_format("json", headers.get("accept", ""), None)
            self.deps.metrics.count_request("unknown", "http", 500, None)
            try:
                await self._send(send, internal_error(f"serving {scope.get('path')!r}", fmt))
            except Exception:  # the reply was under way: the ASGI server logs it and closes
                raise exc from None

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if "//" in path:
            path = _SLASHES.sub("/", path)
        if path.startswith(API_PREFIX):
            await self._api(scope, receive, send, path[len(API_PREFIX) :].strip("/"))
        elif path == NOOP_PATH:
            try:
                self.buffered -= len(await self._read_body(receive, {}, self.max_body))
            except ClientGone:
                return
            except (BodyTooLarge, BodiesFull):
                error = PayloadTooLarge(f"body: larger than {self.max_body} bytes")
                await self._send(send, refusal(error, "json"))
                return
            await self._send(send, Answer(200, _NOOP_REPLY, "json"))
        else:
            await self.other(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send, method_name: str) -> None:
        headers = _headers(scope)
        if scope["method"] != "POST":
            error: ApiError = InvalidRequest(f"method: {scope['method']} is not allowed; use POST")
            await self._refuse(send, method_name, error, headers, 405, [("allow", "POST")])
            return
        if self.in_flight >= self.max_in_flight:
            # Shed load before reading the body (SPEC §1, 503).
            await self._refuse(send, method_name, _overloaded(), headers)
            return
        limit = self.body_limits.get(method_name, self.other_body_limit)
        try:
            body = await self._read_body(receive, headers, limit)
        except BodyTooLarge:
            error = PayloadTooLarge(
                f"body: larger than {limit} bytes, the limit of {method_name or 'this method'}"
            )
            await self._refuse(send, method_name, error, headers)
            return
        except BodiesFull:
            error = Unavailable(
                "server: too many request bodies held at once; nothing was recorded",
                retry_after=1,
            )
            await self._refuse(send, method_name, error, headers)
            return
        except ClientGone:
            return
        try:
            if self.in_flight >= self.max_in_flight:  # filled up while the body arrived
                await self._refuse(send, method_name, _overloaded(), headers)
                return
            self.in_flight += 1
            try:
                result = await self._answer(scope, headers, method_name, body)
            finally:
                self.in_flight -= 1
            await self._send(send, result)
        finally:
            self.buffered -= len(body)

    async def _answer(
        self, scope: Scope, headers: dict[str, str], method_name: str, body: bytes
    ) -> Answer:
        raw_query = scope.get("query_string")
        query = parse_qs(raw_query.decode("latin-1")) if raw_query else {}
        ctx = Context(
            transport="http",
            outer_token=self._outer_token(scope, headers, query),
            now=self.deps.clock(),
            request_id=headers.get("request-id") or headers.get("x-request-id") or None,
        )
        large = self.decoding is not None and len(body) > self.offload_above
        return await answer(
            self.deps,
            ctx,
            method_name=method_name,
            body=body,
            content_type=headers.get("content-type", ""),
            accept=headers.get("accept", ""),
            query_format=(query.get("format") or [None])[0],
            off_loop=self._off_loop if large else None,
        )

    async def _off_loop(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a large body's decoding) on a worker thread, at most
        ``offload_threads`` at once: each holds its body's decoded request in memory, and
        more would only take the GIL from the event loop more often."""
        assert self.decoding is not None
        async with self.decoding:
            return await asyncio.to_thread(_without_gc, work)

    async def _read_body(self, receive: Receive, headers: dict[str, str], limit: int) -> bytes:
        """The whole body, counted in ``buffered`` (the caller gives it back)."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge()
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                chunk = message.get("body", b"")
                if size + len(chunk) > limit:
                    raise BodyTooLarge()
                if self.buffered + len(chunk) > self.body_buffer:
                    raise BodiesFull()
                self.buffered += len(chunk)
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except BaseException:
            self.buffered -= size
            raise
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _outer_token(
        self, scope: Scope, headers: dict[str, str], query: dict[str, list[str]]
    ) -> str | None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and auth[7:].strip():
            return auth[7:].strip()
        if query.get("token"):
            token = query["token"][0]
            key = hashlib.sha256(token.encode()).digest()[:16]
            if self.token_warnings.first(key, time.monotonic()):
                client = scope.get("client")
                log.warning(
                    "API token passed as ?token= query parameter%s: deprecated, use the body "
                    "field or an Authorization: Bearer header (said once per token per %d s)",
                    f" by {client[0]}" if client else "",
                    self.token_warnings.period,
                )
            return token
        return None

    def edge_refusal(self, error: ApiError, path: str, accept: str) -> tuple[int, Answer]:
        """The reply to a request the HTTP server refused before it reached this app (bytes
        that are not HTTP, headers too large, a deadline): the envelope in the format the
        client accepts, with its HTTP status after ``error_status``; an API call is counted in
        the metrics like the app's own refusals."""
        result = refusal(error, reply_format("json", accept, None))
        if "//" in path:
            path = _SLASHES.sub("/", path)
        if path.startswith(API_PREFIX):
            self._count(path[len(API_PREFIX) :].strip("/"), error.code)
        return (200 if self.all_200 else result.status), result

    async def _refuse(
        self,
        send: Send,
        method_name: str,
        error: ApiError,
        headers: dict[str, str],
        status: int | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        """Answer a call refused before it reaches ``answer``, in the format the client
        accepts, and count it (``answer`` counts the others)."""
        fmt = reply_format("json", headers.get("accept", ""), None)
        self._count(method_name, error.code)
        await self._send(send, refusal(error, fmt, status=status, headers=extra or ()))

    def _count(self, method_name: str, code: int) -> None:
        known = method_name if method_name in dispatch.METHODS else "unknown"
        self.deps.metrics.count_request(known, "http", code, None)

    async def _send(self, send: Send, result: Answer) -> None:
        status = 200 if self.all_200 else result.status
        await _send(send, status, result)


class Once:
    """Says whether a key is new, or last seen more than ``period`` seconds ago; remembers at
    most ``size`` keys (the least recently said is forgotten first), so memory stays bounded
    whatever clients send."""

    def __init__(self, period: float, size: int) -> None:
        self.period = period
        self.size = size
        self.said: dict[bytes, float] = {}

    def first(self, key: bytes, now: float) -> bool:
        last = self.said.get(key)
        if last is not None and now - last < self.period:
            return False
        self.said.pop(key, None)
        self.said[key] = now
        if len(self.said) > self.size:
            del self.said[next(iter(self.said))]
        return True


class _GCPause:
    """The cyclic garbage collector, off while any large body is decoded.

    Decoding 10 MB of XML allocates about a million objects, which set off collections that
    traverse every live object with the GIL held: measured, the decoding took 3.5 s with the
    collector on and 1.2 s with it off, and the event loop's longest wait for the GIL went
    from 194 ms to 62 ms. What a decoding allocates holds no reference cycles (elements,
    dicts, lists, strings), so reference counting frees it; cycles other requests leave
    meanwhile are collected once the collector is back on.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.decoding = 0
        self.was_enabled = False

    def __enter__(self) -> None:
        with self.lock:
            self.decoding += 1
            if self.decoding == 1:
                self.was_enabled = gc.isenabled()
                gc.disable()

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.decoding -= 1
            if self.decoding == 0 and self.was_enabled:
                gc.enable()


_gc_pause = _GCPause()


def _without_gc(work: Callable[[], T]) -> T:
    with _gc_pause:
        return work()


def _overloaded() -> Unavailable:
    return Unavailable("server: overloaded; nothing was recorded", retry_after=1)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


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
