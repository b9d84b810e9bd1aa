"""The reply envelope ``{"error": <int>, "error_text": "<text>", ...}`` in both formats."""

from __future__ import annotations

from typing import Any

from goalline.codecs import json as json_codec
from goalline.codecs import xml as xml_codec
from goalline.codecs.negotiate import Format
from goalline.errors import SUCCESS_TEXT, ApiError
from goalline.errors import success as success

__all__ = ["CONTENT_TYPES", "SUCCESS_TEXT", "encode", "failure", "success"]

CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "xml": "application/xml; charset=utf-8",
}


def failure(error: ApiError) -> dict[str, Any]:
    return error.envelope()


def encode(reply: dict[str, Any], fmt: Format) -> bytes:
    return xml_codec.encode(reply) if fmt == "xml" else json_codec.encode(reply)
