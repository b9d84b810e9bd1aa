"""The reply envelope ``{"error": <int>, "error_text": "<text>", ...}`` in both formats."""

from __future__ import annotations

from typing import Any

from goalline.codecs import json as json_codec
from goalline.codecs import xml as xml_codec
from goalline.codecs.negotiate import Format
from goalline.errors import ApiError

SUCCESS_TEXT = "Successful operation"
CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "xml": "application/xml; charset=utf-8",
}


def success(data: dict[str, Any]) -> dict[str, Any]:
    return {"error": 0, "error_text": SUCCESS_TEXT, **data}


def failure(error: ApiError) -> dict[str, Any]:
    return {"error": error.code, "error_text": error.text}


def encode(reply: dict[str, Any], fmt: Format) -> bytes:
    return xml_codec.encode(reply) if fmt == "xml" else json_codec.encode(reply)
