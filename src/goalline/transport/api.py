"""One API call from bytes to bytes: negotiate → decode → dispatch → envelope → encode.

Every transport (HTTP today, AMQP next) calls ``answer``; it never raises. Every failure
becomes the envelope with its code, so a client never sees an HTML page or a traceback
(SPEC §1). ``refusal`` is the one other way to build a reply, for calls a transport refuses
before they reach ``answer`` (overload, a body too large, a wrong HTTP method). The HTTP
status of a reply is the envelope's code here; what a transport does with it (the HTTP-only
``error_status`` setting) is the transport's business.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from goalline.codecs import envelope
from goalline.codecs import json as json_codec
from goalline.codecs import xml as xml_codec
from goalline.codecs.negotiate import Format, reply_format, request_format
from goalline.errors import ApiError, InternalError
from goalline.pipeline import dispatch
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.dedupe import Replayed
from goalline.pipeline.requests import XML_ARRAYS

log = logging.getLogger("goalline.api")
#: Runs a body's decoding somewhere else than the event loop (``GoallineHTTP._off_loop``).
OffLoop = Callable[[Callable[[], Any]], Awaitable[Any]]


@dataclass
class Answer:
    """A reply ready to send: status (the envelope's code, or 200), body, format, headers."""

    status: int
    body: bytes
    format: Format
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return envelope.CONTENT_TYPES[self.format]


async def answer(
    deps: Deps,
    ctx: Context,
    *,
    method_name: str,
    body: bytes,
    content_type: str = "application/json",
    accept: str = "",
    query_format: str | None = None,
    off_loop: OffLoop | None = None,
) -> Answer:
    """``off_loop``: where to decode the body when not on the caller's thread (a large body
    would stall the event loop; the transport decides)."""
    fmt: Format = reply_format("json", accept, None)
    started = time.perf_counter()
    metrics = deps.metrics
    try:
        in_fmt = request_format(content_type, body)
        fmt = reply_format(in_fmt, accept, query_format)
        method = dispatch.find(method_name)
        settings = deps.settings
        decoding = functools.partial(
            decode,
            method.request,
            body,
            in_fmt,
            json_depth=settings.max_json_depth,
            xml_depth=settings.max_xml_depth,
        )
        request = decoding() if off_loop is None else await off_loop(decoding)
        fmt = reply_format(in_fmt, accept, getattr(request, "format", None) or query_format)
        ctx.reply_format = fmt
        ctx.encode_reply = _success_encoder(fmt)
        data = await dispatch.dispatch(deps, ctx, method, request)
        result = Answer(200, envelope.encode(envelope.success(data), fmt), fmt)
        code = 0
    except Replayed as done:
        metrics.duplicates += 1
        metrics.count_request(method_name, ctx.transport, 0, None)
        replayed: Format = "xml" if done.reply_format == "xml" else "json"
        return Answer(200, done.reply, replayed, duplicate_headers(done.key))
    except ApiError as exc:
        result, code = refusal(exc, fmt), exc.code
    except Exception:
        result, code = internal_error(f"in {method_name}", fmt), InternalError.code
    known = method_name if method_name in dispatch.METHODS else "unknown"
    metrics.count_request(known, ctx.transport, code, time.perf_counter() - started)
    return result


def decode(
    struct: type[Any],
    body: bytes,
    fmt: Format,
    *,
    json_depth: int = json_codec.MAX_DEPTH,
    xml_depth: int = xml_codec.MAX_DEPTH,
) -> Any:
    """A request body as the method's typed request (JSON, or XML read into the same shape);
    the depths are the ``max_json_depth`` and ``max_xml_depth`` settings."""
    if fmt == "xml":
        data = xml_codec.decode(body, XML_ARRAYS[struct], max_depth=xml_depth)
        return json_codec.convert(data, struct)
    return json_codec.decode(body, struct, max_depth=json_depth)


def refusal(
    error: ApiError,
    fmt: Format,
    *,
    status: int | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Answer:
    """The reply for ``error``: its envelope, its status (or ``status``), ``Retry-After``."""
    extra = list(headers)
    if error.retry_after is not None:
        extra.append(("retry-after", str(error.retry_after)))
    body = envelope.encode(envelope.failure(error), fmt)
    return Answer(status or error.status, body, fmt, extra)


def internal_error(where: str, fmt: Format) -> Answer:
    """The 500 reply for a bug: logged with a reference, which the client gets instead of a
    traceback."""
    reference = uuid.uuid4().hex[:12]
    log.exception("internal error %s (reference %s)", where, reference)
    return refusal(InternalError(f"internal error (reference {reference})"), fmt)


def _success_encoder(fmt: Format) -> Callable[[dict[str, Any]], bytes]:
    return _ENCODERS[fmt]


_ENCODERS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "json": lambda data: envelope.encode(envelope.success(data), "json"),
    "xml": lambda data: envelope.encode(envelope.success(data), "xml"),
}


def duplicate_headers(key: str) -> list[tuple[str, str]]:
    """Altcraft's current and older (``X-``) spellings of the duplicate markers."""
    return [
        ("duplicate-key", key),
        ("duplicate-request", "true"),
        ("x-duplicate-key", key),
        ("x-duplicate-request", "true"),
    ]
