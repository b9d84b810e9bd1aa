"""Tests for goalline.codecs.negotiate: which codec reads a request and which writes its reply."""

from __future__ import annotations

import pytest

from goalline.codecs.negotiate import Format, reply_format, request_format
from goalline.errors import ApiError, InvalidRequest, UnsupportedMediaType

JSON_BODY = b'{"token": "t", "db_id": 1}'
XML_BODY = b"<xml><token>t</token><db_id>1</db_id></xml>"


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", JSON_BODY, "json"),
        ("application/json; charset=UTF-8", JSON_BODY, "json"),
        ("application/json;charset=utf-8", JSON_BODY, "json"),
        ("Application/JSON", JSON_BODY, "json"),
        ("text/json", JSON_BODY, "json"),
        ("application/xml", XML_BODY, "xml"),
        ("application/xml; charset=UTF-8", XML_BODY, "xml"),
        ("text/xml", XML_BODY, "xml"),
        ("TEXT/XML; charset=windows-1251", XML_BODY, "xml"),
    ],
)
def test_request_format_from_content_type(content_type: str, body: bytes, expected: Format) -> None:
    assert request_format(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", XML_BODY, "json"),
        ("application/xml", JSON_BODY, "xml"),
    ],
)
def test_declared_content_type_wins_over_body(
    content_type: str, body: bytes, expected: Format
) -> None:
    assert request_format(content_type, body) == expected


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"],
)
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (JSON_BODY, "json"),
        (XML_BODY, "xml"),
        (b'<?xml version="1.0"?><xml></xml>', "xml"),
        (b"  \r\n\t" + JSON_BODY, "json"),
        (b"\n  " + XML_BODY, "xml"),
        (b"\xef\xbb\xbf" + XML_BODY, "xml"),
        (b"\xef\xbb\xbf" + JSON_BODY, "json"),
    ],
)
def test_request_format_sniffed(content_type: str, body: bytes, expected: Format) -> None:
    assert request_format(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\n"),
        ("multipart/form-data", JSON_BODY),
        ("image/png", b"\x89PNG\r\n"),
        ("image/png", JSON_BODY),
        ("application/pdf", XML_BODY),
        ("application/x-www-form-urlencoded", b"token=t&db_id=1"),
    ],
)
def test_unsupported_content_type_is_415(content_type: str, body: bytes) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        request_format(content_type, body)
    assert info.value.code == 415
    assert info.value.status == 415
    assert isinstance(info.value, ApiError)
    assert info.value.text.startswith("content-type: "), info.value.text


@pytest.mark.parametrize(
    ("request_fmt", "accept", "explicit", "expected"),
    [
        # the format field wins over everything
        ("json", "", "xml", "xml"),
        ("xml", "", "json", "json"),
        ("json", "application/json", "xml", "xml"),
        ("xml", "application/xml", "json", "json"),
        ("json", "", "XML", "xml"),
        ("xml", "", " Json ", "json"),
        # then an Accept naming exactly one of JSON or XML
        ("json", "application/xml", None, "xml"),
        ("json", "text/xml", None, "xml"),
        ("xml", "application/json", None, "json"),
        ("xml", "text/json", None, "json"),
        ("json", "application/xml;q=0.9", None, "xml"),
        ("xml", "application/json; charset=utf-8", None, "json"),
        ("json", "text/html, application/xml, */*;q=0.8", None, "xml"),
        # else the request's own format
        ("json", "*/*", None, "json"),
        ("xml", "*/*", None, "xml"),
        ("json", "application/json, application/xml", None, "json"),
        ("xml", "application/json, application/xml", None, "xml"),
        ("json", "", None, "json"),
        ("xml", "", None, "xml"),
        ("xml", "text/html", None, "xml"),
        ("json", "", "", "json"),
    ],
)
def test_reply_format(
    request_fmt: Format, accept: str, explicit: str | None, expected: Format
) -> None:
    assert reply_format(request_fmt, accept, explicit) == expected


@pytest.mark.parametrize("explicit", ["yaml", "html", "jsonp", "x"])
def test_bad_format_value_is_400(explicit: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        reply_format("json", "application/json", explicit)
    assert info.value.code == 400
    assert info.value.text == "format: must be json or xml"
