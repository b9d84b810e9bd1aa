"""Issue 17 in the ASGI app: per-method body limits, the body memory budget, refusals counted
in the metrics, large bodies decoded off the event loop with the same outcome, and the
``?token=`` warning said once per token. (The connection's own limits need a real server:
tests/contract/test_limits.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from goalline.app import App, build
from goalline.errors import InvalidRequest
from goalline.settings import Settings
from goalline.storage.store import Store

from conftest import Seeded, events

URL = "/api/v1.1/goals/register"
BATCH = "/api/v1.1/profiles/import_batch"


def served(store: Store, **settings: Any) -> App:
    return build(Settings(database=store.location.target, **settings), store)


@pytest.fixture
def small(store: Store, seeded: Seeded) -> Iterator[TestClient]:
    """A server whose limits are small: 1,000 bytes for goals/register, 500 for the others,
    4,000 for profiles/import_batch."""
    app = served(store, max_body_bytes=4000, max_register_body_bytes=1000, max_other_body_bytes=500)
    with TestClient(app.asgi) as c:
        yield c


def padded(obj: dict[str, Any], size: int) -> bytes:
    """``obj`` as JSON, padded with spaces to ``size`` bytes (still the same request)."""
    body = json.dumps(obj).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/v1.1/goals/register", 1000),
        ("/api/v1.1/profiles/get", 500),
        ("/api/v1.1/profiles/import", 500),
        ("/api/v1.1/profiles/import_batch", 4000),
    ],
)
def test_each_method_has_its_own_body_limit(
    small: TestClient, seeded: Seeded, path: str, limit: int
) -> None:
    body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "a@example.com"}
    method = path.removeprefix("/api/v1.1/")
    at_limit = small.post(path, content=padded(body, limit))
    assert at_limit.status_code != 413, at_limit.text
    over = small.post(path, content=padded(body, limit + 1))
    assert over.status_code == 413
    assert over.json() == {
        "error": 413,
        "error_text": f"body: larger than {limit} bytes, the limit of {method}",
    }


def test_max_body_bytes_caps_every_method(store: Store, seeded: Seeded) -> None:
    app = served(store, max_body_bytes=300)  # under the defaults of both other limits
    with TestClient(app.asgi) as c:
        r = c.post(URL, content=b"{" + b" " * 400 + b"}")
    assert r.json()["error_text"] == "body: larger than 300 bytes, the limit of goals/register"


def test_refusals_are_counted_in_the_metrics(small: TestClient, seeded: Seeded) -> None:
    body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "a@example.com"}
    small.post(URL, content=padded(body, 2000))
    small.post(URL, content=padded(body, 2000))
    small.get(URL)  # the envelope's 400 (HTTP 405)
    small.post("/api/v1.1/no/such", content=padded(body, 2000))
    text = small.get("/metrics").text

    def counted(method: str, error: int) -> str:
        labels = f'error="{error}",method="{method}",transport="http"'
        found = [line for line in text.splitlines() if "{" + labels + "}" in line]
        return found[0].split()[-1] if found else "0"

    assert counted("goals/register", 413) == "2.0"
    assert counted("goals/register", 400) == "1.0"
    assert counted("unknown", 413) == "1.0"


def test_bodies_beyond_the_memory_budget_get_503(store: Store, seeded: Seeded) -> None:
    app = served(store, body_buffer_bytes=1000)
    body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "a@example.com"}
    with TestClient(app.asgi) as c:
        r = c.post(URL, content=padded(body, 1001))
        fits = c.post(URL, content=padded(body, 1000))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json() == {
        "error": 503,
        "error_text": "server: too many request bodies held at once; nothing was recorded",
    }
    assert fits.json()["error"] == 0, fits.text
    assert app.asgi.buffered == 0  # every body given back
    assert len(events(store)) == 1


XML = (
    "<xml><token>{token}</token><db_id>1</db_id><pixel_id>1</pixel_id>"
    "<email>a@example.com</email><goals><goal>cart</goal><value>10.99</value></goals>"
    "<goals><goal>buy</goal></goals></xml>"
)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_body_decoded_off_the_loop_gets_the_same_reply(
    store: Store, seeded: Seeded, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """offload_body_bytes=0: every body is decoded on a worker thread, and stored and refused
    exactly as on the loop."""
    on_loop: list[bool] = []
    from goalline.transport import api

    real_decode = api.decode

    def decode(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(api, "decode", decode)
    app = served(store, offload_body_bytes=0)
    if fmt == "json":
        good: bytes = json.dumps(
            {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "a@example.com",
             "goals": [{"goal": "cart", "value": 10.99}, {"goal": "buy"}]}
        ).encode()  # fmt: skip
        bad = b'{"db_id": "one"}'
        content_type = "application/json"
    else:
        good = XML.format(token=seeded.token).encode()
        bad = b"<xml><db_id>one</db_id></xml>"
        content_type = "application/xml"
    with TestClient(app.asgi) as c:
        ok = c.post(URL, content=good, headers={"Content-Type": content_type})
        refused = c.post(URL, content=bad, headers={"Content-Type": content_type})
    assert ok.status_code == 200, ok.text
    assert [(e["goal"], e["value"]) for e in events(store)] == [("cart", 10.99), ("buy", None)]
    assert refused.status_code == 400
    assert "db_id: expected int" in refused.text
    assert on_loop == [False, False]
    with TestClient(served(store).asgi) as c:  # small bodies stay on the loop
        c.post(URL, content=bad, headers={"Content-Type": content_type})
    assert on_loop == [False, False, True]


def test_the_query_token_warning_is_said_once_per_token(
    client: TestClient, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"db_id": 1, "pixel_id": 1, "email": "a@example.com"}
    with caplog.at_level(logging.WARNING, logger="goalline.http"):
        for i in range(3):
            r = client.post(f"{URL}?token={seeded.token}", json={**body, "goal": f"g{i}"})
            assert r.json()["error"] == 0
        client.post(f"{URL}?token={seeded.scoped_token}", json={**body, "goal": "other"})
    warnings = [r.getMessage() for r in caplog.records if "?token=" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert all(seeded.token not in w and seeded.scoped_token not in w for w in warnings)


def test_the_token_warning_memory_is_bounded() -> None:
    from goalline.transport.http import Once

    once = Once(3600, size=3)
    assert [once.first(bytes([i]), 0.0) for i in range(5)] == [True] * 5
    assert len(once.said) == 3
    assert once.first(bytes([4]), 1.0) is False  # still remembered
    assert once.first(bytes([0]), 1.0) is True  # forgotten: said again
    assert once.first(bytes([4]), 3601.0) is True  # the period passed


def test_the_servers_refusals_follow_error_status(store: Store) -> None:
    """What the HTTP server sends for a request it refused itself (transport/server.py)."""
    mirror = served(store).asgi
    legacy = served(store, error_status="200").asgi
    error = InvalidRequest("headers: more than 100")
    status, reply = mirror.edge_refusal(error, "/api/v1.1//goals/register", "")
    assert status == 400 and reply.content_type.startswith("application/json")
    assert json.loads(reply.body) == {"error": 400, "error_text": "headers: more than 100"}
    status, reply = legacy.edge_refusal(error, "/healthz", "application/xml")
    assert status == 200 and reply.content_type.startswith("application/xml")
    assert b"<error>400</error>" in reply.body
