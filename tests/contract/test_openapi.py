"""``/openapi.json`` is as strict as the server: what the server refuses, the document refuses
too; what the document accepts (the seed examples, a valid body of every method), the server
accepts; and every reply a client can get is described, in both formats.

Bodies are checked with ``jsonschema`` (Draft 2020-12, the dialect of OpenAPI 3.1, formats
on) against the document the running app serves, and sent to the real app on both stores.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from goalline.errors import ERROR_CODES
from goalline.pipeline.dispatch import METHODS

from .support import EXAMPLES
from conftest import Seeded

REGISTER = "/api/v1.1/goals/register"


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    reply = client.get("/openapi.json")
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    return document


def validator(doc: dict[str, Any], method: str) -> jsonschema.Draft202012Validator:
    """The document's request schema of ``method`` (its $refs resolved inside the document)."""
    content = doc["paths"][f"/api/v1.1/{method}"]["post"]["requestBody"]["content"]
    root = {**content["application/json"]["schema"], "components": doc["components"]}
    return jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def errors(doc: dict[str, Any], method: str, body: Any) -> list[str]:
    return [e.message for e in validator(doc, method).iter_errors(body)]


def test_every_schema_of_the_document_is_valid_json_schema(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_method_documents_every_reply_in_both_formats(doc: dict[str, Any]) -> None:
    statuses = {str(code or 200) for code in ERROR_CODES} | {"405"}
    for method in METHODS:
        operation = doc["paths"][f"/api/v1.1/{method}"]["post"]
        assert set(operation["requestBody"]["content"]) == {"application/json", "application/xml"}
        assert set(operation["responses"]) == statuses, method
        for status, reply in operation["responses"].items():
            assert set(reply["content"]) == {"application/json", "application/xml"}
            assert reply["content"]["application/xml"]["schema"]["xml"] == {"name": "xml"}
            headers = reply.get("headers", {})
            assert ("Retry-After" in headers) == (status in ("429", "503")), (method, status)
        assert operation["security"] == [{"bearer": []}, {}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_register_requires_what_the_server_requires(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["RegisterRequest"]
    assert schema["required"] == ["db_id", "pixel_id"]  # the token may come as Bearer
    props = schema["properties"]
    assert props["matching"]["anyOf"][0]["enum"] == [
        "email",
        "email_profile",
        "phone",
        "profile_id",
        "custom",
    ]
    assert props["format"]["anyOf"][0]["enum"] == ["json", "xml"]
    assert props["vendor"]["anyOf"][0]["maxLength"] == 128
    assert props["user_agent"]["anyOf"][0]["maxLength"] == 2048
    assert props["db_id"]["minimum"] == 1
    assert props["count_items"]["anyOf"][0]["maximum"] == 1_000_000_000
    assert "Chrome" in props["browser"]["anyOf"][0]["enum"]
    assert "Europe/Moscow" in props["time_zone"]["anyOf"][0]["enum"]
    assert {"RU", "RUS", "Russian Federation"} <= set(props["country"]["anyOf"][0]["enum"])


@pytest.mark.parametrize("name", ["1-goal.json", "2-goals.json", "full.json"])
def test_seed_examples_are_valid_against_the_document(doc: dict[str, Any], name: str) -> None:
    body = json.loads((EXAMPLES / name).read_bytes())
    assert errors(doc, "goals/register", body) == []


def valid_bodies(seeded: Seeded) -> dict[str, dict[str, Any]]:
    """A body of every method that the seeded store accepts (database 1, pixel 1)."""
    t = seeded.token
    return {
        "goals/register": {
            "token": t,
            "db_id": 1,
            "pixel_id": 1,
            "email": "a@example.com",
            "goals": [{"goal": "cart", "value": 1.5}, {"goal": "Корзина €"}],
            "date": "2024-05-01T10:00:00+03:00",
            "lat": 55.7,
            "lon": 37.6,
            "browser": "Chrome",
            "country": "RU",
            "client_ip_v4": "8.8.8.8",
            "net_mac_addr": "28:87:ba:c1:0d:5e",
            "pixel_data": {"a": [1, 2], "b": "x"},
        },
        "profiles/import": {
            "token": t,
            "db_id": 1,
            "email": "b@example.com",
            "data": {"_fname": "B", "age": 30, "interests": ["x"]},
        },
        "profiles/get": {"token": t, "db_id": 1, "matching": "email", "email": "b@example.com"},
        "dictionary": {"token": t, "name": "oses"},
        "profiles/import_batch": {
            "token": t,
            "db_id": 1,
            "data": [{"email": "c@example.com", "data": {"_fname": "C"}}, {"email": "d@e.com"}],
        },
        "subscribers/history_get": {"token": t, "list_id": 1, "email": "b@example.com"},
        "databases/list": {"token": t, "limit": 5},
        "databases/fields_get": {"token": t, "db_id": 1},
    }


def test_valid_bodies_of_every_method_are_valid_and_accepted(
    client: TestClient, seeded: Seeded, doc: dict[str, Any]
) -> None:
    bodies = valid_bodies(seeded)
    assert set(bodies) == set(METHODS)
    for method, body in bodies.items():  # in order: get and history need the import first
        assert errors(doc, method, body) == [], method
        reply = client.post(f"/api/v1.1/{method}", json=body)
        assert reply.status_code == 200 and reply.json()["error"] == 0, (method, reply.text)
        success = doc["paths"][f"/api/v1.1/{method}"]["post"]["responses"]["200"]
        reply_schema = {
            **success["content"]["application/json"]["schema"],
            "components": doc["components"],
        }
        jsonschema.validate(reply.json(), reply_schema)


#: Bodies the server refuses with a 400 naming the field; the document must refuse them too.
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("goals/register", {"pixel_id": 1, "email": "a@example.com"}, "db_id: required"),
    ("goals/register", {"db_id": 1, "email": "a@example.com"}, "pixel_id: required"),
    ("goals/register", {"db_id": 0, "pixel_id": 1, "email": "a@e.com"}, "db_id: must be"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "matching": "nope", "email": "a@e.com"},
     "matching: must be one of"),
    ("goals/register", {"db_id": 1, "pixel_id": 1}, "email: required"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "matching": "phone"}, "phone: required"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "matching": "custom", "field_name": "age"},
     "field_value: required"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "goal": "x" * 129},
     "goal: longer than 128"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "goal": "<script>"},
     "goal: character"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "goals": [{"value": 1}]},
     "goals[0].goal: required"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "value": 1},
     "value: given without goal"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "lat": 10},
     "lon: required"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "lat": 91, "lon": 0},
     "lat: must be between"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "sku_eid": "s"},
     "product_eid: required"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "count_items": -1},
     "count_items: must be between"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "loyalty_id": 0},
     "loyalty_id: must be"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "browser": "Netscape"},
     "browser: 'Netscape' is not in"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "country": "XX"},
     "country: not an ISO"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "client_ip_v4": "::1"},
     "client_ip_v4: not an IPv4"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "net_mac_addr": "zz"},
     "net_mac_addr: not a MAC"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "date": "2024-01-01"},
     "date: no UTC offset"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "format": "yaml"},
     "format: must be json or xml"),
    ("goals/register",
     {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "categories": ["c"] * 101},
     "categories: more than 100"),
    ("goals/register", {"db_id": "1", "pixel_id": 1, "email": "a@e.com"}, "db_id: expected int"),
    ("goals/register", {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "city": "a\u0000b"},
     "city: contains a NUL"),
    ("goals/register",
     {"db_id": 1, "pixel_id": 1, "email": "a@e.com", "pixel_data": {"a\u0000": 1}},
     "pixel_data.a"),
    ("profiles/import", {"email": "a@e.com"}, "db_id: required"),
    ("profiles/import", {"db_id": 1, "data": {"_fname": "x"}}, "email: required"),
    ("profiles/get", {"db_id": 1}, "email: required"),
    ("dictionary", {}, "name: required"),
    ("dictionary", {"name": "colours"}, "name: must be one of"),
    ("profiles/import_batch", {"db_id": 1}, "data: required"),
    ("profiles/import_batch", {"db_id": 1, "data": [], "matching": "x"}, "matching: must be"),
    ("subscribers/history_get", {"email": "a@e.com"}, "list_id: required"),
    ("subscribers/history_get", {"list_id": 1, "email": "a@e.com", "limit": 1001},
     "limit: must be between"),
    ("databases/list", {"limit": 0}, "limit: must be between"),
    ("databases/list", {"from_id": -1}, "from_id: must not be negative"),
    ("databases/fields_get", {}, "db_id: required"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "body", "refusal"), REFUSED)
def test_what_the_server_refuses_the_document_refuses(
    client: TestClient,
    seeded: Seeded,
    doc: dict[str, Any],
    method: str,
    body: dict[str, Any],
    refusal: str,
) -> None:
    body = {"token": seeded.token, **body}
    reply = client.post(f"/api/v1.1/{method}", json=body).json()
    assert reply["error"] == 400 and reply["error_text"].startswith(refusal), reply
    assert errors(doc, method, body), f"the document accepts what the server refuses: {body}"
    refused = doc["paths"][f"/api/v1.1/{method}"]["post"]["responses"]["400"]
    jsonschema.validate(
        reply, {**refused["content"]["application/json"]["schema"], "components": doc["components"]}
    )
