"""Issue 17, the HTTP edge, against a real ``goalline serve``: every reply is the envelope, even
the HTTP parser's own refusals; slow or idle clients lock nobody out and are closed on a
deadline; a header bomb is refused with bounded memory; large bodies do not stall small
requests. Clients are raw sockets on 127.0.0.1, every loop bounded in count and time.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from .support import REGISTER, cli, create_token
from conftest import Server, start_server

pytestmark = pytest.mark.server

TOKEN = "limits-token-0123456789abcdef"
BATCH = "/api/v1.1/profiles/import_batch"
#: The tight server's limits: small enough that the tests take seconds.
IN_FLIGHT = 16
DEADLINE = 1.0


@dataclass(frozen=True)
class Edge:
    """Two servers on one database: ``tight`` with one-second deadlines and 16 in-flight
    slots, ``default`` with the documented defaults."""

    tight: Server
    default: Server


@pytest.fixture(scope="module")
def edge(module_database: str) -> Iterator[Edge]:
    cli("db", "create", "Shop", "--id", "1", database=module_database)
    cli("pixel", "create", "Site", "--db", "1", "--id", "1", database=module_database)
    create_token("limits", TOKEN, database=module_database)
    tight = start_server(
        module_database,
        *("--max-in-flight", str(IN_FLIGHT), "--body-timeout", str(DEADLINE)),
        *("--header-timeout", str(DEADLINE), "--keep-alive-timeout", str(DEADLINE)),
    )
    try:
        default = start_server(module_database)
        try:
            yield Edge(tight, default)
        finally:
            default.stop()
    finally:
        tight.stop()


# -- raw HTTP ----------------------------------------------------------------------------------


def connect(server: Server, timeout: float = 5.0) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def envelope(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        reply: dict[str, Any] = json.loads(self.body)
        assert set(reply) == {"error", "error_text"}, reply
        return reply


def read_reply(sock: socket.socket) -> Reply | None:
    """One response read off ``sock`` (None: closed before any byte); the socket's timeout
    bounds each read."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            assert not data, f"closed inside a response head: {data!r}"
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed inside a response body"
        body += chunk
    return Reply(status, headers, body)


def closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (EOF or reset) within the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def register_body(goal: str) -> bytes:
    return json.dumps(
        {"token": TOKEN, "db_id": 1, "pixel_id": 1, "email": "a@example.com", "goal": goal}
    ).encode()


def head(path: str = REGISTER, *lines: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{h}\r\n" for h in lines)
    ).encode()


def timed_register(client: httpx.Client, url: str, goal: str) -> tuple[int, float]:
    started = time.perf_counter()
    r = client.post(
        url + REGISTER, content=register_body(goal), headers={"Content-Type": "application/json"}
    )
    return r.status_code, time.perf_counter() - started


def rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- 5: every reply is the envelope ------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "detail"),
    [
        pytest.param(
            head(REGISTER, "Content-Type: application/json\x7f", "Content-Length: 2") + b"\r\n{}",
            "invalid header value char",
            id="0x7f-in-content-type",
        ),
        pytest.param(b"GARBAGE\r\n\r\n", "invalid method", id="bad-request-line"),
        pytest.param(
            head(REGISTER, "Bad Name: x", "Content-Length: 2") + b"\r\n{}",
            "invalid header token",
            id="space-in-header-name",
        ),
        pytest.param(
            head(REGISTER, "Content-Length: 1x") + b"\r\n{}",
            "invalid character in content-length",
            id="bad-content-length",
        ),
    ],
)
def test_the_parser_s_own_refusals_are_the_envelope(
    edge: Edge, request_bytes: bytes, detail: str
) -> None:
    with connect(edge.default) as sock:
        sock.sendall(request_bytes)
        reply = read_reply(sock)
        assert reply is not None
        assert reply.status == 400
        envelope = reply.envelope()
        assert envelope["error"] == 400
        text = envelope["error_text"]
        assert text.startswith("request: not valid HTTP/1.1 (") and detail in text.lower(), text
        assert closed(sock)


def test_a_refused_api_call_is_counted(edge: Edge) -> None:
    def refused_400() -> float:
        metrics = httpx.get(edge.tight.url + "/metrics", timeout=10).text
        line = 'goalline_api_requests_total{error="400",method="goals/register",transport="http"}'
        counts = [float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(line)]
        return counts[0] if counts else 0.0

    before = refused_400()
    with connect(edge.tight) as sock:
        sock.sendall(head(REGISTER, "Content-Type: application/json\x7f") + b"\r\n")
        assert read_reply(sock) is not None
    assert refused_400() == before + 1


# -- 7: header size and count ------------------------------------------------------------------


def test_headers_larger_than_the_limit_are_refused_before_they_end(edge: Edge) -> None:
    with connect(edge.default) as sock:
        sock.sendall(head(REGISTER, "X-Big: " + "a" * 20_000))  # no blank line: never ends
        reply = read_reply(sock)
        assert reply is not None and reply.status == 400
        assert reply.envelope() == {"error": 400, "error_text": "headers: larger than 16384 bytes"}


def test_too_many_headers_are_refused(edge: Edge) -> None:
    lines = [f"X-H{i}: {i}" for i in range(101)]
    with connect(edge.default) as sock:
        sock.sendall(head(REGISTER, *lines, "Content-Length: 2") + b"\r\n{}")
        reply = read_reply(sock)
        assert reply is not None and reply.status == 400
        assert reply.envelope() == {"error": 400, "error_text": "headers: more than 100"}


def test_a_header_bomb_costs_no_memory_and_stalls_nobody(edge: Edge) -> None:
    """64 MiB of one header, sent as fast as the server takes it: refused after 16 KiB, so the
    server's memory does not grow and a normal request right after is answered at once (a
    100 MB header held 260 MB and made a normal request wait 8.5 s)."""
    before = rss_kib(edge.default)
    piece = b"a" * (1024 * 1024)
    sent = 0
    with connect(edge.default, timeout=10) as sock:
        try:
            sock.sendall(head(REGISTER, "Content-Type: application/json") + b"X-Bomb: ")
            for _ in range(64):
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
    # The server stopped reading at the limit: only the sockets' buffers took the rest.
    assert sent < 48 * 1024 * 1024, f"the server read {sent} bytes of one header"
    grown = rss_kib(edge.default) - before
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB"
    with httpx.Client(timeout=10) as client:
        status, seconds = timed_register(client, edge.default.url, uuid.uuid4().hex)
    assert status == 200 and seconds < 0.5, (status, seconds)


# -- 6: slow and idle clients ------------------------------------------------------------------


def test_slow_bodies_do_not_take_the_in_flight_slots(edge: Edge) -> None:
    """Six times more clients than in-flight slots, each sending 10 of its 1,000 body bytes,
    and normal requests are still answered 200, fast (before: 503 while they were held)."""
    slow: list[socket.socket] = []
    run = uuid.uuid4().hex[:8]
    try:
        for _ in range(6 * IN_FLIGHT):
            sock = connect(edge.tight)
            sock.sendall(head(REGISTER, "Content-Type: application/json", "Content-Length: 1000"))
            sock.sendall(b"\r\n" + b"{" * 10)
            slow.append(sock)
        time.sleep(0.2)  # let the server take them all in
        with httpx.Client(timeout=10) as client:
            timed_register(client, edge.tight.url, f"{run} warm-up")
            results = [timed_register(client, edge.tight.url, f"{run} {i}") for i in range(20)]
        assert [status for status, _ in results] == [200] * 20
        latencies = sorted(seconds for _, seconds in results)
        assert statistics.median(latencies) <= 0.05, latencies
        assert latencies[17] <= 0.05, latencies  # p90
        # And each slow client is answered once its body's deadline passes, then closed.
        for sock in slow[:4]:
            sock.settimeout(DEADLINE + 4)
            reply = read_reply(sock)
            assert reply is not None and reply.status == 400
            assert reply.envelope()["error_text"] == "body: not received within 1 s of the headers"
            assert closed(sock)
    finally:
        for sock in slow:
            sock.close()


def test_a_chunked_body_that_never_ends_is_answered_and_closed(edge: Edge) -> None:
    with connect(edge.tight, timeout=DEADLINE + 4) as sock:
        sock.sendall(head(REGISTER, "Content-Type: application/json", "Transfer-Encoding: chunked"))
        sock.sendall(b"\r\n2\r\n{}\r\n")  # and never the last chunk
        started = time.monotonic()
        reply = read_reply(sock)
        assert reply is not None and reply.status == 400, reply
        assert reply.envelope()["error_text"] == "body: not received within 1 s of the headers"
        assert time.monotonic() - started < DEADLINE + 2
        assert closed(sock)


def test_a_request_head_that_never_ends_is_answered_and_closed(edge: Edge) -> None:
    with connect(edge.tight, timeout=DEADLINE + 4) as sock:
        sock.sendall(head(REGISTER, "Content-Type: application/json"))  # no blank line
        reply = read_reply(sock)
        assert reply is not None and reply.status == 400
        assert reply.envelope() == {"error": 400, "error_text": "headers: not received within 1 s"}
        assert closed(sock)


def test_idle_connections_are_closed(edge: Edge) -> None:
    """Connections that never send a byte, and one idle after a reply, are closed after the
    keep-alive timeout (before: never)."""
    idle = [connect(edge.tight, timeout=DEADLINE + 4) for _ in range(200)]
    try:
        with connect(edge.tight, timeout=DEADLINE + 4) as used:
            body = register_body(uuid.uuid4().hex)
            used.sendall(
                head(REGISTER, "Content-Type: application/json", f"Content-Length: {len(body)}")
                + b"\r\n"
                + body
            )
            reply = read_reply(used)
            assert reply is not None and reply.status == 200
            assert closed(used)
        assert all(closed(sock) for sock in idle)
    finally:
        for sock in idle:
            sock.close()


def test_a_body_after_an_early_413_does_not_hold_the_connection(edge: Edge) -> None:
    """A 413 on Content-Length is sent before the body; the rest of the body is read and
    dropped, and the connection is then idle like any other."""
    with connect(edge.tight, timeout=DEADLINE + 4) as sock:
        size = 3 * 1024 * 1024
        sock.sendall(head(REGISTER, "Content-Type: application/json", f"Content-Length: {size}"))
        sock.sendall(b"\r\n")
        reply = read_reply(sock)
        assert reply is not None and reply.status == 413
        assert reply.envelope()["error_text"] == (
            "body: larger than 2097152 bytes, the limit of goals/register"
        )
        sock.sendall(b" " * size)
        assert closed(sock)


# -- 8: large bodies ---------------------------------------------------------------------------


def batch_xml(size: int) -> bytes:
    """A profiles/import_batch XML body of about ``size`` bytes: many small items (the XML
    parser's slowest shape per byte)."""
    item = b"<data><email>someone@example.com</email></data>"
    start = f"<xml><token>{TOKEN}</token><db_id>1</db_id>".encode()
    return start + item * ((size - len(start)) // len(item)) + b"</xml>"


def register_json(size: int) -> bytes:
    goal = b'{"goal":"g","value":1},'
    start = f'{{"token":"{TOKEN}","db_id":1,"pixel_id":1,"email":"a@example.com","goals":['
    count = (size - len(start) - 3) // len(goal)
    return start.encode() + goal * count + b'{"goal":"g"}]}'


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.mark.parametrize(
    ("path", "make", "size", "content_type", "expected", "target"),
    [
        pytest.param(
            REGISTER, register_json, 9_900_000, "application/json", 413, 0.05,
            id="register-10MB-json-413",
        ),
        pytest.param(
            BATCH, batch_xml, 2_000_000, "application/xml", 400, 0.25,
            id="import_batch-2MB-xml-decoded-off-the-loop",
        ),
    ],
)  # fmt: skip
def test_large_bodies_do_not_stall_small_requests(
    edge: Edge,
    path: str,
    make: Callable[[int], bytes],
    size: int,
    content_type: str,
    expected: int,
    target: float,
) -> None:
    """Eight clients sending large bodies at once, again and again for 3 s, while a probe
    registers one goal at a time. 10 MB goals/register bodies are refused on their
    Content-Length, and the probe's p99 stays within 50 ms (or 3 times its p99 without them,
    where the machine itself is that slow). import_batch bodies are decoded on a worker
    thread: the probe then shares the GIL with it and slows (p99 70-140 ms measured on two
    busy cores), but never waits for a whole decoding. Before, the bodies were decoded one
    after another on the event loop and the probe waited for seconds."""
    big = make(size)
    run = uuid.uuid4().hex[:8]  # goal names no other test sends (no replays)
    done: list[int] = []
    until = time.monotonic() + 3

    def send_big() -> None:
        # Raw sockets: sendall waits without the GIL, so the probe's own process stays quick.
        # Each sends at about 10 MB/s, as over a network: on loopback the kernel's copying
        # would take the machine's cores from the server, whatever the server does.
        while True:
            with connect(edge.default, timeout=60) as sock:
                sock.sendall(head(path, f"Content-Type: {content_type}",
                                  f"Content-Length: {len(big)}") + b"\r\n")  # fmt: skip
                for start in range(0, len(big), 1 << 20):
                    sock.sendall(big[start : start + (1 << 20)])
                    time.sleep(0.1)
                reply = read_reply(sock)
                done.append(reply.status if reply else 0)
            if time.monotonic() > until:
                return

    senders = [threading.Thread(target=send_big) for _ in range(8)]
    latencies: list[float] = []
    with httpx.Client(timeout=10) as client:
        alone = [timed_register(client, edge.default.url, f"{run} alone {i}")[1] for i in range(30)]
        for thread in senders:
            thread.start()
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in senders) and time.monotonic() < deadline:
            status, seconds = timed_register(client, edge.default.url, f"{run} {len(latencies)}")
            assert status == 200
            latencies.append(seconds)
    for thread in senders:
        thread.join(timeout=60)
    assert len(latencies) >= 20, latencies
    assert set(done) == {expected}, done
    budget = max(target, 3 * p99(alone))
    assert p99(latencies) <= budget, (
        f"probe p99 {p99(latencies) * 1000:.1f} ms over {len(latencies)} probes; "
        f"{p99(alone) * 1000:.1f} ms alone"
    )


@pytest.mark.parametrize("where", ["body", "head"])
def test_a_client_still_sending_gets_the_refusal_not_a_reset(edge: Edge, where: str) -> None:
    """Refused while the client is still writing (a body over the method's limit with
    ``Connection: close``, or headers over the limit), the client must read the envelope: a
    plain close makes the kernel answer what the client still sends with a reset, so its write
    fails and the reply is lost (scripts/fuzz saw it once in 20,000 requests). The server
    lingers instead: it shuts its side and drops what still arrives."""
    sock = connect(edge.default)
    try:
        if where == "body":
            size = 3_000_000  # over goals/register's 2 MiB
            head = (
                f"POST {REGISTER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
            ).encode()
            rest = b"x" * size
        else:
            head = f"POST {REGISTER} HTTP/1.1\r\nHost: x\r\n".encode()
            rest = b"X-Filler: " + b"y" * 1_000_000 + b"\r\n\r\n"
        sock.sendall(head + rest[:65536])
        time.sleep(0.3)  # the server has answered and closed its side by now
        sock.sendall(rest[65536:])  # as an HTTP client does: the whole request, then the reply
        reply = read_reply(sock)
    finally:
        sock.close()
    assert reply is not None
    assert reply.status == (413 if where == "body" else 400), reply
    assert reply.envelope()["error"] == reply.status
