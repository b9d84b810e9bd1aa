"""The HTTP/1.1 server under the ASGI app: uvicorn's httptools protocol with Goalline's limits.

uvicorn 0.54 leaves every edge below the ASGI app open (issue 17): no limit on a request's
header bytes or count (one 100 MB header held 260 MB and stalled the loop for 8.5 s while
httptools concatenated it), no deadline for a request's head or body (a chunked body that
never ends, or a connection that never sends anything, is held forever), and the parser's own
refusals are a plain-text 400. ``GoallineProtocol`` closes them, per connection:

- the request line and headers may take ``max_header_bytes`` and ``max_headers``: the bytes
  are counted *before* they reach the parser, so a header bomb costs at most that much;
- deadlines: a new or idle connection is closed after ``keep_alive_timeout``; a request's head
  must arrive within ``header_timeout`` of its first byte and its body within ``body_timeout``
  of its head (0 turns these two off);
- every refusal is the envelope (``GoallineHTTP.edge_refusal``: same format negotiation,
  ``error_status`` and metrics as the app's own refusals), then the connection is closed.

The hot path pays a length check per ``data_received`` and a counter per header.
``serve_options`` is what ``goalline serve`` hands to uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from goalline.errors import ApiError, InvalidRequest
from goalline.settings import Settings
from goalline.transport.http import GoallineHTTP

log = logging.getLogger("goalline.http")


def serve_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the edge: this protocol, no WebSocket upgrades (Goalline serves
    none; an ``Upgrade`` header is then an ordinary request), the keep-alive timeout."""
    return {
        "http": GoallineProtocol,
        "ws": "none",
        "timeout_keep_alive": settings.keep_alive_timeout,
    }


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; ``feed_data`` re-raises it as the context
    of an ``HttpParserCallbackError``."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.text)
        self.error = error


#: How long, and for how many bytes, a connection closed while its client is still sending
#: keeps reading (and dropping) what arrives, so the client gets the reply and not a reset
#: (see _Lingering). Past either, it closes: a header bomb or a huge body costs that much.
LINGER_SECONDS = 5.0
LINGER_BYTES = 8 * 1024 * 1024


class _Lingering:
    """The connection's transport, with a lingering close (nginx's ``lingering_close``).

    Closing a socket that still holds unread bytes makes the kernel answer them with a reset,
    and a client still writing its request (a body refused early by its Content-Length with
    ``Connection: close``, or a head refused midway) then sees "connection reset" instead of
    the reply it was sent (the fuzzer saw it once in 20,000 requests). So while the client may
    still be sending, ``close`` sends the reply's end (FIN, ``write_eof``), keeps reading and
    dropping what arrives until the client closes, LINGER_SECONDS pass or LINGER_BYTES have
    been dropped, then closes.
    """

    def __init__(self, transport: asyncio.Transport, protocol: GoallineProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.lingering = False
        self._timer: TimerHandle | None = None
        self._dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        transport = self._transport
        if self.lingering or transport.is_closing():
            return
        if not self._protocol.client_sending() or not transport.can_write_eof():
            transport.close()
            return
        self.lingering = True
        transport.write_eof()
        transport.resume_reading()  # uvicorn's flow control may have paused it
        self._timer = self._protocol.loop.call_later(LINGER_SECONDS, transport.close)

    def drop(self, data: bytes) -> None:
        """Bytes that arrived while lingering: dropped, up to LINGER_BYTES in all."""
        self._dropped += len(data)
        if self._dropped > LINGER_BYTES:
            self.finish()

    def finish(self) -> None:
        """The client closed its side, or the connection is gone: close for good."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._transport.is_closing():
            self._transport.close()


class GoallineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits, deadlines and enveloped refusals."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.edge = _goalline_app(self.app)
        settings = self.edge.deps.settings
        self.max_header_bytes = settings.max_header_bytes
        self.max_headers = settings.max_headers
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        #: Between requests: True until a request's headers are complete.
        self.in_head = True
        #: Whether the current head has begun (its first byte arrived).
        self.head_started = False
        #: Bytes the current head may still take.
        self.head_left = self.max_header_bytes
        self.header_count = 0
        #: The head's or the body's deadline, whichever is running.
        self.deadline: TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.lingering = _Lingering(transport, self)
        super().connection_made(self.lingering)  # type: ignore[arg-type]  # a Transport proxy
        # uvicorn arms its keep-alive timeout only after a reply: a connection that never sends
        # a request would stay open forever (2,000 idle connections were never closed).
        idle = self.timeout_keep_alive or self.header_timeout
        if idle:
            self.timeout_keep_alive_task = self.loop.call_later(
                idle, self.timeout_keep_alive_handler
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.lingering.finish()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        if self.lingering.lingering:
            self.lingering.finish()
            return
        super().eof_received()

    def client_sending(self) -> bool:
        """Whether the client may still be sending the current request (inside its head or its
        body): closing now would reset what it sends."""
        cycle = self.cycle
        return (self.in_head and self.head_started) or (cycle is not None and cycle.more_body)

    def data_received(self, data: bytes) -> None:
        if self.lingering.lingering:
            self.lingering.drop(data)  # the reply is sent; what the client still sends is dropped
            return
        self._unset_keepalive_if_required()
        while self.in_head and len(data) > self.head_left:
            # More bytes than the head may take: feed only what it may, so a header bomb never
            # reaches the parser; if the head ends inside them, go on with the rest.
            room = self.head_left
            self.head_left = 0
            if not self._feed(data[:room]):
                return
            if self.in_head:
                self._refuse(InvalidRequest(f"headers: larger than {self.max_header_bytes} bytes"))
                return
            data = data[room:]
        if self.in_head:
            self.head_left -= len(data)
        if self._feed(data) and self.deadline is None:
            self._arm_deadline()

    def _feed(self, data: bytes) -> bool:
        """Parse ``data``; False when the request was refused and the connection is closing."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.error)
            else:
                self._refuse(InvalidRequest(f"request: not valid HTTP/1.1 ({exc})"))
            return False
        return True

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = True
        self.header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > self.max_headers:
            raise _Refused(InvalidRequest(f"headers: more than {self.max_headers}"))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = self.head_started = False
        if self.deadline is not None:
            self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.deadline is not None:
            self._cancel_deadline()
        self.in_head = True
        self.head_left = self.max_header_bytes
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.pipeline:
            # Answered before its body ended (a 413 on Content-Length): uvicorn armed the
            # keep-alive timeout at the reply, and the body's bytes since have unset it.
            self._unset_keepalive_if_required()
            if self.timeout_keep_alive:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    # -- deadlines -----------------------------------------------------------------------------

    def _arm_deadline(self) -> None:
        if self.in_head:
            if self.head_started and self.header_timeout:
                self.deadline = self.loop.call_later(self.header_timeout, self._head_late)
        elif self.body_timeout:
            cycle = self.cycle
            if cycle is not None and cycle.more_body:
                self.deadline = self.loop.call_later(self.body_timeout, self._body_late)

    def _cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _head_late(self) -> None:
        self.deadline = None
        if self.in_head and self.head_started and not self.transport.is_closing():
            text = f"headers: not received within {self.header_timeout:g} s"
            self._refuse(InvalidRequest(text))

    def _body_late(self) -> None:
        self.deadline = None
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not self.transport.is_closing():
            text = f"body: not received within {self.body_timeout:g} s of the headers"
            self._refuse(InvalidRequest(text))

    # -- refusals ------------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn's own plain-text refusal, as the envelope."""
        self._refuse(InvalidRequest(f"request: not valid HTTP/1.1 ({msg})"))

    def _refuse(self, error: ApiError) -> None:
        """Answer ``error`` as the envelope, if no reply is under way, and close."""
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app must neither go on reading nor answer: its receive() says disconnect.
            replying = cycle.response_started or self.in_head  # in_head: a previous request's
            cycle.disconnected = True
            cycle.message_event.set()
        else:
            replying = False
        if not replying and not self.pipeline and not self.transport.is_closing():
            self.transport.write(self._refusal_bytes(error))
        log.debug("refused at the HTTP edge: %s", error.text)
        self.transport.close()

    def _refusal_bytes(self, error: ApiError) -> bytes:
        url: bytes = getattr(self, "url", b"")
        accept = b""
        for name, value in self.headers or ():
            if name == b"accept":
                accept = value
        status, answer = self.edge.edge_refusal(
            error, url.split(b"?", 1)[0].decode("latin-1"), accept.decode("latin-1")
        )
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        for key, text in answer.headers:
            content += [key.encode(), b": ", text.encode(), b"\r\n"]
        content += [
            b"content-type: ",
            answer.content_type.encode(),
            b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(answer.body),
            answer.body,
        ]
        return b"".join(content)


def _goalline_app(app: Any) -> GoallineHTTP:
    """The GoallineHTTP under uvicorn's wrappers (proxy headers, message logging)."""
    for _ in range(8):
        if isinstance(app, GoallineHTTP):
            return app
        app = getattr(app, "app", None)
    raise TypeError("GoallineProtocol serves a GoallineHTTP app (goalline.app.build)")
