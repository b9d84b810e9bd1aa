"""Issue 17: bodies a fuzz run turned into HTTP 500s, and the limits on every edge.

Each request goes to the real ASGI app on SQLite and PostgreSQL (the ``client`` fixture), as a
client would send it, and must get a 400 whose text names the field path (never a 500).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from goalline.app import build
from goalline.settings import Settings
from goalline.storage.store import Store

from conftest import Seeded, events
from conftest import send_raw as send

API = "/api/v1.1/"
BIG = 2**63  # one past the largest signed 64-bit integer
INT64_MAX = 2**63 - 1
JSON = "application/json"
XML = "application/xml"


def refused(reply: dict[str, Any], text: str) -> None:
    assert (reply["status"], reply["error"]) == (400, 400), reply
    assert reply["error_text"].startswith(text), reply


def raw(number: str) -> str:
    """A number written into the JSON text as is (``1e999``, 400 digits), which no encoder
    would write."""
    return f"@@raw:{number}@@"


def encode(body: dict[str, Any]) -> bytes:
    return re.sub(rb'"@@raw:([^@]*)@@"', rb"\1", msgspec.json.encode(body))


def register_body(seeded: Seeded, **fields: Any) -> bytes:
    body = {"token": seeded.token, "db_id": 1, "pixel_id": 1, "email": "john@example.com"}
    return encode({**body, **fields})


# --- 1. bytes that are not UTF-8 ----------------------------------------------------------------


def test_invalid_utf8_inside_a_json_string_is_a_400(client: TestClient, seeded: Seeded) -> None:
    body = b'{"token":"%s","db_id":1,"pixel_id":1,"email":"john@example.com","goal":"\xff"}' % (
        seeded.token.encode()
    )
    refused(send(client, "goals/register", body), "body: malformed JSON (not valid UTF-8 at byte ")


def test_invalid_utf8_in_a_json_key_is_a_400(client: TestClient, seeded: Seeded) -> None:
    body = b'{"token":"%s","db_id":1,"pixel_id":1,"\xc3\x28":1}' % seeded.token.encode()
    refused(send(client, "goals/register", body), "body: malformed JSON (not valid UTF-8 at byte ")


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><goal>\xff</goal></xml>",
        b'<?xml version="1.0" encoding="ISO-8859-1"?><xml><goal>caf\xe9</goal></xml>',
        "<xml><goal>cart</goal></xml>".encode("utf-16"),
        '<?xml version="1.0" encoding="UTF-16"?><xml><goal>cart</goal></xml>'.encode("utf-16"),
    ],
    ids=["invalid-byte", "latin-1", "utf-16", "utf-16-declared"],
)
def test_xml_bodies_that_are_not_utf8_are_a_400(
    client: TestClient, seeded: Seeded, body: bytes
) -> None:
    refused(send(client, "goals/register", body, XML), "body: not well-formed XML")


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16", "Shift_JIS", "no-such-encoding"])
def test_xml_declaring_another_encoding_is_read_as_utf8(
    client: TestClient, seeded: Seeded, store: Store, encoding: str
) -> None:
    body = (
        f'<?xml version="1.0" encoding="{encoding}"?><xml><token>{seeded.token}</token>'
        "<db_id>1</db_id><pixel_id>1</pixel_id><email>john@example.com</email>"
        "<goal>café</goal></xml>"
    ).encode()
    assert send(client, "goals/register", body, XML)["error"] == 0
    assert [e["goal"] for e in events(store)] == ["café"]


# --- 2. nesting -----------------------------------------------------------------------------------


def nested(levels: int) -> Any:
    """An array ``levels`` deep (with the top-level object, ``levels + 1`` levels)."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [32, 1_000, 100_000])
def test_json_nested_deeper_than_32_levels_is_a_400_even_under_an_unknown_key(
    client: TestClient, seeded: Seeded, store: Store, levels: int
) -> None:
    body = register_body(seeded, goal="cart")[:-1] + b',"ignored":' + b"[" * levels + b"]" * levels
    refused(send(client, "goals/register", body + b"}"), "body: JSON nested deeper than 32 levels")
    assert events(store) == []


def test_json_of_32_levels_is_accepted(client: TestClient, seeded: Seeded, store: Store) -> None:
    body = register_body(seeded, goal="cart", ignored=nested(31))
    assert send(client, "goals/register", body)["error"] == 0
    assert len(events(store)) == 1


def test_unclosed_json_nesting_is_a_400(client: TestClient, seeded: Seeded) -> None:
    body = b'{"token":"%s","x":' % seeded.token.encode() + b"[" * 100_000
    refused(send(client, "goals/register", body), "body: ")


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("profiles/import_batch", {"db_id": 1, "data": [{"email": "a@b.cd", "x": nested(40)}]}),
        ("profiles/import", {"db_id": 1, "email": "a@b.cd", "data": {"x": nested(40)}}),
        ("subscribers/history_get", {"db_id": 1, "email": "a@b.cd", "x": nested(40)}),
        ("databases/list", {"x": nested(40)}),
        ("dictionary", {"name": "tz", "x": nested(40)}),
    ],
)
def test_every_method_has_the_json_depth_limit(
    client: TestClient, seeded: Seeded, method: str, body: dict[str, Any]
) -> None:
    reply = send(client, method, msgspec.json.encode({"token": seeded.token, **body}))
    refused(reply, "body: JSON nested deeper than 32 levels")


@pytest.fixture
def limited(store: Store, seeded: Seeded) -> Iterator[TestClient]:
    """The app with small limits, as ``--max-json-depth 4 --max-xml-depth 4 --max-goals 2
    --max-batch-items 2`` set them."""
    settings = Settings(
        database=store.location.target,
        max_json_depth=4,
        max_xml_depth=4,
        max_goals=2,
        max_batch_items=2,
    )
    with TestClient(build(settings, store).asgi, raise_server_exceptions=False) as c:
        yield c


def test_depth_settings_apply_to_json_and_xml(limited: TestClient, seeded: Seeded) -> None:
    ok = register_body(seeded, goal="cart", ignored={"a": [[1]]})  # 4 levels
    assert send(limited, "goals/register", ok)["error"] == 0
    deep = register_body(seeded, goal="cart", ignored={"a": [[[1]]]})  # 5 levels
    refused(send(limited, "goals/register", deep), "body: JSON nested deeper than 4 levels")
    xml = "<xml><token>%s</token><db_id>1</db_id><pixel_id>1</pixel_id>%s</xml>"
    fine = xml % (seeded.token, "<email>john@example.com</email><a><b><c>1</c></b></a>")
    assert send(limited, "goals/register", fine.encode(), XML)["error"] == 0
    too_deep = xml % (seeded.token, "<a><b><c><d>1</d></c></b></a>")
    refused(send(limited, "goals/register", too_deep.encode(), XML), "body: XML nested deeper")


def test_goal_and_item_limits_are_settings(limited: TestClient, seeded: Seeded) -> None:
    two = register_body(seeded, goal="a", goals=[{"goal": "b"}])
    assert send(limited, "goals/register", two)["error"] == 0
    three = register_body(seeded, goal="a", goals=[{"goal": "b"}, {"goal": "c"}])
    refused(send(limited, "goals/register", three), "goals: more than 2 goals in one request")
    items = [{"email": f"p{i}@example.com"} for i in range(3)]
    body = msgspec.json.encode({"token": seeded.token, "db_id": 1, "data": items})
    refused(send(limited, "profiles/import_batch", body), "data: more than 2 items")
    body = msgspec.json.encode({"token": seeded.token, "db_id": 1, "data": items[:2]})
    assert send(limited, "profiles/import_batch", body)["error"] == 0


# --- 3. numbers a column cannot hold ---------------------------------------------------------


@pytest.mark.parametrize("field", ["pixel_id", "db_id", "loyalty_id"])
@pytest.mark.parametrize(
    "number",
    [BIG, raw(str(2**64)), raw("1" + "0" * 30), raw("9" * 5000)],
    ids=["2^63", "2^64", "10^30", "5000-digits"],
)
def test_register_integers_past_64_bits_are_a_400(
    client: TestClient, seeded: Seeded, store: Store, field: str, number: int | str
) -> None:
    reply = send(client, "goals/register", register_body(seeded, **{field: number}))
    refused(reply, f"{field}: ")
    assert events(store) == []


@pytest.mark.parametrize("field", ["pixel_id", "db_id", "loyalty_id", "count_items"])
def test_register_integers_past_64_bits_in_xml_are_a_400(
    client: TestClient, seeded: Seeded, field: str
) -> None:
    fields = {"token": seeded.token, "db_id": "1", "pixel_id": "1", "email": "john@example.com"}
    fields[field] = str(BIG)
    xml = "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</xml>"
    refused(
        send(client, "goals/register", xml.encode(), XML),
        f"{field}: must be at most {INT64_MAX}",
    )


@pytest.mark.parametrize(
    ("method", "body", "path"),
    [
        ("goals/register", {"db_id": BIG, "pixel_id": 1, "email": "a@b.cd"}, "db_id"),
        ("profiles/get", {"db_id": BIG, "email": "a@b.cd"}, "db_id"),
        ("profiles/import", {"db_id": BIG, "email": "a@b.cd"}, "db_id"),
        ("profiles/import_batch", {"db_id": BIG, "data": [{"email": "a@b.cd"}]}, "db_id"),
        ("databases/fields_get", {"db_id": BIG}, "db_id"),
        ("subscribers/history_get", {"list_id": BIG, "email": "a@b.cd"}, "list_id"),
        ("subscribers/history_get", {"db_id": 1, "email": "a@b.cd", "from_id": BIG}, "from_id"),
        ("subscribers/history_get", {"db_id": 1, "email": "a@b.cd", "limit": BIG}, "limit"),
        ("databases/list", {"from_id": BIG}, "from_id"),
        ("databases/list", {"limit": -BIG - 1}, "limit"),
    ],
)
def test_ids_past_64_bits_are_a_400_on_every_method(
    client: TestClient, seeded: Seeded, method: str, body: dict[str, Any], path: str
) -> None:
    reply = send(client, method, msgspec.json.encode({"token": seeded.token, **body}))
    refused(reply, f"{path}: must be at ")


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"goal": "cart", "value": raw("1e999")}, "value: must be a finite number"),
        ({"goals": [{"goal": "c", "value": raw("-1e999")}]}, "goals[0].value: must be a finite"),
        ({"lat": raw("1e999"), "lon": 0}, "lat: must be a finite number"),
        ({"matching": "custom", "field_name": "age", "field_value": raw("1e999")}, "field_value: "),
        ({"matching": "custom", "field_name": "age", "field_value": BIG}, "field_value: "),
        ({"count_items": BIG}, "count_items: must be at most"),
        ({"date": BIG}, "date: "),
        ({"pixel_data": {"n": raw("9" * 5000)}}, "pixel_data[...]: must be an integer of at"),
        ({"pixel_data": {"n": [1, raw("1e999")]}}, "pixel_data[...][1]: must be a finite number"),
    ],
)
def test_numbers_out_of_range_are_a_400(
    client: TestClient, seeded: Seeded, fields: dict[str, Any], path: str
) -> None:
    refused(send(client, "goals/register", register_body(seeded, **fields)), path)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"age": BIG}, "data.age: must be between"),
        ({"age": str(BIG)}, "data.age: must be between"),
        ({"age": 1e300}, "data.age: must be between"),
        ({"age": raw("-1" + "0" * 40)}, "data.age: "),
        ({"score": raw("1" + "0" * 400)}, "data.score: "),
        ({"CRM_ID": raw("1" + "0" * 400)}, "data.CRM_ID: "),
    ],
)
def test_custom_field_numbers_out_of_range_are_a_400(
    client: TestClient, seeded: Seeded, store: Store, data: dict[str, Any], path: str
) -> None:
    body = {"token": seeded.token, "db_id": 1, "email": "a@b.cd", "data": data}
    refused(send(client, "profiles/import", encode(body)), path)
    batch = {"token": seeded.token, "db_id": 1, "data": [{"email": "a@b.cd", **data}]}
    reply = send(client, "profiles/import_batch", encode(batch))
    assert reply["error"] == 0, reply
    (item,) = reply["result"]
    assert item["error"] == 400 and item["error_text"].startswith(f"data[0].{path[5:]}"), item


@pytest.mark.parametrize(
    ("number", "rule"),
    [("1e999", "must be a finite number"), ("9" * 5000, "must be an integer of at most 64 bits")],
    ids=["1e999", "5000-digits"],
)
def test_numbers_no_reader_holds_are_a_400_for_the_whole_request(
    client: TestClient, seeded: Seeded, number: str, rule: str
) -> None:
    data = {"CRM_ID": raw(number), "_lat": raw(number)}
    body = {"token": seeded.token, "db_id": 1, "email": "a@b.cd", "data": data}
    refused(send(client, "profiles/import", encode(body)), f"data[...]: {rule}")
    batch = {"token": seeded.token, "db_id": 1, "data": [{"email": "a@b.cd", **data}]}
    refused(send(client, "profiles/import_batch", encode(batch)), f"data[0][...]: {rule}")


def test_the_largest_64_bit_integers_are_stored(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    body = {"token": seeded.token, "db_id": 1, "email": "a@b.cd", "data": {"age": INT64_MAX}}
    assert send(client, "profiles/import", msgspec.json.encode(body))["error"] == 0
    reply = send(client, "goals/register", register_body(seeded, loyalty_id=INT64_MAX))
    assert reply["error"] == 0
    assert [e["loyalty_id"] for e in events(store)] == [INT64_MAX]


# --- 4. dates before the epoch -----------------------------------------------------------------


@pytest.mark.parametrize(
    "date",
    [
        "0001-01-01T00:00:00+05:00",
        "0001-01-01T00:00:00Z",
        "0001-01-01T04:59:59+0500",
        "1969-12-31T23:59:59Z",
        "1970-01-01T02:59:59+03:00",
        -1,
    ],
)
def test_dates_before_1970_are_a_400(
    client: TestClient, seeded: Seeded, store: Store, date: str | int
) -> None:
    reply = send(client, "goals/register", register_body(seeded, goal="cart", date=date))
    refused(reply, "date: before 1970-01-01T00:00:00Z")
    assert events(store) == []


@pytest.mark.parametrize("date", ["1970-01-01T00:00:00Z", "1970-01-01T03:00:00+03:00", 0, "0"])
def test_the_epoch_itself_is_accepted(
    client: TestClient, seeded: Seeded, store: Store, date: str | int
) -> None:
    assert send(client, "goals/register", register_body(seeded, date=date))["error"] == 0
    assert [e["event_at"] for e in events(store)] == ["1970-01-01T00:00:00.000000Z"]


def test_date_after_year_9999_in_utc_is_a_400(store: Store, seeded: Seeded) -> None:
    settings = Settings(database=store.location.target, max_future_seconds=10**12)
    with TestClient(build(settings, store).asgi, raise_server_exceptions=False) as client:
        body = register_body(seeded, date="9999-12-31T23:00:00-05:00")
        refused(send(client, "goals/register", body), "date: after 9999-12-31T23:59:59Z")
