"""Issue 17, item 10: external-id idempotency compares the normalised event, so the same event
sent as JSON and then as XML (the seed's third example) is a repeat, not a 409; a JSON/XML pair
that really differs is still a 409 (docs/api.md "Idempotent events")."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from goalline.storage.store import Store

from conftest import Seeded, events, example
from conftest import send_raw as send

API = "/api/v1.1/"
JSON = "application/json"
XML = "application/xml"


def register_body(seeded: Seeded, **fields: Any) -> bytes:
    body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "john@example.com"}
    return msgspec.json.encode({**body, **fields})


def seed_example(name: str, seeded: Seeded, **changes: str) -> bytes:
    """The seed's example ``name`` addressed to the seeded database 1, pixel 1 and token."""
    text = example(name).decode()
    xml = name.endswith(".xml")
    replace = {"db_id": "1", "pixel_id": "1", **changes}
    text = text.replace("abcdefghijklmnqrstuvwxyz", seeded.token)
    for key, value in replace.items():
        if xml:
            start = text.index(f"<{key}>") + len(f"<{key}>")
            end = text.index(f"</{key}>", start)
        else:
            start = text.index(f'"{key}": ') + len(f'"{key}": ')
            end = min(text.index(c, start) for c in ",\n")
        text = text[:start] + value + text[end:]
    return text.encode()


def test_the_same_event_in_json_then_xml_is_a_repeat(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    first = send(client, "goals/register", seed_example("full.json", seeded))
    assert first["error"] == 0, first
    again = send(client, "goals/register", seed_example("full.xml", seeded), XML)
    assert again["error"] == 0, again
    assert again["event_ids"] == again["duplicate_event_ids"] == first["event_ids"]
    assert len(events(store)) == 2


def test_the_same_event_in_xml_then_json_is_a_repeat(client: TestClient, seeded: Seeded) -> None:
    first = send(client, "goals/register", seed_example("full.xml", seeded), XML)
    assert first["error"] == 0, first
    again = send(client, "goals/register", seed_example("full.json", seeded))
    assert again["duplicate_event_ids"] == first["event_ids"], again


@pytest.mark.parametrize(
    "change",
    [
        {"int_val": "56894"},
        {"hello": "hello"},
        {"count_items": "2"},
        {"lat": "55.244076"},
        {"loyalty_id": "6"},
    ],
)
def test_a_json_xml_pair_that_really_differs_is_a_409(
    client: TestClient, seeded: Seeded, change: dict[str, str]
) -> None:
    assert send(client, "goals/register", seed_example("full.json", seeded))["error"] == 0
    other = seed_example("full.xml", seeded, **change)
    reply = send(client, "goals/register", other, XML)
    assert (reply["status"], reply["error"]) == (409, 409), reply
    assert reply["error_text"].startswith("external_event_id: "), reply


def test_pixel_data_compares_as_xml_spells_it(client: TestClient, seeded: Seeded) -> None:
    """Numbers as text, one-item arrays as their item, keys in any order, "" as absent."""
    first = {"n": 1, "f": 10.5, "b": True, "one": ["x"], "empty": "", "s": "a"}
    same = {"s": "a", "one": "x", "b": "true", "f": "10.5", "n": "1"}
    other = {"s": "a", "one": "x", "b": "true", "f": "10.5", "n": "2"}
    common = {"goal": "cart", "external_type": "t", "external_event_id": "e-1"}
    r1 = send(client, "goals/register", register_body(seeded, pixel_data=first, **common))
    r2 = send(client, "goals/register", register_body(seeded, pixel_data=same, **common))
    assert r2["duplicate_event_ids"] == r1["event_ids"], r2
    r3 = send(client, "goals/register", register_body(seeded, pixel_data=other, **common))
    assert r3["error"] == 409, r3
