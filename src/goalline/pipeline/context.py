"""What a handler gets besides its typed request: the ports (Deps) and the call (Context)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from goalline.errors import Unauthorized
from goalline.model import iso_utc
from goalline.observability import Metrics
from goalline.pipeline.auth import AuthCache
from goalline.pipeline.dedupe import Guard
from goalline.pipeline.enrich import Enricher
from goalline.pipeline.ratelimit import RateLimiter
from goalline.settings import Settings
from goalline.storage.ports import Store


@dataclass(frozen=True)
class Deps:
    """The ports every handler may use; built once by app.build()."""

    store: Store
    settings: Settings
    enricher: Enricher
    limiter: RateLimiter | None = None
    auth_cache: AuthCache = field(default_factory=AuthCache)
    metrics: Metrics = field(default_factory=Metrics)
    #: The clock every request reads its time from (tests move it to expire dedup windows).
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


@dataclass
class Context:
    """One API call, whatever carried it (HTTP or AMQP)."""

    transport: str = "http"
    #: The token from the Authorization header or ?token=; a body ``token`` wins over it.
    outer_token: str | None = None
    token: str | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: The Request-ID (or X-Request-ID) header, when the client sent one.
    request_id: str | None = None
    reply_format: str = "json"
    #: How the transport encodes a success reply with the given data (set with reply_format):
    #: the request log keeps those bytes, so a repeat gets them back as they were.
    encode_reply: Callable[[dict[str, Any]], bytes] | None = None
    #: Set by dispatch for data-changing methods: run the unit of work at most once.
    guard: Guard | None = None
    now_iso: str = field(init=False)

    def __post_init__(self) -> None:
        #: ``now`` as stored times spell it; read several times a request, formatted once.
        self.now_iso = iso_utc(self.now)

    def token_hash(self) -> str:
        """SHA-256 of the caller's token (tokens are stored only hashed); 401 when absent."""
        if not self.token:
            raise Unauthorized(
                "token: required (body field token, or header Authorization: Bearer <token>)"
            )
        return hash_token(self.token)


def hash_token(token: str) -> str:
    # Tokens are 128-bit random values, so a fast unsalted hash is the right tool: it keeps the
    # lookup an index probe while a leaked table still reveals no usable token.
    return hashlib.sha256(token.encode()).hexdigest()
