"""Concurrent registrations written as one batch per group (issue 6), on both stores.

Requests that arrive together are planned together and written with one INSERT for all their
events and one for all their request-log rows. These tests send a mix of requests at once and
check that every client gets exactly the reply it would get alone, and that the store holds
exactly one event per acknowledged goal, each with its own request's values.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from goalline.app import build
from goalline.pipeline import admin, dedupe, profiles, register
from goalline.settings import Settings
from goalline.storage.store import Store, Tx, open_store

from conftest import Seeded, events, now

URL = "/api/v1.1/goals/register"


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the batches register_group was given (the batch path must be taken)."""
    sizes: list[int] = []
    real = register.register_group

    def spy(tx: Tx, items: list[Any]) -> Any:
        sizes.append(len(items))
        return real(tx, items)

    monkeypatch.setattr(register, "register_group", spy)
    return sizes


def post_all(store: Store, bodies: list[dict[str, Any]]) -> list[httpx2.Response]:
    app = build(Settings(database=store.location.target), store)

    async def main() -> list[httpx2.Response]:
        transport = httpx2.ASGITransport(app=app.asgi)
        async with httpx2.AsyncClient(transport=transport, base_url="http://goalline") as client:
            return await asyncio.gather(*(client.post(URL, json=body) for body in bodies))

    return asyncio.run(main())


def seed_profiles(store: Store, count: int) -> list[str]:
    def seed(tx: Tx) -> list[str]:
        fields = {"CRM_ID": "string"}
        return [
            profiles.create(tx, db_id=1, data={"email": f"p{i}@example.com"}, fields=fields,
                            now=now())
            for i in range(count)
        ]  # fmt: skip

    return store.call(seed)


def test_a_mixed_group_gets_the_replies_each_request_would_get_alone(
    store: Store, seeded: Seeded, batches: list[int]
) -> None:
    ids = seed_profiles(store, 10)
    store.call(lambda tx: admin.set_policy(tx, db_id=2, policy="reject"))
    base = {"token": seeded.token, "db_id": 1, "pixel_id": 1}
    bodies: list[dict[str, Any]] = []
    expect: list[Any] = []
    for i in range(40):
        if i % 4 == 0:
            bodies.append({**base, "matching": "profile_id", "profile_id": ids[i % 10],
                           "goal": "view", "value": i})  # fmt: skip
            expect.append(ids[i % 10])
        elif i % 4 == 1:
            bodies.append({**base, "email": f"P{i % 10}@Example.com", "goal": "cart", "value": i})
            expect.append(ids[i % 10])
        elif i % 4 == 2:
            bodies.append({**base, "email": f"nobody{i}@example.com", "goal": "visit", "value": i})
            expect.append(None)  # policy record: stored without a profile
        else:
            goals = [{"goal": "a", "value": i}, {"goal": "b", "value": i}]
            bodies.append({**base, "email": f"p{i % 10}@example.com", "goals": goals})
            expect.append(ids[i % 10])
    refused = [
        ({**base, "db_id": 9, "goal": "x", "email": "p1@example.com"}, 404, "db_id: database 9"),
        ({**base, "pixel_id": 3, "goal": "x", "email": "p1@example.com"}, 403, "pixel_id: pixel 3"),
        ({**base, "db_id": 2, "pixel_id": 2, "goal": "x", "email": "no@example.com"}, 404,
         "profile: no profile with email 'no@example.com' in database 2"),
    ]  # fmt: skip
    replies = post_all(store, bodies + [body for body, _, _ in refused])

    assert max(batches) > 1, "the registrations were never batched"
    stored = {event["id"]: event for event in events(store)}
    acknowledged = []
    for body, reply, profile_id in zip(bodies, replies, expect, strict=False):
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data.get("profile_id") == profile_id
        goals = body.get("goals") or [{"goal": body["goal"], "value": body["value"]}]
        assert len(data["event_ids"]) == len(goals)
        for event_id, goal in zip(data["event_ids"], goals, strict=True):
            event = stored[event_id]  # each id is the event of this request and goal
            assert (event["goal"], event["value"], event["profile_id"]) == (
                goal["goal"], goal["value"], profile_id,
            )  # fmt: skip
        acknowledged += data["event_ids"]
    for (_, status, text), reply in zip(refused, replies[len(bodies) :], strict=True):
        assert reply.status_code == status and reply.json()["error_text"].startswith(text)
    assert sorted(acknowledged) == sorted(stored)  # refused requests stored nothing


def test_twins_in_one_group_store_once_and_replay(
    store: Store, seeded: Seeded, batches: list[int]
) -> None:
    base = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "goal": "buy"}
    bodies = [{**base, "email": f"t{i // 2}@example.com", "value": i // 2} for i in range(30)]
    replies = post_all(store, bodies)
    assert max(batches) > 1
    for first, twin in zip(replies[::2], replies[1::2], strict=True):
        assert first.status_code == twin.status_code == 200
        assert first.content == twin.content  # the same reply, byte for byte
        replayed = [r for r in (first, twin) if r.headers.get("duplicate-request") == "true"]
        assert len(replayed) == 1
    assert len(events(store)) == 15


def test_a_request_logged_earlier_is_replayed_from_the_batch(
    store: Store, seeded: Seeded, batches: list[int]
) -> None:
    base = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "goal": "buy"}
    first = post_all(store, [{**base, "email": "x@example.com", "value": 1}])[0]
    bodies = [{**base, "email": f"y{i}@example.com", "value": i} for i in range(20)]
    replies = post_all(store, [*bodies, {**base, "email": "x@example.com", "value": 1}])
    assert max(batches) > 1
    assert replies[-1].content == first.content
    assert replies[-1].headers["duplicate-request"] == "true"
    assert len(events(store)) == 21


def test_a_key_taken_by_another_writer_mid_batch_falls_back_exactly(
    store: Store, seeded: Seeded, batches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process logging one of the batch's keys first makes the batch's request-log
    insert come up short: the batch's events are undone and every request runs on its own,
    so each goal is stored exactly once."""
    base = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "goal": "buy"}
    bodies = [{**base, "email": f"z{i}@example.com", "value": i} for i in range(20)]
    real_record = dedupe.record
    short: list[int] = []

    def record_comes_up_short(tx: Tx, done: list[Any]) -> bool:
        if len(done) > 1 and not short:
            short.append(len(done))
            return False  # as when ON CONFLICT DO NOTHING skipped a key another writer took
        return real_record(tx, done)

    monkeypatch.setattr(dedupe, "record", record_comes_up_short)
    replies = post_all(store, bodies)
    assert short and max(batches) > 1
    assert all(r.status_code == 200 and "duplicate-request" not in r.headers for r in replies)
    stored = events(store)
    assert sorted(e["value"] for e in stored) == list(range(20))  # once each
    assert sorted(e["id"] for e in stored) == sorted(
        i for r in replies for i in r.json()["event_ids"]
    )


def test_external_ids_in_one_group_store_each_key_once(
    store: Store, seeded: Seeded, batches: list[int]
) -> None:
    base = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "e@example.com",
            "external_type": "order"}  # fmt: skip
    first = post_all(store, [{**base, "external_event_id": "old", "goal": "buy", "value": 1}])[0]
    bodies = [
        {**base, "external_event_id": f"o{i}", "goals": [{"goal": "buy", "value": i},
                                                        {"goal": "ship", "value": i}]}
        for i in range(20)
    ]  # fmt: skip
    # The same event through another token: a new request, the same event payload.
    repeat = {**base, "token": seeded.scoped_token, "external_event_id": "old", "goal": "buy",
              "value": 1}  # fmt: skip
    clash = {**base, "external_event_id": "old", "goal": "buy", "value": 2}  # another payload
    replies = post_all(store, [*bodies, repeat, clash])
    assert max(batches) > 1
    stored = {event["id"]: event for event in events(store)}
    for body, reply in zip(bodies, replies, strict=False):
        ids = reply.json()["event_ids"]
        assert [(stored[i]["external_event_id"], stored[i]["goal"]) for i in ids] == [
            (body["external_event_id"], "buy"), (body["external_event_id"], "ship"),
        ]  # fmt: skip
    old_id = first.json()["event_ids"][0]
    assert replies[-2].json()["event_ids"] == [old_id]  # the same payload: reported, not stored
    assert replies[-2].json()["duplicate_event_ids"] == [old_id]
    assert replies[-1].status_code == 409
    assert "was already stored with a different payload" in replies[-1].json()["error_text"]
    assert len(stored) == 1 + 40


def test_enrichment_in_one_group_keeps_the_newest_event_s_values(
    store: Store, seeded: Seeded, batches: list[int]
) -> None:
    """Events of one profile in one batch enrich it as if written one by one: the value of
    the event with the latest date wins, whatever order the requests arrived in."""
    (profile_id,) = seed_profiles(store, 1)
    base = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "p0@example.com",
            "goal": "view"}  # fmt: skip
    dates = [f"2026-05-{day:02d}T10:00:00Z" for day in (3, 17, 9, 28, 1, 12)]
    bodies = [{**base, "date": date, "value": i, "city": f"City{i}", "region": f"R{i}"}
              for i, date in enumerate(dates)]  # fmt: skip
    bodies += [{**base, "email": f"q{i}@example.com", "value": i} for i in range(10)]
    replies = post_all(store, bodies)
    assert max(batches) > 1 and all(r.status_code == 200 for r in replies)
    fields = store.call(
        lambda tx: dict(tx.all("SELECT name, value FROM profile_fields WHERE profile_id = ?",
                               (profile_id,))),
        write=False,
    )  # fmt: skip
    newest = dates.index(max(dates))
    assert fields["_city"] == f'"City{newest}"' and fields["_region"] == f'"R{newest}"'


def test_a_profile_created_in_the_group_is_found_by_a_later_key_as_alone(
    store: Store, seeded: Seeded, batches: list[int]
) -> None:
    """Policy create, a tags field: "x, y" creates a profile holding both tags; a later "x" in
    the same group must find it (as it would in a transaction of its own), not create another.
    Which of a pair came first in its group is read from the event ids (written in order).
    PostgreSQL gets one writer here: with several, two groups commit side by side, and a key
    of a field that need not be unique has no order between concurrent transactions."""
    store.call(lambda tx: admin.set_policy(tx, db_id=1, policy="create"))
    base = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "goal": "g",
            "matching": "custom", "field_name": "interests"}  # fmt: skip
    bodies = []
    for i in range(12):
        bodies.append({**base, "field_value": f"t{i}-x, t{i}-y", "value": 2 * i})
        bodies.append({**base, "field_value": f"t{i}-x", "value": 2 * i + 1})
    if store.kind == "postgres":
        one_writer = open_store(store.location.target, Settings(pg_writers=1))
        try:
            replies = post_all(one_writer, bodies)
        finally:
            one_writer.close()
    else:
        replies = post_all(store, bodies)
    assert max(batches) > 1, "the registrations were never batched"
    for both, one in zip(replies[::2], replies[1::2], strict=True):
        assert both.status_code == one.status_code == 200, (both.text, one.text)
        both_first = both.json()["event_ids"][0] < one.json()["event_ids"][0]
        if both_first:  # "x" finds the profile that holds x and y
            assert one.json()["profile_id"] == both.json()["profile_id"]
        else:  # "x" created a profile with x only; "x, y" matches nobody and creates its own
            assert one.json()["profile_id"] != both.json()["profile_id"]
    profiles_made = {r.json()["profile_id"] for r in replies}
    orders = [b.json()["event_ids"][0] < o.json()["event_ids"][0] for b, o in
              zip(replies[::2], replies[1::2], strict=True)]  # fmt: skip
    assert len(profiles_made) == sum(1 if first else 2 for first in orders)
