"""SPEC §1 wire rules, against a real ``goalline serve``: what real Altcraft clients send
(shared/research/clients.md) must be accepted and stored like the plain form.

Every request carries a goal name of its own, so no two tests send the same body and each test
reads back only the events its replies name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .support import cli, create_token, near_now, post, post_json, reply_of, stored_events
from conftest import Server, start_server

pytestmark = pytest.mark.server

TOKEN = "wire-token-0123456789abcdef"


@dataclass(frozen=True)
class Wire:
    database: str
    server: Server
    token_id: int

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def wire(module_database: str) -> Iterator[Wire]:
    """Database 1 with a string field CRM_ID, pixel 1 and a token: all with the CLI."""
    cli("db", "create", "Shop", "--id", "1", database=module_database)
    cli("db", "field", "add", "1", "CRM_ID", "--type", "string", database=module_database)
    cli("pixel", "create", "Site", "--db", "1", "--id", "1", database=module_database)
    token_id = create_token("wire", TOKEN, database=module_database)
    server = start_server(module_database)
    try:
        yield Wire(module_database, server, token_id)
    finally:
        server.stop()


def body(goal: str, **fields: Any) -> dict[str, Any]:
    """A goals/register body for db 1 / pixel 1 matched by email; ``None`` values are sent
    as JSON null, ``...`` leaves a key out."""
    base = {"token": TOKEN, "db_id": 1, "pixel_id": 1, "email": "john@example.com", "goal": goal}
    return {k: v for k, v in {**base, **fields}.items() if v is not ...}


def accepted(wire: Wire, response: Any, fmt: str = "json") -> list[dict[str, Any]]:
    """Assert a success reply and return the stored events it names."""
    assert response.status_code == 200, response.text
    reply = reply_of(response, fmt)
    assert (reply["error"], reply["error_text"]) == (0, "Successful operation"), reply
    rows = stored_events(wire.database, reply["event_ids"])
    assert [r["id"] for r in rows] == sorted(reply["event_ids"]) and rows
    return rows


def only_goal(rows: list[dict[str, Any]]) -> str:
    assert len(rows) == 1, rows
    goal: str = rows[0]["goal"]
    return goal


# -- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "goal"),
    [
        ("/api/v1.1/goals/register/", "trailing slash"),
        ("/api/v1.1//goals/register", "doubled slash"),
        ("/api/v1.1//goals/register/", "doubled and trailing"),
    ],
)
def test_lenient_paths_reach_goals_register(wire: Wire, path: str, goal: str) -> None:
    response = post(wire.url, json.dumps(body(goal)).encode(), path=path)
    assert only_goal(accepted(wire, response)) == goal


@pytest.mark.parametrize(
    "path", ["/api/v1.1/goals/unknown", "/api/v1.1/nothing", "/api/v1.1/goals/register/extra"]
)
def test_unknown_api_path_is_a_json_404_envelope(wire: Wire, path: str) -> None:
    # A browser-like Accept must not turn the reply into an HTML page either.
    response = post(
        wire.url,
        json.dumps(body("unknown path")).encode(),
        path=path,
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    reply = response.json()
    assert reply["error"] == 404 and reply["error_text"], reply
    assert "<html" not in response.text.lower()
    assert not any(r["goal"] == "unknown path" for r in stored_events(wire.database))


# -- bodies and content types --------------------------------------------------------------------


def test_go_style_body_with_trailing_newline(wire: Wire) -> None:
    # Go's json.Encoder: compact, no HTML escaping, a newline after the object.
    raw = json.dumps(body("go encoder", value=1.5), separators=(",", ":")).encode() + b"\n"
    rows = accepted(wire, post(wire.url, raw))
    assert (only_goal(rows), rows[0]["value"]) == ("go encoder", 1.5)


def test_json_content_type_with_charset(wire: Wire) -> None:
    raw = json.dumps(body("charset", value=2.0)).encode()
    response = post(wire.url, raw, "application/json; charset=UTF-8")
    assert only_goal(accepted(wire, response)) == "charset"


def test_text_plain_body_holding_json(wire: Wire) -> None:
    # A no-cors browser fetch downgrades the type to text/plain;charset=UTF-8.
    raw = json.dumps(body("text plain", value=3.0)).encode()
    response = post(wire.url, raw, "text/plain;charset=UTF-8")
    rows = accepted(wire, response)
    assert (only_goal(rows), rows[0]["value"]) == ("text plain", 3.0)


# -- the token -----------------------------------------------------------------------------------


def test_token_in_authorization_bearer(wire: Wire) -> None:
    without = post_json(wire.url, body("no token anywhere", token=...))
    assert (without.status_code, without.json()["error"]) == (401, 401), without.text
    response = post_json(
        wire.url, body("bearer", token=...), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    rows = accepted(wire, response)
    assert (only_goal(rows), rows[0]["token_id"]) == ("bearer", wire.token_id)


def test_token_in_legacy_query_parameter(wire: Wire) -> None:
    response = post_json(wire.url, body("query token", token=...), params={"token": TOKEN})
    rows = accepted(wire, response)
    assert (only_goal(rows), rows[0]["token_id"]) == ("query token", wire.token_id)


# -- field rules ---------------------------------------------------------------------------------


def test_unknown_keys_are_ignored(wire: Wire) -> None:
    extra = {
        "unknown_scalar": 1,
        "unknown_object": {"a": [1, {"b": None}]},
        "unknown_list": [1, "two", None],
        "Goal": "not the goal field",
    }
    rows = accepted(wire, post_json(wire.url, body("unknown keys", value=4.0, **extra)))
    assert (only_goal(rows), rows[0]["value"]) == ("unknown keys", 4.0)


def test_null_means_absent(wire: Wire) -> None:
    nulls = dict.fromkeys(
        (
            "value",
            "date",
            "matching",  # null → the default, email
            "profile_id",
            "goals",
            "pixel_data",
            "categories",
            "client_ip",
            "lat",
            "lon",
            "country",
            "time_zone",
            "net_mac_addr",
            "accept_language",
            "is_test",
            "skip_triggers",
            "enrich_profile",
            "loyalty_id",
            "count_items",
            "format",
        )
    )
    response = post_json(wire.url, body("nulls", **nulls))
    rows = accepted(wire, response)
    row = rows[0]
    assert only_goal(rows) == "nulls"
    assert (row["matching"], row["match_kind"], row["match_key"]) == (
        "email",
        "email",
        "john@example.com",
    )
    for column in ("value", "date_raw", "pixel_data", "categories", "client_ip", "lat", "lon"):
        assert row[column] is None, column
    for column in ("country", "time_zone", "net_mac_addr", "language", "loyalty_id"):
        assert row[column] is None, column
    assert (row["is_test"], row["skip_triggers"], row["enrich_profile"]) == (False, False, True)
    assert near_now(row["event_at"])


def test_field_value_may_be_a_number(wire: Wire) -> None:
    imported = post_json(
        wire.url,
        {
            "token": TOKEN,
            "db_id": 1,
            "matching": "custom",
            "field_name": "CRM_ID",
            "field_value": "123420",
            "data": {"CRM_ID": "123420"},
        },
        path="/api/v1.1/profiles/import",
    )
    assert imported.json()["error"] == 0, imported.text
    profile_id = imported.json()["profile_id"]
    for goal, value in (("custom number", 123420), ("custom string", "123420")):
        custom = {"matching": "custom", "field_name": "CRM_ID", "field_value": value}
        response = post_json(wire.url, body(goal, email=..., **custom))
        assert response.json().get("profile_id") == profile_id, response.text
        rows = accepted(wire, response)
        row = rows[0]
        assert only_goal(rows) == goal
        assert (row["match_kind"], row["match_field"], row["match_key"], row["profile_id"]) == (
            "custom",
            "CRM_ID",
            "123420",
            profile_id,
        )


# -- legacy status codes -------------------------------------------------------------------------


def test_error_status_200_flag_keeps_the_code_in_the_body(wire: Wire) -> None:
    def unknown_token(goal: str) -> bytes:
        return json.dumps(body(goal, token="no-such-token")).encode()

    mirrored = post(wire.url, unknown_token("legacy status mirrored"))
    assert (mirrored.status_code, mirrored.json()["error"]) == (401, 401), mirrored.text
    legacy = start_server(wire.database, "--error-status", "200")
    try:
        response = post(legacy.url, unknown_token("legacy status"))
        ok = post_json(legacy.url, body("legacy status ok"))
    finally:
        legacy.stop()
    assert response.status_code == 200, response.text
    reply = reply_of(response, "json")
    assert reply["error"] == 401 and reply["error_text"], reply
    assert only_goal(accepted(wire, ok)) == "legacy status ok"
    stored_goals = {r["goal"] for r in stored_events(wire.database)}
    assert not stored_goals & {"legacy status", "legacy status mirrored"}
