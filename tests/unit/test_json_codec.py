"""Tests for goalline.codecs.json: the depth limit, bytes that are not UTF-8, and the wording of
the ranges pipeline/requests.py declares (issue 17)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from goalline.codecs import json as json_codec
from goalline.codecs import xml as xml_codec
from goalline.errors import InvalidRequest
from goalline.pipeline import bulk, validate
from goalline.pipeline.requests import (
    HistoryGetRequest,
    ProfileImportBatchRequest,
    RegisterRequest,
)
from goalline.settings import BY_NAME
from goalline.transport import api


def refused(body: bytes, kind: type[Any] = RegisterRequest, **limits: int) -> str:
    with pytest.raises(InvalidRequest) as info:
        json_codec.decode(body, kind, **limits)
    return info.value.text


def test_the_settings_defaults_are_the_codecs_and_the_pipelines() -> None:
    assert BY_NAME["max_json_depth"].default == json_codec.MAX_DEPTH == 32
    assert BY_NAME["max_xml_depth"].default == xml_codec.MAX_DEPTH == 32
    assert BY_NAME["max_goals"].default == validate.MAX_GOALS == 1000
    assert BY_NAME["max_batch_items"].default == bulk.MAX_ITEMS == 10_000


# --- depth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"{}", 1),
        (b'{"a":[]}', 2),
        (b'{"a":[{"b":{}}]}', 4),
        (b'{"a":[1,[2],{"c":[3]}]}', 4),
        (b'{"a":"[[[[[[[[[["}', 1),  # brackets in a string are text
        (b'{"a":"\\"[[[[[[[[["}', 1),  # an escaped quote does not end the string
        (b'{"a":"\\\\","b":[[[]]]}', 4),  # an escaped backslash does
        (b'{"a":"\\\\\\"[[[[[["}', 1),
        (b'{"\\u005b":[[]]}', 3),
        (b"[" * 40 + b"]" * 40, 40),
        (b'{"a":' + b"[{" * 20 + b"}]" * 20 + b"}", 41),
    ],
)
def test_depth_scan(body: bytes, depth: int) -> None:
    assert json_codec.deeper_than(body, depth) is False
    assert json_codec.deeper_than(body, depth - 1) is (depth - 1 >= 0)


def test_unpaired_brackets_are_left_to_the_decoder() -> None:
    assert json_codec.deeper_than(b"{}}" * 20, 2) is False
    assert json_codec.deeper_than(b"[1," * 40, 32) is False  # never closed: malformed


def test_a_long_run_of_opening_brackets_is_too_deep_closed_or_not() -> None:
    assert json_codec.deeper_than(b"[" * 100, 32) is True
    assert json_codec.deeper_than(b"[" * 100 + b"]" * 100, 32) is True
    assert refused(b'{"x":' + b"[" * 33).startswith("body: malformed JSON")


@pytest.mark.parametrize("levels", [33, 1_000, 200_000])
def test_deep_json_is_refused_under_an_ignored_key(levels: int) -> None:
    body = b'{"db_id":1,"ignored":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"
    assert refused(body) == "body: JSON nested deeper than 32 levels"


def test_32_levels_decode() -> None:
    body = b'{"db_id":1,"ignored":' + b"[" * 31 + b"]" * 31 + b"}"
    assert json_codec.decode(body, RegisterRequest).db_id == 1


def test_the_limit_is_an_argument() -> None:
    body = b'{"db_id":1,"ignored":[[1]]}'
    assert json_codec.decode(body, RegisterRequest, max_depth=3).db_id == 1
    assert refused(body, max_depth=2) == "body: JSON nested deeper than 2 levels"
    assert api.decode(RegisterRequest, body, "json", json_depth=3).db_id == 1
    with pytest.raises(InvalidRequest, match="deeper than 2 levels"):
        api.decode(RegisterRequest, body, "json", json_depth=2)


def test_xml_limit_is_an_argument() -> None:
    body = b"<xml><a><b>1</b></a></xml>"
    assert xml_codec.decode(body, max_depth=3) == {"a": {"b": "1"}}
    with pytest.raises(InvalidRequest, match="XML nested deeper than 2 levels"):
        xml_codec.decode(body, max_depth=2)
    with pytest.raises(InvalidRequest, match="XML nested deeper than 2 levels"):
        api.decode(RegisterRequest, body, "xml", xml_depth=2)


def test_a_depth_beyond_the_stack_is_still_a_400() -> None:
    levels = 5_000
    body = b'{"x":' + b"[" * levels + b"]" * levels + b"}"
    assert refused(body, max_depth=10**6).startswith("body: JSON nested deeper than")
    xml = b"<xml>" + b"<a>" * levels + b"1" + b"</a>" * levels + b"</xml>"
    with pytest.raises(InvalidRequest, match=r"^body: XML nested too deep"):
        xml_codec.decode(xml, max_depth=10**6)


def test_unclosed_deep_json_is_a_400() -> None:
    assert refused(b'{"x":' + b"[" * 100_000).startswith("body: ")


# --- bytes that are not UTF-8 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "byte"),
    [
        (b'{"goal":"\xff"}', 10),
        (b'{"goal":"caf\xe9"}', 13),
        (b'{"goal":"\xc3\x28"}', 10),
        (b'{"goal":"\xed\xa0\x80"}', 10),  # an encoded surrogate
    ],
)
def test_invalid_utf8_in_a_string_is_refused_naming_the_byte(body: bytes, byte: int) -> None:
    assert refused(body) == f"body: malformed JSON (not valid UTF-8 at byte {byte})"


# --- ranges ---------------------------------------------------------------------------------------

BIG = 2**63


@pytest.mark.parametrize(
    ("body", "kind", "text"),
    [
        ({"db_id": BIG}, RegisterRequest, "db_id: must be at most 9223372036854775807"),
        ({"db_id": 0}, RegisterRequest, "db_id: must be a positive integer"),
        ({"pixel_id": -1}, RegisterRequest, "pixel_id: must be a positive integer"),
        ({"loyalty_id": BIG}, RegisterRequest, "loyalty_id: must be at most 9223372036854775807"),
        ({"count_items": BIG}, RegisterRequest, "count_items: must be at most 9223372036854775807"),
        ({"from_id": 0}, HistoryGetRequest, "from_id: must be a positive integer"),
        ({"limit": -BIG - 1}, HistoryGetRequest, "limit: must be at least -9223372036854775808"),
        ({"db_id": BIG}, ProfileImportBatchRequest, "db_id: must be at most 9223372036854775807"),
        ({"goals": [{"goal": "a"}, {"value": 1e308 * 10}]}, RegisterRequest, "goals[1].value: "),
    ],
)
def test_ranges_are_worded_with_the_path(body: dict[str, Any], kind: type[Any], text: str) -> None:
    encoded = msgspec.json.encode(body).replace(b"null", b"1e999")
    assert refused(encoded, kind).startswith(text)


def test_the_edges_of_64_bits_decode() -> None:
    body = {"db_id": 2**63 - 1, "count_items": -(2**63), "date": 2**63 - 1}
    req = json_codec.decode(msgspec.json.encode(body), RegisterRequest)
    assert (req.db_id, req.count_items, req.date) == (2**63 - 1, -(2**63), 2**63 - 1)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e999"])
def test_xml_floats_must_be_finite(text: str) -> None:
    body = f"<xml><goal>a</goal><value>{text}</value></xml>".encode()
    with pytest.raises(InvalidRequest) as info:
        api.decode(RegisterRequest, body, "xml")
    assert info.value.text.startswith("value: "), info.value.text
