"""subscribers/history_get on both stores (issue 4): the action shape, order, paging, date
filters, every way to name the profile, errors, and the XML form."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from goalline.codecs import xml as xml_codec

from conftest import Seeded, register

URL = "/api/v1.1/subscribers/history_get"


def import_profile(client: TestClient, seeded: Seeded, email: str) -> str:
    r = client.post(
        "/api/v1.1/profiles/import", json={"token": seeded.token, "db_id": 1, "email": email}
    )
    assert r.json()["error"] == 0, r.text
    return str(r.json()["profile_id"])


def history_get(client: TestClient, seeded: Seeded, **fields: Any) -> httpx.Response:
    body = {"token": seeded.token, "list_id": 1, "email": "a@example.com", **fields}
    return client.post(URL, json={k: v for k, v in body.items() if v is not ...})


def actions(client: TestClient, seeded: Seeded, **fields: Any) -> list[dict[str, Any]]:
    r = history_get(client, seeded, **fields)
    assert r.json()["error"] == 0, r.text
    return list(r.json()["data"])


@pytest.fixture
def pid(client: TestClient, seeded: Seeded) -> str:
    return import_profile(client, seeded, "a@example.com")


def test_a_goal_event_as_an_action(client: TestClient, seeded: Seeded, pid: str) -> None:
    r = register(
        client,
        seeded,
        email="a@example.com",
        goal="purchase",
        value=49.9,
        is_test=True,
        send_message_id="smid-1",
        external_type="order",
        external_event_id="o-1",
        utm_source="newsletter",
        utm_campaign="spring",
        referer="https://shop.example.com/",
        pixel_data={"sku": "A-1", "qty": 2},
        date="2026-03-01T10:20:30+03:00",
    )
    (event_id,) = r.json()["event_ids"]
    r = history_get(client, seeded)
    assert r.json()["error_text"] == "Successful operation"
    assert r.json()["data"] == [
        {
            "action": "goal",
            "datetime": "2026-03-01T07:20:30Z",
            "event_id": event_id,
            "profile_id": pid,
            "list_id": 1,
            "pixel_id": 1,
            "goal": "purchase",
            "is_test": True,
            "smid": "smid-1",
            "value": 49.9,
            "external_type": "order",
            "external_event_id": "o-1",
            "referer": "https://shop.example.com/",
            "utm_source": "newsletter",
            "utm_campaign": "spring",
            "pixel_data": {"sku": "A-1", "qty": 2},
        }
    ]
    assert "next_from_id" not in r.json()


def test_a_pixel_hit_is_a_pixel_action(client: TestClient, seeded: Seeded, pid: str) -> None:
    register(client, seeded, email="a@example.com", date="2026-03-01T00:00:00.250Z")
    (action,) = actions(client, seeded)
    assert action["action"] == "pixel" and "goal" not in action and "value" not in action
    assert action["datetime"] == "2026-03-01T00:00:00.25Z"
    assert action["is_test"] is False


def test_newest_first_by_event_time(client: TestClient, seeded: Seeded, pid: str) -> None:
    for goal, date in [
        ("b", "2026-02-02T00:00:00Z"),
        ("a", "2026-02-01T00:00:00Z"),  # backfilled: sits where its date puts it
        ("c", "2026-02-03T00:00:00Z"),
        ("c2", "2026-02-03T00:00:00Z"),  # same time: the later-stored one first
    ]:
        register(client, seeded, email="a@example.com", goal=goal, date=date)
    register(client, seeded, email="other@example.com", goal="not mine")
    assert [a["goal"] for a in actions(client, seeded)] == ["c2", "c", "b", "a"]


def test_paging_with_from_id(client: TestClient, seeded: Seeded, pid: str) -> None:
    for day in range(1, 8):
        register(client, seeded, email="a@example.com", goal=f"d{day}",
                 date=f"2026-02-0{day}T12:00:00Z")  # fmt: skip
    seen: list[str] = []
    from_id: Any = ...
    pages = 0
    while True:
        r = history_get(client, seeded, limit=3, from_id=from_id).json()
        seen += [a["goal"] for a in r["data"]]
        pages += 1
        if "next_from_id" not in r:
            break
        assert r["next_from_id"] == r["data"][-1]["event_id"]
        from_id = r["next_from_id"]
    assert seen == [f"d{day}" for day in range(7, 0, -1)]
    assert pages == 3


def test_default_limit_is_100(client: TestClient, seeded: Seeded, pid: str) -> None:
    register(client, seeded, email="a@example.com",
             goals=[{"goal": f"g{i}"} for i in range(101)])  # fmt: skip
    r = history_get(client, seeded).json()
    assert len(r["data"]) == 100 and "next_from_id" in r
    assert len(actions(client, seeded, limit=1000)) == 101


def test_date_filters_are_inclusive_utc_days(client: TestClient, seeded: Seeded, pid: str) -> None:
    for goal, date in [
        ("before", "2026-01-31T23:59:59Z"),
        ("first", "2026-02-01T00:00:00Z"),
        ("moscow-night", "2026-02-03T01:00:00+03:00"),  # 2026-02-02 22:00 UTC
        ("last", "2026-02-02T23:59:59.999999Z"),
        ("after", "2026-02-03T00:00:00Z"),
    ]:
        register(client, seeded, email="a@example.com", goal=goal, date=date)
    found = actions(client, seeded, date_from="2026-02-01", date_to="2026-02-02")
    assert [a["goal"] for a in found] == ["last", "moscow-night", "first"]
    assert [a["goal"] for a in actions(client, seeded, date_from="2026-02-03")] == ["after"]
    assert [a["goal"] for a in actions(client, seeded, date_to="2026-01-31")] == ["before"]


def test_every_way_to_name_the_profile(client: TestClient, seeded: Seeded, pid: str) -> None:
    client.post(
        "/api/v1.1/profiles/import",
        json={"token": seeded.token, "db_id": 1, "email": "a@example.com",
              "data": {"phones": ["+79000000001"], "CRM_ID": "c-1"}},
    )  # fmt: skip
    register(client, seeded, email="a@example.com", goal="g")
    ways: list[dict[str, Any]] = [
        {"email": " A@EXAMPLE.COM "},
        {"email": ..., "profile_id": pid},
        {"email": ..., "matching": "profile_id", "profile_id": pid},
        {"email": ..., "matching": "phone", "phone": "+7 900 000-00-01"},
        {"email": ..., "matching": "custom", "field_name": "CRM_ID", "field_value": "c-1"},
        {"list_id": ..., "db_id": 1},
        {"db_id": 1},
    ]
    for way in ways:
        assert [a["goal"] for a in actions(client, seeded, **way)] == ["g"], way


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"list_id": ...}, 400, "list_id: required (the database id; db_id is accepted too)"),
        ({"db_id": 2}, 400, "list_id: differs from db_id 2"),
        ({"email": "b@example.com"}, 404, "profile: no profile with email 'b@example.com'"),
        ({"date_from": "2026-2-1"}, 400, "date_from: must be a date YYYY-MM-DD (UTC, inclusive)"),
        ({"date_to": "20260201"}, 400, "date_to: must be a date YYYY-MM-DD"),
        ({"date_from": "2026-02-02", "date_to": "2026-02-01"}, 400, "date_to: before date_from"),
        ({"limit": 0}, 400, "limit: must be between 1 and 1000"),
        ({"limit": 1001}, 400, "limit: must be between 1 and 1000"),
        ({"from_id": 999}, 400, "from_id: event 999 is not in this profile's history"),
        ({"token": "token-db-1", "list_id": 2}, 403, "may not use database 2"),
        ({"list_id": 99}, 404, "db_id: database 99 not found"),
        ({"token": ...}, 401, "token: required"),
    ],
)
def test_errors(
    client: TestClient,
    seeded: Seeded,
    pid: str,
    change: dict[str, Any],
    status: int,
    text: str,
) -> None:
    r = history_get(client, seeded, **change)
    assert r.status_code == status, r.text
    assert text in r.json()["error_text"]


def test_from_id_of_another_profile_is_refused(
    client: TestClient, seeded: Seeded, pid: str
) -> None:
    other = register(client, seeded, email="other@example.com", goal="x").json()["event_ids"][0]
    r = history_get(client, seeded, from_id=other)
    assert r.json()["error_text"] == f"from_id: event {other} is not in this profile's history"


# -- XML --------------------------------------------------------------------------------------


def post_xml(client: TestClient, inner: str) -> dict[str, Any]:
    r = client.post(URL, content=f"<xml>{inner}</xml>", headers={"Content-Type": "application/xml"})
    assert r.text.startswith("<?xml"), r.text
    return xml_codec.decode(r.content, frozenset({"data"}))


def test_xml_history(client: TestClient, seeded: Seeded, pid: str) -> None:
    register(client, seeded, email="a@example.com", goal="one", pixel_data={"sku": "A"},
             date="2026-02-01T00:00:00Z")  # fmt: skip
    register(client, seeded, email="a@example.com", goal="two", value=2,
             pixel_data={"not a name": 1, "list": [1, 2]}, date="2026-02-02T00:00:00Z")  # fmt: skip
    reply = post_xml(
        client, f"<token>{seeded.token}</token><list_id>1</list_id><email>a@example.com</email>"
    )
    assert reply["error"] == "0"
    two, one = reply["data"]
    assert (two["action"], two["goal"], two["value"]) == ("goal", "two", "2.0")
    assert two["datetime"] == "2026-02-02T00:00:00Z" and two["profile_id"] == pid
    # keys that cannot be XML element names: the object travels as one JSON text
    assert json.loads(two["pixel_data"]) == {"not a name": 1, "list": [1, 2]}
    assert one["pixel_data"] == {"sku": "A"}
    paged = post_xml(
        client,
        f"<token>{seeded.token}</token><db_id>1</db_id><email>a@example.com</email>"
        "<limit>1</limit>",
    )
    assert [d["goal"] for d in paged["data"]] == ["two"]
    assert paged["next_from_id"] == two["event_id"]


def test_xml_errors(client: TestClient, seeded: Seeded, pid: str) -> None:
    reply = post_xml(
        client, f"<token>{seeded.token}</token><list_id>1</list_id><email>zz@example.com</email>"
    )
    assert reply["error"] == "404"
    reply = post_xml(
        client,
        f"<token>{seeded.token}</token><list_id>1</list_id><email>a@example.com</email>"
        "<limit>lots</limit>",
    )
    assert reply["error"] == "400" and reply["error_text"].startswith("limit:")
