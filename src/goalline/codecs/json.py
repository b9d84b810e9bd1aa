"""JSON ↔ typed requests. Decoders are built once per request type (msgspec)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar

import msgspec

from goalline.errors import InvalidRequest

S = TypeVar("S", bound=msgspec.Struct)

_AT_PATH = re.compile(r"^(?P<rule>.*?) - at `\$(?P<path>[^`]*)`$")
_TOO_LONG = re.compile(r"^Expected `str` of length <= (\d+)$")
_encoder = msgspec.json.Encoder()


@cache
def _decoder(kind: type[S]) -> msgspec.json.Decoder[S]:
    return msgspec.json.Decoder(kind)


def decode(body: bytes, kind: type[S]) -> S:
    """Decode and type-check a JSON body; 400 naming the field on any mismatch."""
    try:
        request: S = _decoder(kind).decode(body)
        if b"\\u0000" in body:  # NUL cannot be stored (PostgreSQL text): find and name it
            refuse_nul(msgspec.to_builtins(request))
        return request
    except msgspec.ValidationError as exc:
        raise field_error(str(exc)) from None
    except msgspec.DecodeError as exc:
        if not body.strip():
            raise InvalidRequest("body: empty; send a JSON object") from None
        raise InvalidRequest(f"body: malformed JSON ({_plain(str(exc))})") from None


def convert(data: dict[str, Any], kind: type[S]) -> S:
    """Type-check an untyped mapping (the XML path): text is read as numbers and booleans."""
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise field_error(str(exc)) from None


def refuse_nul(value: Any, path: str = "") -> None:
    """400 naming the first string (or key) in ``value`` that holds a NUL character."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidRequest(f"{path or 'body'}: contains a NUL character")
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            refuse_nul(key, where)
            refuse_nul(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            refuse_nul(item, f"{path}[{i}]")


def field_error(message: str) -> InvalidRequest:
    """msgspec's ``Expected `int`, got `str` - at `$.db_id``` → ``db_id: expected int, got str``."""
    found = _AT_PATH.match(message)
    if found is None:
        return InvalidRequest(f"body: {_plain(message)}")
    path = found["path"].lstrip(".") or "body"
    too_long = _TOO_LONG.match(found["rule"])
    if too_long:
        return InvalidRequest(f"{path}: longer than {too_long[1]} characters")
    return InvalidRequest(f"{path}: {_plain(found['rule'])}")


def _plain(text: str) -> str:
    # ``null`` is always accepted as "absent" (SPEC §1), so naming it as an option is noise.
    text = text.replace("`", "").replace(" | null", "")
    return text[:1].lower() + text[1:]


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)
