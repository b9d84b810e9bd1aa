"""HTTP edges: formats, status codes, size limits, the envelope on every failure."""

from __future__ import annotations

import sqlite3
import time
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pytest
from starlette.testclient import TestClient

from goalline.app import build
from goalline.errors import ERROR_CODES
from goalline.pipeline import dispatch
from goalline.settings import Settings
from goalline.storage import store as store_module
from goalline.storage.store import Store

from conftest import Seeded, events, register

URL = "/api/v1.1/goals/register"
XML_BODY = (
    "<xml><token>{token}</token><db_id>1</db_id><pixel_id>1</pixel_id>"
    "<email>a@example.com</email><goals><goal>cart</goal><value>10.99</value></goals></xml>"
)


def xml_body(seeded: Seeded) -> bytes:
    return XML_BODY.format(token=seeded.token).encode()


def test_xml_request_gets_xml_reply(client: TestClient, seeded: Seeded, store: Store) -> None:
    r = client.post(URL, content=xml_body(seeded), headers={"Content-Type": "application/xml"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<xml><error>0</error>')
    assert "<error_text>Successful operation</error_text>" in r.text
    assert [(e["goal"], e["value"]) for e in events(store)] == [("cart", 10.99)]


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"Accept": "application/json"}, "", "application/json"),
        ({}, "?format=json", "application/json"),
        ({"Accept": "*/*"}, "", "application/xml"),
    ],
)
def test_reply_format_negotiation(
    client: TestClient, seeded: Seeded, headers: dict[str, str], query: str, expected: str
) -> None:
    r = client.post(
        URL + query, content=xml_body(seeded), headers={"Content-Type": "text/xml", **headers}
    )
    assert r.headers["content-type"].startswith(expected)


def test_format_body_field_asks_for_xml(client: TestClient, seeded: Seeded) -> None:
    r = register(client, seeded, email="a@example.com", format="xml")
    assert r.text.startswith("<?xml")


def test_xml_errors_come_as_xml(client: TestClient, seeded: Seeded) -> None:
    body = b"<xml><token>x</token><db_id>1</db_id><pixel_id>1</pixel_id></xml>"
    r = client.post(URL, content=body, headers={"Content-Type": "application/xml"})
    assert r.status_code == 400
    assert "<error>400</error><error_text>email: required when matching is email</error_text>" in (
        r.text
    )


@pytest.mark.parametrize(
    ("body", "content_type", "status", "text"),
    [
        (b"{", "application/json", 400, "body: malformed JSON"),
        (b"", "application/json", 400, "body: empty; send a JSON object"),
        (b"[1, 2]", "application/json", 400, "body: expected object, got array"),
        (b'{"db_id": "1"}', "application/json", 400, "db_id: expected int, got str"),
        (b'{"goals": [{"value": "x"}]}', "application/json", 400, "goals[0].value: expected"),
        (b"<xml><db_id>one</db_id></xml>", "application/xml", 400, "db_id: expected int"),
        (b"<root/>", "application/xml", 400, "body: XML root element must be <xml>"),
        (b"a=1", "application/x-www-form-urlencoded", 415, "content-type"),
        (b"--x", "multipart/form-data; boundary=x", 415, "content-type"),
        (b"\xff\xfe", "application/json", 400, "body: malformed JSON"),
    ],
)
def test_bad_bodies_get_a_named_error(
    client: TestClient, body: bytes, content_type: str, status: int, text: str
) -> None:
    r = client.post(URL, content=body, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    if "xml" in content_type:
        assert f"<error>{status}</error><error_text>{xml_escape(text)}" in r.text
    else:
        assert r.json()["error"] == status
        assert r.json()["error_text"].startswith(text), r.json()


def test_body_over_the_limit_is_413(store: Store, seeded: Seeded) -> None:
    app = build(Settings(database=store.location.target, max_body_bytes=1000), store)
    with TestClient(app.asgi) as c:
        r = c.post(
            URL, content=b"{" + b" " * 2000 + b"}", headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 413
    assert r.json() == {
        "error": 413,
        "error_text": "body: larger than 1000 bytes, the limit of goals/register",
    }


def test_error_status_200_setting(store: Store, seeded: Seeded) -> None:
    app = build(Settings(database=store.location.target, error_status="200"), store)
    with TestClient(app.asgi) as c:
        r = c.post(URL, json={"token": "nope", "db_id": 1, "pixel_id": 1, "email": "a@b.cd"})
    assert r.status_code == 200
    assert r.json()["error"] == 401


def test_get_is_refused_with_the_envelope(client: TestClient) -> None:
    r = client.get(URL)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error_text"] == "method: GET is not allowed; use POST"


def test_unknown_method_and_path(client: TestClient) -> None:
    r = client.post("/api/v1.1/goals/unknown", json={})
    assert r.status_code == 404 and r.json()["error_text"] == (
        "method: unknown API method 'goals/unknown'"
    )
    r = client.get("/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == 404


@pytest.mark.parametrize("path", ["/api/v1.1//goals/register", "/api/v1.1/goals/register/"])
def test_lenient_paths(client: TestClient, seeded: Seeded, path: str) -> None:
    body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "a@example.com"}
    assert client.post(path, json=body).json()["error"] == 0


def test_unexpected_failure_is_a_500_envelope_without_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> dict[str, Any]:
        raise ZeroDivisionError("secret detail")

    method = dispatch.METHODS["goals/register"]
    monkeypatch.setitem(
        dispatch.METHODS,
        "goals/register",
        dispatch.Method(method.name, method.request, broken, method.summary),
    )
    r = client.post(URL, json={})
    assert r.status_code == 500
    assert r.json()["error"] == 500
    assert r.json()["error_text"].startswith("internal error (reference ")
    assert "secret" not in r.text and "Traceback" not in r.text


def test_storage_unavailable_is_503_with_retry_after(
    store: Store, seeded: Seeded, kind: str, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "sqlite":  # another process holds the write lock past the busy timeout
        monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
        blocker = sqlite3.connect(store.location.target, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
    else:
        kill_pool_connections(store)
    r = register(client, seeded, email="a@example.com", goal="g")
    if kind == "sqlite":
        blocker.execute("ROLLBACK")
        blocker.close()
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.json()["error_text"] == "storage unavailable; nothing was recorded"
    # and the service recovers by itself
    assert register(client, seeded, email="a@example.com", goal="g").json()["error"] == 0
    assert len(events(store)) == 1


def kill_pool_connections(store: Store) -> None:
    """Terminate every connection of the store's PostgreSQL pool, as a database restart would.

    The app's start-up work (the statistics check) may still hold a connection when the test
    begins, and an active backend is not killed here; so wait until every pooled connection is
    back in the pool, kill the idle ones, and check that the count matches the pool's size."""
    import psycopg

    pool = store._pool  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    with psycopg.connect(store.location.target, autocommit=True) as admin_conn:
        while True:
            stats = pool.get_stats()
            if stats["pool_available"] == stats["pool_size"] and not stats.get("requests_waiting"):
                killed = admin_conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                    "AND state = 'idle'"
                ).fetchone()
                if killed and killed[0] >= stats["pool_size"]:
                    return
            assert time.monotonic() < deadline, f"pool never went quiet: {stats}"
            time.sleep(0.05)


def test_every_error_code_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    for code in ERROR_CODES:
        assert f"| {code} |" in doc, f"error code {code} missing from docs/api.md"


def test_rate_limit_answers_429_with_retry_after(store: Store, seeded: Seeded) -> None:
    app = build(Settings(database=store.location.target, rate_limit=1), store)
    with TestClient(app.asgi) as c:
        body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "a@example.com"}
        replies = [c.post(URL, json={**body, "goal": f"g{i}"}) for i in range(3)]
        other = c.post(URL, json={**body, "token": seeded.scoped_token})
    assert [r.status_code for r in replies] == [200, 200, 429]
    assert replies[2].headers["retry-after"] == "1"
    assert replies[2].json()["error_text"] == "token: more than 1 requests per second; retry in 1 s"
    assert other.status_code == 200  # buckets are per token
    assert len(events(store)) == 3


def test_overload_answers_503_before_reading_the_body(store: Store, seeded: Seeded) -> None:
    app = build(Settings(database=store.location.target, max_in_flight=0), store)
    with TestClient(app.asgi) as c:
        r = c.post(URL, json={"token": seeded.token, "db_id": 1, "pixel_id": 1})
        noop = c.post("/bench/noop", content=b"{}")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json() == {"error": 503, "error_text": "server: overloaded; nothing was recorded"}
    assert noop.json() == {"error": 0, "error_text": "Successful operation"}
    assert events(store) == []


def test_metrics_count_requests_and_events(client: TestClient, seeded: Seeded) -> None:
    register(client, seeded, email="a@example.com", goals=[{"goal": "a"}, {"goal": "b"}])
    register(client, seeded, email="a@example.com", goals=[{"goal": "a"}, {"goal": "b"}])
    register(client, seeded, token="nope", email="a@example.com")
    text = client.get("/metrics").text
    assert (
        'goalline_api_requests_total{error="0",method="goals/register",transport="http"} 2.0'
        in (text)
    )
    assert 'goalline_api_requests_total{error="401",method="goals/register",transport="http"}' in (
        text
    )
    assert "goalline_goal_events_stored_total 2.0" in text  # the repeat stored nothing
    assert "goalline_duplicate_requests_total 1.0" in text


def test_openapi_document_describes_every_method(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for name in dispatch.METHODS:
        operation = doc["paths"][f"/api/v1.1/{name}"]["post"]
        assert set(operation["requestBody"]["content"]) == {"application/json", "application/xml"}
    register_schema = doc["components"]["schemas"]["RegisterRequest"]["properties"]
    assert register_schema["vendor"]["anyOf"][0]["maxLength"] == 128
    assert register_schema["user_agent"]["anyOf"][0]["maxLength"] == 2048
