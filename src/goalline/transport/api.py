"""One API call from bytes to bytes: negotiate → decode → dispatch → envelope → encode.

Both transports call ``answer``; it never raises. Every failure becomes the envelope with its
code, so a client never sees an HTML page or a traceback (SPEC §1).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from goalline.codecs import envelope
from goalline.codecs.negotiate import Format, reply_format, request_format
from goalline.errors import ApiError, InternalError
from goalline.pipeline import dispatch
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.dedupe import Replayed

log = logging.getLogger("goalline.api")


@dataclass
class Answer:
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
) -> Answer:
    fmt: Format = reply_format("json", accept, None)
    started = time.perf_counter()
    metrics = deps.metrics
    try:
        in_fmt = request_format(content_type, body)
        fmt = reply_format(in_fmt, accept, query_format)
        method = dispatch.find(method_name)
        request = dispatch.decode(method, body, in_fmt)
        fmt = reply_format(in_fmt, accept, getattr(request, "format", None) or query_format)
        ctx.reply_format = fmt
        data = await dispatch.dispatch(deps, ctx, method, request)
        reply, status, headers = envelope.success(data), 200, []
    except Replayed as done:
        metrics.duplicates += 1
        metrics.count_request(method_name, ctx.transport, 0, None)
        return Answer(200, done.reply, done.reply_format, duplicate_headers(done.key))  # type: ignore[arg-type]
    except ApiError as exc:
        reply, status, headers = envelope.failure(exc), exc.status, _retry_headers(exc)
    except Exception:
        reference = uuid.uuid4().hex[:12]
        log.exception("internal error in %s (reference %s)", method_name, reference)
        exc = InternalError(f"internal error (reference {reference})")
        reply, status, headers = envelope.failure(exc), exc.status, []
    known = method_name if method_name in dispatch.METHODS else "unknown"
    metrics.count_request(known, ctx.transport, reply["error"], time.perf_counter() - started)
    if deps.settings.error_status == "200":
        status = 200
    return Answer(status, envelope.encode(reply, fmt), fmt, headers)


def duplicate_headers(key: str) -> list[tuple[str, str]]:
    """Altcraft's current and older (``X-``) spellings of the duplicate markers."""
    return [
        ("duplicate-key", key),
        ("duplicate-request", "true"),
        ("x-duplicate-key", key),
        ("x-duplicate-request", "true"),
    ]


def _retry_headers(exc: ApiError) -> list[tuple[str, str]]:
    return [] if exc.retry_after is None else [("retry-after", str(exc.retry_after))]
