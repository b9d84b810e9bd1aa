"""Exactly-once (issue 5): request deduplication and external-id idempotency, on both stores,
in process and across real server processes."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from goalline.app import build
from goalline.pipeline import dedupe
from goalline.settings import Settings
from goalline.storage.store import Store

from conftest import Seeded, events, goalline, start_server

URL = "/api/v1.1/goals/register"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dclient(store: Store, seeded: Seeded, clock: Clock) -> Any:
    app = build(Settings(database=store.location.target), store, clock=clock)
    with TestClient(app.asgi) as c:
        yield c


def body(seeded: Seeded, **fields: Any) -> dict[str, Any]:
    return {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "a@example.com",
            "goal": "purchase", "value": 10, **fields}  # fmt: skip


def assert_duplicate(first: Any, repeat: Any) -> None:
    assert repeat.status_code == first.status_code == 200
    assert repeat.content == first.content
    assert repeat.headers["content-type"] == first.headers["content-type"]
    assert repeat.headers["duplicate-request"] == "true"
    assert repeat.headers["x-duplicate-request"] == "true"
    key = repeat.headers["duplicate-key"]
    assert len(key) == 28 and repeat.headers["x-duplicate-key"] == key
    assert "duplicate-request" not in first.headers


def test_same_content_is_a_duplicate(dclient: TestClient, seeded: Seeded, store: Store) -> None:
    first = dclient.post(URL, json=body(seeded))
    # the same request spelled differently: key order, whitespace, a trailing newline
    text = json.dumps(dict(reversed(list(body(seeded).items()))), indent=2) + "\n"
    repeat = dclient.post(URL, content=text, headers={"Content-Type": "application/json"})
    assert_duplicate(first, repeat)
    assert len(events(store)) == 1


def test_request_id_header_is_the_key(dclient: TestClient, seeded: Seeded, store: Store) -> None:
    first = dclient.post(URL, json=body(seeded), headers={"Request-ID": "r-1"})
    changed = dclient.post(URL, json=body(seeded, value=99), headers={"X-Request-ID": "r-1"})
    assert_duplicate(first, changed)  # Altcraft: the Request-ID decides, not the content
    other = dclient.post(URL, json=body(seeded), headers={"Request-ID": "r-2"})
    assert "duplicate-request" not in other.headers
    assert [e["value"] for e in events(store)] == [10, 10]


def test_keys_belong_to_a_token(dclient: TestClient, seeded: Seeded, store: Store) -> None:
    dclient.post(URL, json=body(seeded), headers={"Request-ID": "r-1"})
    r = dclient.post(URL, json=body(seeded, token=seeded.scoped_token),
                     headers={"Request-ID": "r-1"})  # fmt: skip
    assert "duplicate-request" not in r.headers
    assert len(events(store)) == 2


def test_xml_replay_is_byte_for_byte(dclient: TestClient, seeded: Seeded, store: Store) -> None:
    xml = (
        f"<xml><token>{seeded.token}</token><db_id>1</db_id><pixel_id>1</pixel_id>"
        "<email>a@example.com</email><goal>purchase</goal><value>10</value></xml>"
    )
    headers = {"Content-Type": "application/xml"}
    first = dclient.post(URL, content=xml, headers=headers)
    repeat = dclient.post(URL, content=xml, headers=headers)
    assert first.text.startswith("<?xml")
    assert_duplicate(first, repeat)
    assert len(events(store)) == 1


def test_window_expires(dclient: TestClient, seeded: Seeded, store: Store, clock: Clock) -> None:
    dclient.post(URL, json=body(seeded))
    clock.now += dt.timedelta(seconds=86_399)
    assert dclient.post(URL, json=body(seeded)).headers.get("duplicate-request") == "true"
    clock.now += dt.timedelta(seconds=2)  # past 86,400 s after the first request
    r = dclient.post(URL, json=body(seeded))
    assert "duplicate-request" not in r.headers and r.json()["error"] == 0
    assert len(events(store)) == 2


def test_failed_requests_are_not_remembered(
    dclient: TestClient, seeded: Seeded, store: Store
) -> None:
    r = dclient.post(URL, json=body(seeded, pixel_id=99))
    assert r.status_code == 404
    again = dclient.post(URL, json=body(seeded, pixel_id=99))
    assert again.status_code == 404 and "duplicate-request" not in again.headers


def test_dedup_can_be_turned_off(store: Store, seeded: Seeded) -> None:
    app = build(Settings(database=store.location.target, dedup_window=0), store)
    with TestClient(app.asgi) as c:
        c.post(URL, json=body(seeded))
        assert "duplicate-request" not in c.post(URL, json=body(seeded)).headers
    assert len(events(store)) == 2


def test_profile_import_is_deduplicated(dclient: TestClient, seeded: Seeded) -> None:
    payload = {"token": seeded.token, "db_id": 1, "email": "p@example.com", "data": {}}
    first = dclient.post("/api/v1.1/profiles/import", json=payload)
    assert_duplicate(first, dclient.post("/api/v1.1/profiles/import", json=payload))


def test_expired_keys_are_cleaned_up(
    dclient: TestClient, seeded: Seeded, store: Store, clock: Clock
) -> None:
    for i in range(5):
        dclient.post(URL, json=body(seeded, value=i))
    count = "SELECT COUNT(*) FROM request_log"
    assert store.call(lambda tx: tx.scalar(count)) == 5
    later = clock.now + dt.timedelta(days=2)
    assert store.call(lambda tx: dedupe.forget_expired(tx, later, batch=3)) == 3
    assert store.call(lambda tx: dedupe.forget_expired(tx, later, batch=3)) == 2
    assert store.call(lambda tx: tx.scalar(count)) == 0


# -- external ids ------------------------------------------------------------------------------


def external(seeded: Seeded, **fields: Any) -> dict[str, Any]:
    return body(seeded, external_type="order", external_event_id="o-1", **fields)


def test_external_id_stores_once(dclient: TestClient, seeded: Seeded, store: Store) -> None:
    first = dclient.post(URL, json=external(seeded), headers={"Request-ID": "a"})
    repeat = dclient.post(URL, json=external(seeded), headers={"Request-ID": "b"})
    assert repeat.json()["error"] == 0
    assert repeat.json()["event_ids"] == first.json()["event_ids"]
    assert repeat.json()["duplicate_event_ids"] == first.json()["event_ids"]
    assert "duplicate_event_ids" not in first.json()
    assert len(events(store)) == 1


def test_external_id_with_another_payload_is_409(
    dclient: TestClient, seeded: Seeded, store: Store
) -> None:
    dclient.post(URL, json=external(seeded))
    r = dclient.post(URL, json=external(seeded, value=11))
    assert r.status_code == 409
    assert r.json()["error_text"].startswith(
        "external_event_id: 'order'/'o-1' for goal 'purchase' was already stored with a "
        "different payload"
    )
    assert len(events(store)) == 1


def test_external_id_is_per_goal_name_and_database(
    dclient: TestClient, seeded: Seeded, store: Store
) -> None:
    r = dclient.post(URL, json=external(seeded, goal=None, value=None, goals=[
        {"goal": "cart", "value": 1}, {"goal": "paid", "value": 2}, {"goal": "cart", "value": 1},
    ]))  # fmt: skip
    ids = r.json()["event_ids"]
    assert ids[0] == ids[2] and ids[0] != ids[1]
    assert r.json()["duplicate_event_ids"] == [ids[0]]
    other_db = dclient.post(URL, json=external(seeded, db_id=2, pixel_id=3))
    assert other_db.json()["error"] == 0 and "duplicate_event_ids" not in other_db.json()
    assert len(events(store)) == 3


def test_conflict_inside_one_request_stores_nothing(
    dclient: TestClient, seeded: Seeded, store: Store
) -> None:
    r = dclient.post(URL, json=external(seeded, goal=None, value=None, goals=[
        {"goal": "cart", "value": 1}, {"goal": "cart", "value": 2},
    ]))  # fmt: skip
    assert r.status_code == 409
    assert events(store) == []


# -- across processes --------------------------------------------------------------------------


def setup_cli(database: str) -> str:
    goalline("db", "create", "Shop", "--id", "1", database=database)
    goalline("pixel", "create", "Site", "--db", "1", "--id", "1", database=database)
    token = goalline("token", "create", "t", "--json", database=database).stdout
    return str(json.loads(token)["token"])


def test_racing_repeats_on_two_servers_store_once(server_database: str) -> None:
    token = setup_cli(server_database)
    servers = [start_server(server_database), start_server(server_database)]
    try:
        payload = {"token": token, "db_id": 1, "pixel_id": 1, "email": "race@example.com",
                   "goal": "paid", "value": 5}  # fmt: skip

        def send(i: int) -> httpx2.Response:
            url = servers[i % 2].url + URL
            return httpx2.post(url, json=payload, headers={"Request-ID": "race-1"}, timeout=30)

        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(send, range(32)))
    finally:
        for server in servers:
            server.stop()
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1  # 32 identical replies
    assert sum(r.headers.get("duplicate-request") == "true" for r in replies) == 31
    store = _open(server_database)
    assert len(events(store)) == 1
    store.close()


def test_duplicate_is_detected_after_a_restart(server_database: str) -> None:
    token = setup_cli(server_database)
    payload = {"token": token, "db_id": 1, "pixel_id": 1, "email": "r@example.com", "goal": "g"}
    server = start_server(server_database)
    first = httpx2.post(server.url + URL, json=payload)
    server.kill()
    server = start_server(server_database)
    try:
        repeat = httpx2.post(server.url + URL, json=payload)
    finally:
        server.stop()
    assert repeat.headers["duplicate-request"] == "true"
    assert repeat.content == first.content


def _open(database: str) -> Store:
    from goalline.storage.store import open_store

    return open_store(database)


def test_an_expired_key_is_taken_over_once(store: Store) -> None:
    """Two processes that both read an expired entry must not both replace it: the second
    finds it no longer expired (or gone) and its unit runs again, then finding the reply."""
    from goalline.model import LogEntry

    old = LogEntry("k", "goals/register", "2026-01-01T00:00:00.000000Z",
                   "2026-01-02T00:00:00.000000Z", "json", '{"error":0}')  # fmt: skip
    store.call(lambda tx: tx.log_requests([old]))

    def newer(at: str, reply: str) -> LogEntry:
        return LogEntry("k", "goals/register", at, "2026-03-01T00:00:00.000000Z", "json", reply)

    first = newer("2026-02-01T00:00:00.000000Z", '{"error":0,"first":1}')
    second = newer("2026-02-01T00:00:01.000000Z", '{"error":0,"second":1}')
    assert store.call(lambda tx: tx.replace_logged_request(first)) is True
    assert store.call(lambda tx: tx.replace_logged_request(second)) is False
    row = store.call(lambda tx: tx.request_log_rows(["k"]), write=False)["k"]
    assert row.reply == first.reply
    store.call(lambda tx: tx.forget_requests_before("2026-04-01T00:00:00.000000Z", 10))
    assert store.call(lambda tx: tx.replace_logged_request(second)) is False  # gone: not there
