"""databases/list and databases/fields_get on both stores (issue 4): a token sees only its
databases; JSON and XML."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from goalline.codecs import xml as xml_codec
from goalline.model import SYSTEM_FIELDS
from goalline.pipeline import admin
from goalline.storage.store import Store

from conftest import Seeded, now


def post(client: TestClient, method: str, **body: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1.1/{method}", json=body)
    return {"status": r.status_code, **r.json()}


def test_list_shows_the_databases_a_token_may_use(client: TestClient, seeded: Seeded) -> None:
    every = post(client, "databases/list", token=seeded.token)
    assert every["error"] == 0 and every["error_text"] == "Successful operation"
    assert every["data"] == [
        {"id": 1, "name": "Shop", "unknown_profile": "record"},
        {"id": 2, "name": "Other", "unknown_profile": "record"},
    ]
    scoped = post(client, "databases/list", token=seeded.scoped_token)
    assert [d["id"] for d in scoped["data"]] == [1]


def test_list_pages_like_goaltcraft(client: TestClient, seeded: Seeded, store: Store) -> None:
    store.call(lambda tx: admin.create_database(tx, name="Third", policy="create", now=now()))
    # shared/research/clients.md A: {"token", "from_id": 0, "limit": 3}, path with "//"
    r = client.post(
        "/api/v1.1//databases/list",
        content=f'{{"token":"{seeded.token}","from_id":0,"limit":2}}\n',
        headers={"Content-Type": "application/json"},
    )
    first = r.json()
    assert [d["id"] for d in first["data"]] == [1, 2] and first["next_from_id"] == 2
    rest = post(client, "databases/list", token=seeded.token, from_id=2, limit=2)
    assert rest["data"] == [{"id": 3, "name": "Third", "unknown_profile": "create"}]
    assert "next_from_id" not in rest


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 401, "token: required"),
        ({"token": "nope"}, 401, "token: unknown API token"),
        ({"limit": 0}, 400, "limit: must be between 1 and 1000"),
        ({"from_id": -1}, 400, "from_id: must not be negative"),
    ],
)
def test_list_errors(
    client: TestClient, seeded: Seeded, body: dict[str, Any], status: int, text: str
) -> None:
    reply = post(client, "databases/list", **{"token": seeded.token, **body} if body else {})
    assert reply["status"] == status and text in reply["error_text"]


def test_fields_get(client: TestClient, seeded: Seeded) -> None:
    reply = post(client, "databases/fields_get", token=seeded.token, db_id=1)
    fields = reply["data"]
    assert fields[:2] == [
        {"name": "email", "type": "string", "category": "system"},
        {"name": "phones", "type": "array", "category": "system"},
    ]
    system = [f["name"] for f in fields if f["category"] == "system"]
    assert set(system) == {"email", "phones", *SYSTEM_FIELDS}
    assert {"name": "_lat", "type": "float", "category": "system"} in fields
    assert [(f["name"], f["type"]) for f in fields if f["category"] == "custom"] == [
        ("CRM_ID", "string"),
        ("age", "int"),
        ("birthday", "date"),
        ("interests", "tags"),
        ("score", "float"),
        ("vip", "bool"),
    ]
    other = post(client, "databases/fields_get", token=seeded.token, db_id=2)
    assert [f for f in other["data"] if f["category"] == "custom"] == []


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"db_id": None}, 400, "db_id: required"),
        ({"db_id": 0}, 400, "db_id: must be a positive integer"),
        ({"token": "token-db-1", "db_id": 2}, 403, "may not use database 2"),
        ({"token": "token-db-1", "db_id": 99}, 403, "may not use database 99"),
        ({"db_id": 99}, 404, "db_id: database 99 not found"),
    ],
)
def test_fields_get_errors(
    client: TestClient, seeded: Seeded, body: dict[str, Any], status: int, text: str
) -> None:
    reply = post(client, "databases/fields_get", **{"token": seeded.token, **body})
    assert reply["status"] == status and text in reply["error_text"]


def test_xml(client: TestClient, seeded: Seeded) -> None:
    headers = {"Content-Type": "application/xml"}
    r = client.post(
        "/api/v1.1/databases/list",
        content=f"<xml><token>{seeded.scoped_token}</token></xml>",
        headers=headers,
    )
    reply = xml_codec.decode(r.content, frozenset({"data"}))
    assert reply["data"] == [{"id": "1", "name": "Shop", "unknown_profile": "record"}]
    r = client.post(
        "/api/v1.1/databases/fields_get",
        content=f"<xml><token>{seeded.token}</token><db_id>1</db_id></xml>",
        headers=headers,
    )
    fields = xml_codec.decode(r.content, frozenset({"data"}))["data"]
    assert fields[0] == {"name": "email", "type": "string", "category": "system"}
    assert {"name": "interests", "type": "tags", "category": "custom"} in fields
    r = client.post(
        "/api/v1.1/databases/fields_get",
        content=f"<xml><token>{seeded.token}</token><db_id>two</db_id></xml>",
        headers=headers,
    )
    assert r.status_code == 400 and "<error_text>db_id:" in r.text
