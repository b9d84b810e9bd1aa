"""Tests for goalline.pipeline.validate: the field rules of ``goals/register``.

Every request goes through the real JSON decoder first (``goalline.codecs.json.decode``), so a
type mismatch caught by msgspec and a rule broken in validate.py are both checked the way a client
meets them: an InvalidRequest (code 400) whose text starts with the field path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from goalline.codecs.json import decode
from goalline.errors import InvalidRequest
from goalline.model import EVENT_ATTRS, Goal, MatchKey, Registration
from goalline.pipeline.requests import RegisterRequest
from goalline.pipeline.validate import registration

from conftest import example

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
NOW_ISO = "2026-11-27T12:00:00.000000Z"
MAX_FUTURE = 3600
BASE: dict[str, Any] = {"token": "t", "db_id": 1, "pixel_id": 1, "email": "john@example.com"}
#: Marks a key to drop from the base body (absent, as opposed to an explicit ``null``).
ABSENT: Any = ...

#: The punctuation SPEC §2 allows in goal names.
GOAL_PUNCTUATION = list("!#$%&*+-.,:;'=?@^_()[]/\\|")


def body_of(change: dict[str, Any]) -> dict[str, Any]:
    merged = {**BASE, **change}
    return {key: value for key, value in merged.items() if value is not ABSENT}


def validate(change: dict[str, Any], *, phone_region: str = "") -> Registration:
    """The base body with ``change`` applied, through the JSON decoder and the field rules."""
    req = decode(msgspec.json.encode(body_of(change)), RegisterRequest)
    return registration(req, now=NOW, max_future_seconds=MAX_FUTURE, phone_region=phone_region)


def refused(change: dict[str, Any], *, phone_region: str = "") -> str:
    """The error text of a request that must be refused with 400."""
    with pytest.raises(InvalidRequest) as info:
        validate(change, phone_region=phone_region)
    assert info.value.code == 400
    return info.value.text


def assert_refused(change: dict[str, Any], path: str, fragment: str = "") -> None:
    text = refused(change)
    assert text.startswith(f"{path}: "), text
    assert fragment in text, text


# --- required ids and JSON types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"db_id": ABSENT}, "db_id: required"),
        ({"db_id": None}, "db_id: required"),
        ({"pixel_id": ABSENT}, "pixel_id: required"),
        ({"pixel_id": None}, "pixel_id: required"),
        ({"db_id": None, "pixel_id": None}, "db_id: required"),
    ],
)
def test_required_ids(change: dict[str, Any], expected: str) -> None:
    assert refused(change) == expected


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"db_id": 0}, "db_id"),
        ({"db_id": -1}, "db_id"),
        ({"pixel_id": 0}, "pixel_id"),
        ({"pixel_id": -7}, "pixel_id"),
    ],
)
def test_non_positive_ids_refused(change: dict[str, Any], path: str) -> None:
    assert_refused(change, path, "positive")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"db_id": "1"}, "db_id"),
        ({"db_id": 1.5}, "db_id"),
        ({"pixel_id": "1"}, "pixel_id"),
        ({"pixel_id": True}, "pixel_id"),
        ({"goal": "card", "value": "x"}, "value"),
        ({"goal": 5}, "goal"),
        ({"goals": "card"}, "goals"),
        ({"goals": {"goal": "card"}}, "goals"),
        ({"goals": [1]}, "goals[0]"),
        ({"goals": [{"goal": "a"}, "b"]}, "goals[1]"),
        ({"goals": [{"goal": "card", "value": "x"}]}, "goals[0].value"),
        ({"goals": [{"goal": 5}]}, "goals[0].goal"),
        ({"is_test": "yes"}, "is_test"),
        ({"skip_triggers": 0}, "skip_triggers"),
        ({"enrich_profile": "true"}, "enrich_profile"),
        ({"lat": "55", "lon": 19.0}, "lat"),
        ({"lat": 55.0, "lon": "19"}, "lon"),
        ({"categories": "category_1"}, "categories"),
        ({"categories": [1]}, "categories[0]"),
        ({"pixel_data": [1, 2]}, "pixel_data"),
        ({"pixel_data": "x"}, "pixel_data"),
        ({"count_items": 1.5}, "count_items"),
        ({"loyalty_id": "5"}, "loyalty_id"),
        ({"date": 1.5}, "date"),
        ({"date": True}, "date"),
        ({"email": 5}, "email"),
        ({"matching": 1}, "matching"),
        ({"field_value": [1]}, "field_value"),
        ({"vendor": 5}, "vendor"),
        ({"client_ip": 10}, "client_ip"),
        ({"token": 1}, "token"),
    ],
)
def test_wrong_json_type_names_the_field(change: dict[str, Any], path: str) -> None:
    assert_refused(change, path, "expected")


# --- string limits -----------------------------------------------------------------------------

SHORT_STRING_FIELDS = [
    "vendor",
    "external_type",
    "external_event_id",
    "altcraft_client_id",
    "browser",
    "os",
    "device",
    "region",
    "city",
    "address",
    "zip",
    "utm_content",
    "utm_term",
    "net_ssid",
    "send_message_id",
    "promo_id",
    "endpoint_eid",
    "order_eid",
    "product_eid",
    "region_eid",
]


@pytest.mark.parametrize("field", [*SHORT_STRING_FIELDS, "goal", "profile_id", "field_name"])
def test_string_longer_than_128_refused(field: str) -> None:
    assert refused({field: "a" * 129}) == f"{field}: longer than 128 characters"


DICTIONARY_FIELDS = ("browser", "os", "device")


@pytest.mark.parametrize("field", [f for f in SHORT_STRING_FIELDS if f not in DICTIONARY_FIELDS])
def test_string_of_128_accepted(field: str) -> None:
    reg = validate({field: "я" * 128})
    assert reg.attrs[field] == "я" * 128


def test_sku_eid_longer_than_128_refused() -> None:
    text = refused({"product_eid": "p", "sku_eid": "s" * 129})
    assert text == "sku_eid: longer than 128 characters"


def test_email_longer_than_128_refused() -> None:
    text = refused({"email": "a" * 120 + "@example.com"})
    assert text == "email: longer than 128 characters"


@pytest.mark.parametrize("field", ["user_agent", "referer", "accept_language"])
def test_header_strings_accept_2048(field: str) -> None:
    reg = validate({field: "a" * 2048})
    assert reg.attrs[field] == "a" * 2048


@pytest.mark.parametrize("field", ["user_agent", "referer", "accept_language"])
def test_header_strings_refuse_2049(field: str) -> None:
    assert refused({field: "a" * 2049}) == f"{field}: longer than 2048 characters"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"vendor": "alt\x00craft"}, "vendor"),
        ({"user_agent": "Mozilla\x00"}, "user_agent"),
        ({"goal": "card\x00"}, "goal"),
        ({"goals": [{"goal": "a"}, {"goal": "b\x00"}]}, "goals[1].goal"),
        ({"categories": ["c\x00"]}, "categories[0]"),
        ({"pixel_data": {"k": "v\x00"}}, "pixel_data.k"),
    ],
)
def test_nul_character_refused(change: dict[str, Any], path: str) -> None:
    assert_refused(change, path, "NUL")


# --- goals -------------------------------------------------------------------------------------


def test_goal_with_value() -> None:
    assert validate({"goal": "card", "value": -25.5}).goals == (Goal("card", -25.5),)


def test_goal_without_value() -> None:
    assert validate({"goal": "card"}).goals == (Goal("card", None),)


def test_goals_list_in_order() -> None:
    reg = validate({"goals": [{"goal": "cart", "value": 10.99}, {"goal": "two", "value": -12.34}]})
    assert reg.goals == (Goal("cart", 10.99), Goal("two", -12.34))


def test_goal_and_goals_together_all_registered_goal_first() -> None:
    reg = validate({"goals": [{"goal": "b", "value": 2}, {"goal": "c"}], "goal": "a", "value": 1})
    assert reg.goals == (Goal("a", 1.0), Goal("b", 2.0), Goal("c", None))


@pytest.mark.parametrize(
    "change", [{}, {"goal": None}, {"goal": None, "value": None}, {"goals": None}, {"goals": []}]
)
def test_no_goal_is_one_pixel_activation(change: dict[str, Any]) -> None:
    assert validate(change).goals == (Goal(None, None),)


def test_value_without_goal_refused() -> None:
    assert_refused({"value": 10.0}, "value")


def test_value_without_goal_refused_even_with_goals_list() -> None:
    assert_refused({"value": 10.0, "goals": [{"goal": "a"}]}, "value")


@pytest.mark.parametrize(
    ("goals", "expected"),
    [
        ([{"goal": "a"}, {"value": 1.0}], "goals[1].goal: required"),
        ([{"goal": "a"}, {"goal": None, "value": 1.0}], "goals[1].goal: required"),
        ([{}], "goals[0].goal: required"),
    ],
)
def test_goals_item_without_goal_refused(goals: list[dict[str, Any]], expected: str) -> None:
    assert refused({"goals": goals}) == expected


@pytest.mark.parametrize(
    "name",
    [
        "card",
        "CardAdd",
        "корзина",
        "Корзина Ёлки ёж",
        "step 42",
        "2024",
        "add\tto cart",
        "price €",
        "цена ₽",
        "$100",
        "£ ¥ ₹",
        "a" * 128,
        "к" * 128,
        "".join(GOAL_PUNCTUATION),
    ],
)
def test_goal_name_accepted(name: str) -> None:
    assert validate({"goal": name}).goals == (Goal(name, None),)


@pytest.mark.parametrize("char", GOAL_PUNCTUATION)
def test_goal_name_punctuation_accepted(char: str) -> None:
    name = f"a{char}b"
    assert validate({"goal": name}).goals == (Goal(name, None),)
    assert validate({"goals": [{"goal": name}]}).goals == (Goal(name, None),)


@pytest.mark.parametrize("char", ["<", ">", '"', "{", "}", "~", "`", "😀", "中", "カ", "\n"])
def test_goal_name_character_refused(char: str) -> None:
    text = refused({"goal": f"a{char}b"})
    assert text.startswith("goal: character "), text
    assert repr(char) in text
    assert "is not allowed" in text


def test_goal_name_character_refused_in_goals_list() -> None:
    text = refused({"goals": [{"goal": "ok"}, {"goal": "<script>"}]})
    assert text.startswith("goals[1].goal: character '<' is not allowed"), text


@pytest.mark.parametrize("name", ["", " ", "   ", "\t", " \t "])
def test_blank_goal_name_refused(name: str) -> None:
    assert_refused({"goal": name}, "goal")


def test_goal_name_of_129_characters_refused() -> None:
    assert refused({"goal": "a" * 129}) == "goal: longer than 128 characters"
    text = refused({"goals": [{"goal": "a"}, {"goal": "b" * 129}]})
    assert text == "goals[1].goal: longer than 128 characters"


def test_1000_goals_accepted() -> None:
    reg = validate({"goals": [{"goal": f"g{i}", "value": i} for i in range(1000)]})
    assert len(reg.goals) == 1000
    assert reg.goals[999] == Goal("g999", 999.0)


def test_more_than_1000_goals_refused() -> None:
    assert_refused({"goals": [{"goal": "g"}] * 1001}, "goals", "1000")


def test_goal_plus_1000_goals_refused() -> None:
    assert_refused({"goal": "first", "goals": [{"goal": "g"}] * 1000}, "goals", "1000")


@pytest.mark.parametrize("value", [-25.5, 0, 0.0, 10.99, -1e9, 1e12])
def test_value_any_finite_number(value: float) -> None:
    assert validate({"goal": "card", "value": value}).goals == (Goal("card", float(value)),)


# --- date --------------------------------------------------------------------------------------


def test_date_absent_is_now() -> None:
    reg = validate({})
    assert (reg.event_at, reg.date_raw) == (NOW_ISO, None)


def test_date_null_is_now() -> None:
    reg = validate({"date": None})
    assert (reg.event_at, reg.date_raw) == (NOW_ISO, None)


@pytest.mark.parametrize(
    ("raw", "event_at"),
    [
        ("2006-01-25T15:04:05+07:00", "2006-01-25T08:04:05.000000Z"),
        ("2006-01-25T15:04:05Z", "2006-01-25T15:04:05.000000Z"),
        ("2006-01-25T15:04:05.123456Z", "2006-01-25T15:04:05.123456Z"),
        ("2006-01-25T15:04:05-03:30", "2006-01-25T18:34:05.000000Z"),
        ("2006-01-25T15:04:05+0700", "2006-01-25T08:04:05.000000Z"),
        ("2006-01-25T15:04:05.000+0700", "2006-01-25T08:04:05.000000Z"),
        ("2006-01-25T15:04:05+0000", "2006-01-25T15:04:05.000000Z"),
        ("1138176245", "2006-01-25T08:04:05.000000Z"),
    ],
)
def test_date_accepted_shapes(raw: str, event_at: str) -> None:
    reg = validate({"date": raw})
    assert (reg.event_at, reg.date_raw) == (event_at, raw)


def test_date_epoch_seconds_int() -> None:
    reg = validate({"date": 1138176245})
    assert reg.event_at == "2006-01-25T08:04:05.000000Z"
    assert reg.date_raw == "1138176245"


@pytest.mark.parametrize("raw", ["2006-01-25T15:04:05", "2006-01-25 15:04:05", "2006-01-25"])
def test_date_without_offset_refused(raw: str) -> None:
    text = refused({"date": raw})
    assert text.startswith("date: "), text
    assert "no UTC offset" in text


@pytest.mark.parametrize("raw", ["garbage", "25.01.2006", "yesterday", "2006-13-45T00:00:00Z", ""])
def test_date_garbage_refused_listing_shapes(raw: str) -> None:
    text = refused({"date": raw})
    assert text.startswith("date: "), text
    assert "RFC 3339" in text
    assert "+0700" in text
    assert "epoch seconds" in text


@pytest.mark.parametrize(
    "raw",
    [
        "2026-11-27T13:00:01Z",
        "2026-11-27T16:00:01+03:00",
        "2027-01-01T00:00:00Z",
        int(NOW.timestamp()) + 3601,
        str(int(NOW.timestamp()) + 3601),
    ],
)
def test_date_too_far_in_future_refused(raw: str | int) -> None:
    assert_refused({"date": raw}, "date", "future")


@pytest.mark.parametrize(
    ("raw", "event_at"),
    [
        ("2026-11-27T12:50:00Z", "2026-11-27T12:50:00.000000Z"),
        ("2026-11-27T13:00:00Z", "2026-11-27T13:00:00.000000Z"),
        (int(NOW.timestamp()) + 3000, "2026-11-27T12:50:00.000000Z"),
    ],
)
def test_date_slightly_in_future_accepted(raw: str | int, event_at: str) -> None:
    assert validate({"date": raw}).event_at == event_at


# --- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "matching", "key"),
    [
        ({}, "email", MatchKey("email", "email", "john@example.com")),
        ({"matching": None}, "email", MatchKey("email", "email", "john@example.com")),
        ({"matching": "email"}, "email", MatchKey("email", "email", "john@example.com")),
        (
            {"matching": "email_profile"},
            "email_profile",
            MatchKey("email", "email", "john@example.com"),
        ),
        (
            {"matching": "phone", "phone": "+79000000000", "email": ABSENT},
            "phone",
            MatchKey("phone", "phones", "+79000000000"),
        ),
        (
            {"matching": "profile_id", "profile_id": "abcdefghijklmnqrstuvwxyz"},
            "profile_id",
            MatchKey("profile_id", None, "abcdefghijklmnqrstuvwxyz"),
        ),
        (
            {"matching": "custom", "field_name": "CRM_ID", "field_value": "123420"},
            "custom",
            MatchKey("custom", "CRM_ID", "123420"),
        ),
        (
            {"matching": "custom", "field_name": "interests", "field_value": "tag-1, tag-2"},
            "custom",
            MatchKey("custom", "interests", "tag-1, tag-2"),
        ),
    ],
)
def test_matching_modes(change: dict[str, Any], matching: str, key: MatchKey) -> None:
    reg = validate(change)
    assert (reg.matching, reg.match) == (matching, key)


@pytest.mark.parametrize("mode", ["mail", "EMAIL", "crm", "profile"])
def test_unknown_matching_refused_listing_modes(mode: str) -> None:
    text = refused({"matching": mode})
    assert text.startswith("matching: "), text
    for known in ("email", "email_profile", "phone", "profile_id", "custom"):
        assert known in text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"email": ABSENT}, "email: required when matching is email"),
        ({"email": None}, "email: required when matching is email"),
        ({"matching": "email_profile", "email": ABSENT}, "email: required when matching is"),
        ({"matching": "phone"}, "phone: required when matching is phone"),
        ({"matching": "profile_id"}, "profile_id: required when matching is profile_id"),
        (
            {"matching": "custom", "field_value": "1"},
            "field_name: required when matching is custom",
        ),
        (
            {"matching": "custom", "field_name": "CRM_ID"},
            "field_value: required when matching is custom",
        ),
        (
            {"matching": "custom", "field_name": "CRM_ID", "field_value": None},
            "field_value: required when matching is custom",
        ),
    ],
)
def test_missing_identifier_refused(change: dict[str, Any], expected: str) -> None:
    assert refused(change).startswith(expected)


@pytest.mark.parametrize(
    "email", ["john@example.com", "John@Example.COM", "  JOHN@example.com ", "\tjohn@EXAMPLE.com"]
)
def test_email_normalised(email: str) -> None:
    assert validate({"email": email}).match.value == "john@example.com"


@pytest.mark.parametrize("email", ["john", "john@", "@example.com", "john@@example.com", "a b@c.d"])
def test_invalid_email_refused(email: str) -> None:
    assert_refused({"email": email}, "email")


def test_invalid_email_refused_for_email_profile() -> None:
    assert_refused({"matching": "email_profile", "email": "nope"}, "email")


@pytest.mark.parametrize(
    ("phone", "region"),
    [
        ("+79000000000", ""),
        ("+7 (900) 000-00-00", ""),
        ("79000000000", ""),
        ("0079000000000", ""),
        (" +7 900 000 00 00 ", ""),
        ("+7-900-000-00-00", ""),
        ("8 900 000 00 00", "RU"),
        ("8 (900) 000-00-00", "RU"),
        ("+7 (900) 000-00-00", "RU"),
        ("79000000000", "RU"),
    ],
)
def test_phone_normalised_to_e164(phone: str, region: str) -> None:
    reg = validate({"matching": "phone", "phone": phone}, phone_region=region)
    assert reg.match == MatchKey("phone", "phones", "+79000000000")


@pytest.mark.parametrize("phone", ["abc", "+7 123", "", "+", "+999 123456", "12"])
def test_invalid_phone_refused(phone: str) -> None:
    assert_refused({"matching": "phone", "phone": phone}, "phone")


def test_profile_id_trimmed() -> None:
    reg = validate({"matching": "profile_id", "profile_id": " 651516181a5c52f94532fb1d "})
    assert reg.match == MatchKey("profile_id", None, "651516181a5c52f94532fb1d")


@pytest.mark.parametrize(
    ("field_value", "key"),
    [(123420, "123420"), (12.0, "12"), (12.5, "12.5"), (-3, "-3"), ("123420", "123420")],
)
def test_custom_field_value_text(field_value: Any, key: str) -> None:
    reg = validate({"matching": "custom", "field_name": "CRM_ID", "field_value": field_value})
    assert reg.match == MatchKey("custom", "CRM_ID", key)


@pytest.mark.parametrize("field_value", [True, False])
def test_custom_field_value_bool_refused(field_value: bool) -> None:
    assert_refused(
        {"matching": "custom", "field_name": "CRM_ID", "field_value": field_value}, "field_value"
    )


# --- pixel_data --------------------------------------------------------------------------------

SEED_PIXEL_DATA: dict[str, Any] = {
    "hello": "hi",
    "arr": [1, 2, 3],
    "int_val": 56893,
    "bool_val": True,
    "date_val": "2023-08-12",
}


def test_pixel_data_seed_example_stored_compact() -> None:
    reg = validate({"pixel_data": SEED_PIXEL_DATA})
    assert reg.attrs["pixel_data"] == (
        '{"hello":"hi","arr":[1,2,3],"int_val":56893,"bool_val":true,"date_val":"2023-08-12"}'
    )


def test_pixel_data_doc_example_accepted() -> None:
    reg = validate({"pixel_data": {"key": "value", "array": [1, 2, 3]}})
    assert reg.attrs["pixel_data"] == '{"key":"value","array":[1,2,3]}'


@pytest.mark.parametrize(
    ("pixel_data", "stored"),
    [
        ({}, "{}"),
        (
            {"n": None, "f": 1.5, "s": ["a", "b"], "b": False},
            '{"n":null,"f":1.5,"s":["a","b"],"b":false}',
        ),
        ({"ключ": "значение"}, '{"ключ":"значение"}'),
    ],
)
def test_pixel_data_flat_objects_accepted(pixel_data: dict[str, Any], stored: str) -> None:
    assert validate({"pixel_data": pixel_data}).attrs["pixel_data"] == stored


def test_pixel_data_absent_is_none() -> None:
    assert validate({}).attrs["pixel_data"] is None


@pytest.mark.parametrize(
    ("pixel_data", "path"),
    [
        ({"x": {"a": 1}}, "pixel_data.x"),
        ({"ok": 1, "x": {}}, "pixel_data.x"),
        ({"x": [{"a": 1}]}, "pixel_data.x"),
    ],
)
def test_pixel_data_nested_object_refused(pixel_data: dict[str, Any], path: str) -> None:
    assert refused({"pixel_data": pixel_data}) == f"{path}: nested objects are not allowed"


@pytest.mark.parametrize("pixel_data", [{"x": [[1, 2]]}, {"x": [1, []]}])
def test_pixel_data_array_of_arrays_refused(pixel_data: dict[str, Any]) -> None:
    assert_refused({"pixel_data": pixel_data}, "pixel_data.x")


def test_pixel_data_at_1024_bytes_accepted() -> None:
    pixel_data = {"k": "x" * (1024 - len('{"k":""}'))}
    stored = validate({"pixel_data": pixel_data}).attrs["pixel_data"]
    assert len(stored.encode()) == 1024


def test_pixel_data_over_1024_bytes_refused_with_size() -> None:
    pixel_data = {"k": "x" * (1025 - len('{"k":""}'))}
    text = refused({"pixel_data": pixel_data})
    assert text.startswith("pixel_data: "), text
    assert "1025 bytes" in text


def test_pixel_data_many_keys_over_1024_bytes_refused() -> None:
    pixel_data = {f"key{i:03}": i for i in range(100)}
    assert_refused({"pixel_data": pixel_data}, "pixel_data", "bytes")


def test_pixel_data_counts_utf8_bytes() -> None:
    # 508 Cyrillic letters are 1016 bytes: 1024 with the braces, quotes and key.
    ok = validate({"pixel_data": {"k": "я" * 508}}).attrs["pixel_data"]
    assert len(ok.encode()) == 1024
    # 510 letters are far below 1024 characters but 1028 bytes.
    text = refused({"pixel_data": {"k": "я" * 510}})
    assert text.startswith("pixel_data: "), text
    assert "1028 bytes" in text


# --- geolocation and market --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "missing"),
    [({"lat": 55.244075}, "lon"), ({"lon": 19.379932}, "lat"), ({"lat": 0, "lon": None}, "lon")],
)
def test_lat_lon_go_together(change: dict[str, Any], missing: str) -> None:
    assert_refused(change, missing, "required")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"lat": 91, "lon": 0}, "lat"),
        ({"lat": -90.5, "lon": 0}, "lat"),
        ({"lat": 0, "lon": -181}, "lon"),
        ({"lat": 0, "lon": 180.01}, "lon"),
    ],
)
def test_lat_lon_out_of_range_refused(change: dict[str, Any], path: str) -> None:
    assert_refused(change, path)


@pytest.mark.parametrize(("lat", "lon"), [(90, 180), (-90, -180), (0, 0), (55.244075, 19.379932)])
def test_lat_lon_in_range_accepted(lat: float, lon: float) -> None:
    reg = validate({"lat": lat, "lon": lon})
    assert (reg.attrs["lat"], reg.attrs["lon"]) == (lat, lon)


def test_sku_eid_needs_product_eid() -> None:
    assert_refused({"sku_eid": "hd_450bt_earphones_black"}, "product_eid", "sku_eid")


def test_sku_eid_with_product_eid_accepted() -> None:
    reg = validate({"sku_eid": "sku", "product_eid": "product"})
    assert (reg.attrs["product_eid"], reg.attrs["sku_eid"]) == ("product", "sku")


# --- IPs and MAC -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "raw", "stored"),
    [
        ("client_ip", "10.20.30.40", "10.20.30.40"),
        ("client_ip", "fe80::5215:5556:d75f:806b", "fe80::5215:5556:d75f:806b"),
        ("client_ip", "FE80::0:1", "fe80::1"),
        ("client_ip", " 192.168.0.0 ", "192.168.0.0"),
        ("client_ip_v4", "198.16.74.224", "198.16.74.224"),
        ("client_ip_v6", "fe80::5215:5556:d75f:806b", "fe80::5215:5556:d75f:806b"),
        ("client_ip_v6", "2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("net_gateway_ipv4", "10.200.0.1", "10.200.0.1"),
        ("net_gateway_ipv6", "::ff", "::ff"),
        ("net_gateway_ipv6", "0:0:0:0:0:0:0:FF", "::ff"),
    ],
)
def test_ip_addresses_accepted_and_normalised(field: str, raw: str, stored: str) -> None:
    assert validate({field: raw}).attrs[field] == stored


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("client_ip_v4", "fe80::5215:5556:d75f:806b"),
        ("client_ip_v6", "198.16.74.224"),
        ("net_gateway_ipv4", "::ff"),
        ("net_gateway_ipv6", "10.200.0.1"),
        ("client_ip", "not an ip"),
        ("client_ip", "256.1.1.1"),
        ("client_ip", "10.0.0"),
        ("client_ip_v4", "garbage"),
        ("client_ip_v6", "fe80:::1"),
        ("net_gateway_ipv4", ""),
    ],
)
def test_ip_addresses_refused(field: str, raw: str) -> None:
    assert_refused({field: raw}, field)


@pytest.mark.parametrize(
    "raw",
    [
        "28:87:ba:c1:0d:5e",
        "28:87:BA:C1:0D:5E",
        "28-87-ba-c1-0d-5e",
        "2887.bac1.0d5e",
        "2887.BAC1.0D5E",
    ],
)
def test_mac_address_normalised(raw: str) -> None:
    assert validate({"net_mac_addr": raw}).attrs["net_mac_addr"] == "28:87:ba:c1:0d:5e"


@pytest.mark.parametrize(
    "raw",
    ["garbage", "28:87:ba:c1:0d", "28:87:ba:c1:0d:5e:00", "28:87-ba:c1:0d:5e", "zz:87:ba:c1:0d:5e"],
)
def test_mac_address_garbage_refused(raw: str) -> None:
    assert_refused({"net_mac_addr": raw}, "net_mac_addr")


# --- time zone and country ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Europe/Moscow", "Europe/Moscow"),
        ("europe/moscow", "Europe/Moscow"),
        ("EUROPE/MOSCOW", "Europe/Moscow"),
        ("America/New_York", "America/New_York"),
        ("UTC", "UTC"),
    ],
)
def test_time_zone_canonical(raw: str, stored: str) -> None:
    assert validate({"time_zone": raw}).attrs["time_zone"] == stored


@pytest.mark.parametrize("raw", ["Mars/Base", "Moscow", "+03:00", ""])
def test_time_zone_refused(raw: str) -> None:
    assert_refused({"time_zone": raw}, "time_zone")


@pytest.mark.parametrize("raw", ["RU", "ru", "RUS", "Russian Federation", "russian federation"])
def test_country_stored_as_alpha2(raw: str) -> None:
    assert validate({"country": raw}).attrs["country"] == "RU"


@pytest.mark.parametrize("raw", ["Narnia", "XX", ""])
def test_country_refused(raw: str) -> None:
    assert_refused({"country": raw}, "country")


# --- counts, loyalty, categories ---------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 5])
def test_count_items_accepted(count: int) -> None:
    assert validate({"count_items": count}).attrs["count_items"] == count


def test_count_items_negative_refused() -> None:
    assert_refused({"count_items": -1}, "count_items")


@pytest.mark.parametrize("loyalty_id", [0, -5])
def test_loyalty_id_non_positive_refused(loyalty_id: int) -> None:
    assert_refused({"loyalty_id": loyalty_id}, "loyalty_id")


def test_loyalty_id_accepted() -> None:
    assert validate({"loyalty_id": 5}).attrs["loyalty_id"] == 5


def test_categories_stored_as_json_text() -> None:
    reg = validate({"categories": ["category_1", "категория"]})
    assert reg.attrs["categories"] == '["category_1","категория"]'


def test_100_categories_accepted() -> None:
    assert validate({"categories": ["c"] * 100}).attrs["categories"] is not None


def test_more_than_100_categories_refused() -> None:
    assert_refused({"categories": ["c"] * 101}, "categories", "100")


def test_long_category_refused() -> None:
    text = refused({"categories": ["c" * 129]})
    assert text == "categories[0]: longer than 128 characters"
    text = refused({"categories": ["ok", "c" * 129]})
    assert text == "categories[1]: longer than 128 characters"


# --- flags -------------------------------------------------------------------------------------


def test_flag_defaults() -> None:
    reg = validate({})
    assert (reg.skip_triggers, reg.enrich_profile, reg.is_test) == (False, True, False)


def test_flag_nulls_are_defaults() -> None:
    reg = validate({"skip_triggers": None, "enrich_profile": None, "is_test": None})
    assert (reg.skip_triggers, reg.enrich_profile, reg.is_test) == (False, True, False)


def test_flags_explicit_false() -> None:
    reg = validate({"skip_triggers": False, "enrich_profile": False, "is_test": False})
    assert (reg.skip_triggers, reg.enrich_profile, reg.is_test) == (False, False, False)


def test_flags_explicit_true() -> None:
    reg = validate({"skip_triggers": True, "enrich_profile": True, "is_test": True})
    assert (reg.skip_triggers, reg.enrich_profile, reg.is_test) == (True, True, True)


# --- accept_language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("en;q=0.5, ru", "ru"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("EN-us", "en"),
        ("de;q=0.1, en;q=0.2", "en"),
        ("*", None),
        ("en;q=0", None),
    ],
)
def test_language_from_accept_language(accept_language: str, language: str | None) -> None:
    reg = validate({"accept_language": accept_language})
    assert reg.attrs["language"] == language
    assert reg.attrs["accept_language"] == accept_language


def test_language_absent() -> None:
    assert validate({}).attrs["language"] is None


# --- the seed page's examples ------------------------------------------------------------------

# "Example of a request to send additional information about an event", verbatim.
SEED_FULL_EXAMPLE = example("full.json").decode()

SEED_FULL_ATTRS: dict[str, Any] = {
    "vendor": "altcraft",
    "external_type": "event_pixel_test",
    "external_event_id": "qwerty123",
    "altcraft_client_id": "9f11d32d-2935-43d0-b8df-f4c3568095b2",
    "referer": "api.req.from.my.site",
    "user_agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/51.0.2704.103 Safari/537.36"
    ),
    "accept_language": "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5",
    "language": "fr",
    "client_ip": "192.168.0.0",
    "client_ip_v4": "198.16.74.224",
    "client_ip_v6": "fe80::5215:5556:d75f:806b",
    "browser": "Chrome",
    "os": "Ubuntu",
    "device": "Desktop",
    "lat": 55.244075,
    "lon": 19.379932,
    "country": "RU",
    "region": "Ryazan",
    "city": "Ryazan",
    "address": "Pochtovaya street",
    "zip": "390000",
    "time_zone": "Europe/Moscow",
    "utm_content": "utm_content",
    "utm_medium": "utm_medium",
    "utm_source": "utm_source",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "net_ssid": "10.200.0.0",
    "net_mac_addr": "28:87:ba:c1:0d:5e",
    "net_gateway_ipv4": "10.200.0.1",
    "net_gateway_ipv6": "::ff",
    "send_message_id": "w4Wq877djSG1_2_a1_6t_2p_U_2_g.2UCSmxz7zFnuCfCMK_5KmKH9",
    "loyalty_id": 5,
    "promo_id": "6285183c3f62fcd4ac5ed36d",
    "endpoint_eid": "online_store",
    "order_eid": "12345",
    "product_eid": "hd_450_bt_earphones",
    "sku_eid": "hd_450bt_earphones_black",
    "region_eid": "region_eYFe2AE6s",
    "count_items": 1,
    "categories": '["category_KBZ1qurFP"]',
    "pixel_data": (
        '{"hello":"hi","arr":[1,2,3],"int_val":56893,"bool_val":true,"date_val":"2023-08-12"}'
    ),
    "sources": None,
}

#: Seed-example keys that land outside ``attrs``: on Registration itself or nowhere (the token
#: is authentication, checked before validation).
SEED_TOP_LEVEL = {
    "token",
    "db_id",
    "pixel_id",
    "goals",
    "matching",
    "profile_id",
    "skip_triggers",
    "enrich_profile",
    "is_test",
}


def validate_raw(body: bytes) -> Registration:
    req = decode(body, RegisterRequest)
    return registration(req, now=NOW, max_future_seconds=MAX_FUTURE)


def test_seed_full_example_validates() -> None:
    reg = validate_raw(SEED_FULL_EXAMPLE.encode())
    assert reg.db_id == 24
    assert reg.pixel_id == 7
    assert reg.goals == (Goal("cart", 10.99), Goal("two", -12.34))
    assert reg.matching == "profile_id"
    assert reg.match == MatchKey("profile_id", None, "651516181a5c52f94532fb1d")
    assert (reg.event_at, reg.date_raw) == (NOW_ISO, None)
    assert (reg.skip_triggers, reg.enrich_profile, reg.is_test) == (False, True, True)
    assert reg.attrs == SEED_FULL_ATTRS


def test_seed_full_example_drops_no_field() -> None:
    sent = set(msgspec.json.decode(SEED_FULL_EXAMPLE.encode()))
    assert sent - SEED_TOP_LEVEL <= set(EVENT_ATTRS)
    reg = validate_raw(SEED_FULL_EXAMPLE.encode())
    assert set(reg.attrs) == set(EVENT_ATTRS)
    for name in sent - SEED_TOP_LEVEL:
        assert reg.attrs[name] is not None, name


def test_seed_one_goal_example() -> None:
    body = example("1-goal.json")
    reg = validate_raw(body)
    assert reg.goals == (Goal("card", -25.5),)
    assert reg.match == MatchKey("profile_id", None, "abcdefghijklmnqrstuvwxyz")
    assert reg.attrs["referer"] == "api.example.com"


def test_seed_two_goals_example() -> None:
    body = example("2-goals.json")
    reg = validate_raw(body)
    assert (reg.db_id, reg.pixel_id) == (24, 7)
    assert reg.goals == (Goal("cart", 10.99), Goal("two", -12.34))
    assert (reg.attrs["client_ip"], reg.attrs["referer"]) == ("10.20.30.40", "api.req.from.my.site")


def test_unknown_keys_ignored() -> None:
    reg = validate({"unknown_key": {"deep": [1, 2]}, "another": "x" * 500})
    assert reg.goals == (Goal(None, None),)


# -- edge cases found in review ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["café", "Größe", "Ærø", "łódź", "ёлка", "Їжак"])
def test_accented_latin_and_cyrillic_letters_accepted(name: str) -> None:
    assert validate({"goal": name}).goals[0].name == name


@pytest.mark.parametrize("name", ["a\u0483", "\u0482", "\u03b1", "\u05e9"])
def test_non_letters_of_the_cyrillic_block_and_other_scripts_refused(name: str) -> None:
    assert_refused({"goal": name}, "goal", "is not allowed")


def test_ipv6_zone_index_refused() -> None:
    assert_refused({"client_ip": "fe80::1%eth0"}, "client_ip", "zone index")


def test_unicode_digits_are_not_epoch_seconds() -> None:
    assert_refused({"date": "²"}, "date", "not a date")


# -- dictionary fields (issue 3) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "raw", "stored"),
    [
        ("browser", "chrome", "Chrome"),
        ("browser", "Yandex Browser", "Yandex Browser"),
        ("os", "UBUNTU", "Ubuntu"),
        ("os", "macos", "macOS"),
        ("device", "desktop", "Desktop"),
        ("device", "Smartphone", "Smartphone"),
    ],
)
def test_dictionary_fields_are_stored_in_canonical_spelling(
    field: str, raw: str, stored: str
) -> None:
    assert validate({field: raw}).attrs[field] == stored


@pytest.mark.parametrize(("field", "name"), [("browser", "browsers"), ("os", "oses"),
                                             ("device", "devices")])  # fmt: skip
def test_values_outside_the_dictionary_are_refused(field: str, name: str) -> None:
    text = refused({field: "Netscape Navigator 2"})
    assert text == (
        f"{field}: 'Netscape Navigator 2' is not in the {name} dictionary; "
        f'list it with POST /api/v1.1/dictionary {{"name": "{name}"}}'
    )
