"""Retention (goalline prune): goal events before a date go, in small transactions, on both
stores; later events, other databases' events, profiles and live request keys stay."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from goalline.model import LogEntry
from goalline.pipeline import admin
from goalline.storage.store import Store

from conftest import Seeded, events, now, register

OLD = ("2020-01-01T10:00:00Z", "2020-06-01T10:00:00+03:00", "2020-12-31T23:59:59Z")
CUTOFF = "2021-01-01T00:00:00.000000Z"


def _register_all(client: TestClient, seeded: Seeded) -> dict[str, list[int]]:
    """A profile with old and recent events in database 1, an old event in database 2; the
    events' ids by kind."""
    imported = client.post(
        "/api/v1.1/profiles/import",
        json={"token": seeded.token, "db_id": 1, "email": "a@example.com"},
    )
    assert imported.json()["error"] == 0, imported.text
    ids: dict[str, list[int]] = {"old": [], "recent": [], "other": []}
    for date in OLD:
        reply = register(client, seeded, email="a@example.com", goal="old", date=date).json()
        ids["old"] += reply["event_ids"]
    for goal in ("recent", "recent 2"):
        ids["recent"] += register(client, seeded, email="a@example.com", goal=goal).json()[
            "event_ids"
        ]
    other = register(
        client, seeded, db_id=2, pixel_id=3, email="b@example.com", goal="old", date=OLD[0]
    ).json()
    ids["other"] += other["event_ids"]
    assert all(ids.values()), ids
    return ids


def _goals(history: dict[str, Any]) -> list[str]:
    return [action["goal"] for action in history["data"] if action.get("goal")]


def _ids(store: Store) -> set[int]:
    return {event["id"] for event in events(store)}


def test_prune_deletes_events_before_the_date(
    store: Store, client: TestClient, seeded: Seeded
) -> None:
    ids = _register_all(client, seeded)
    before = store.call(
        lambda uow: admin.prunable(uow, before=CUTOFF, db_id=1, now=now()), write=False
    )
    assert before.events == len(ids["old"])

    seen: list[int] = []
    pruned = admin.prune(store, before=CUTOFF, db_id=1, now=now(), batch=2, progress=seen.append)
    assert pruned.events == len(ids["old"])
    assert seen == [2, 3]  # two transactions of at most 2 events
    assert _ids(store) == set(ids["recent"] + ids["other"])
    # The profile stays, with its recent events only.
    profile = client.post(
        "/api/v1.1/profiles/get",
        json={"token": seeded.token, "db_id": 1, "email": "a@example.com"},
    ).json()
    assert profile["error"] == 0, profile
    history = client.post(
        "/api/v1.1/subscribers/history_get",
        json={"token": seeded.token, "db_id": 1, "email": "a@example.com"},
    ).json()
    assert history["error"] == 0, history
    assert sorted(goal for goal in _goals(history)) == ["recent", "recent 2"]

    everywhere = admin.prune(store, before=CUTOFF, db_id=None, now=now())
    assert everywhere.events == len(ids["other"])
    assert _ids(store) == set(ids["recent"])
    again = admin.prune(store, before=CUTOFF, db_id=None, now=now())
    assert again.events == 0


def test_prune_deletes_expired_request_keys_only(
    store: Store, client: TestClient, seeded: Seeded
) -> None:
    expired = [
        LogEntry(f"old-{i}", "goals/register", OLD[0], "2020-01-02T10:00:00.000000Z", "json", "{}")
        for i in range(3)
    ]
    assert store.call(lambda uow: uow.log_requests(expired))
    live = register(client, seeded, email="a@example.com", goal="live")  # kept for a day
    found = store.call(
        lambda uow: admin.prunable(uow, before=CUTOFF, db_id=None, now=now()), write=False
    )
    assert found == admin.Pruned(events=0, requests=3)
    pruned = admin.prune(store, before=CUTOFF, db_id=None, now=now(), batch=2)
    assert pruned == admin.Pruned(events=0, requests=3)
    keys = store.call(lambda uow: uow.all("SELECT key FROM request_log"), write=False)
    assert len(keys) == 1 and not keys[0][0].startswith("old-")
    # The live key still deduplicates: the same request again records nothing.
    repeat = register(client, seeded, email="a@example.com", goal="live")
    assert repeat.headers.get("duplicate-request") == "true"
    assert repeat.json() == live.json()
    assert len(events(store)) == 1


def test_prune_refuses_an_unknown_database(store: Store, seeded: Seeded) -> None:
    with pytest.raises(admin.AdminError, match="database 9 not found"):
        store.call(lambda uow: admin.prunable(uow, before=CUTOFF, db_id=9, now=now()))
