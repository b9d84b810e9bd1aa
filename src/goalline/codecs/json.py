"""JSON ↔ typed requests. Decoders are built once per request type (msgspec).

Limits that settings change (the nesting depth) are arguments of :func:`decode`, passed by the
transport from its settings; nothing here reads settings.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar

import msgspec

from goalline.errors import InvalidRequest

S = TypeVar("S", bound=msgspec.Struct)

#: Deepest nesting of objects and arrays accepted, the top-level object being level 1: the
#: default of the ``max_json_depth`` setting, the same as XML's (codecs/xml.py).
MAX_DEPTH = 32

_AT_PATH = re.compile(r"^(?P<rule>.*?) - at `\$(?P<path>[^`]*)`$")
_TOO_LONG = re.compile(r"^Expected `str` of length <= (\d+)$")
_RANGE = re.compile(r"^Expected `(?P<kind>int|float)` (?P<op>>=|<=) (?P<bound>\S+)$")
#: msgspec's words for a JSON number past every float (1e999) or int (4,300 digits) it reads.
_TOO_BIG = {
    "Number out of range": "must be a finite number",
    "Integer value out of range": "must be an integer of at most 64 bits",
}
_encoder = msgspec.json.Encoder()
#: For the depth scan: delete every byte but quotes and brackets, and read ``{}`` as ``[]``.
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_BACKSLASH, _QUOTE, _OPEN_ARRAY = ord("\\"), ord('"'), ord("[")
#: From this size on the depth scan skips its counting gate (measured: the two counts of a
#: 30 KB body cost a third of the scan).
_SCAN_ALWAYS = 4096


@cache
def _decoder(kind: type[S]) -> msgspec.json.Decoder[S]:
    return msgspec.json.Decoder(kind)


def decode(body: bytes, kind: type[S], *, max_depth: int = MAX_DEPTH) -> S:
    """Decode and type-check a JSON body; 400 naming the field on any mismatch.

    The whole body must be UTF-8, ignored keys too (as an XML body must). Objects and arrays
    nested deeper than ``max_depth`` are refused whole, wherever they are (an ignored key
    too): the decoder recurses, and its recursion must stay bounded.
    """
    try:
        if not body.isascii():  # msgspec checks only the strings it keeps
            body.decode("utf-8")
        if deeper_than(body, max_depth):
            raise too_deep(max_depth)
        request: S = _decoder(kind).decode(body)
        # NUL cannot be stored (PostgreSQL text): find and name it. A byte's ``in`` (memchr)
        # first: much cheaper than looking for the whole escape in every body.
        if _BACKSLASH in body and b"\\u0000" in body:
            refuse_nul(msgspec.to_builtins(request))
        return request
    except msgspec.ValidationError as exc:
        raise field_error(str(exc)) from None
    except msgspec.DecodeError as exc:
        if not body.strip():
            raise InvalidRequest("body: empty; send a JSON object") from None
        raise InvalidRequest(f"body: malformed JSON ({_plain(str(exc))})") from None
    except UnicodeDecodeError:
        bad = _first_bad_byte(body)  # JSON text is UTF-8 (RFC 8259), so this is malformed JSON
        raise InvalidRequest(f"body: malformed JSON (not valid UTF-8 at byte {bad})") from None
    except RecursionError:  # only a malformed body gets past the scan (unclosed brackets)
        raise too_deep(max_depth) from None


def _first_bad_byte(body: bytes) -> int:
    """Where (counting from 1) the body stops being UTF-8; msgspec says only where in its string."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start + 1
    return 0  # unreachable: msgspec found a byte that is not UTF-8


def too_deep(max_depth: int) -> InvalidRequest:
    return InvalidRequest(f"body: JSON nested deeper than {max_depth} levels")


def deeper_than(body: bytes, limit: int) -> bool:
    """Whether objects and arrays in ``body`` nest more than ``limit`` levels (brackets inside
    strings do not count). Every step is one pass of a bytes method in C, no Python loop over
    the body: a small body with at most ``limit`` brackets cannot nest deeper (two counts);
    any other body costs a translate to its quotes and brackets, a replace that drops the
    strings without brackets in them, and one replace per level up to ``limit``.

    Measured against the decode of today's main (issue 17): the seed's 1-goal body 1.08 →
    1.16 µs, the full example 3.9 → 4.4 µs, 1,000 goals 116 → 147 µs, a 10,000-item batch
    8.0 → 8.6 ms; a body 999 levels deep is refused in 5 µs. Catching the decoder's
    RecursionError alone costs nothing on those bodies, but only bounds the depth at about
    900 levels, less the stack in use at the time, so it could not be a setting.

    A body whose brackets do not pair up is reported as not too deep: the decoder then calls
    it malformed (and a RecursionError on it is caught by :func:`decode`).
    """
    if len(body) < _SCAN_ALWAYS:  # counting a large body costs as much as scanning it
        opened = body.count(b"{") + (body.count(b"[") if _OPEN_ARRAY in body else 0)
        if opened <= limit:
            return False
    if _BACKSLASH in body:  # escapes first: \\ then \" (JSON pairs them from the left, too)
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Quotes and brackets alone, "{}" read as "[]". Two adjacent quotes enclose no bracket
    # (an empty string, or the gap between two strings), so dropping them leaves every bracket
    # inside or outside a string as it was; quotes remain only around brackets in strings.
    structure = body.translate(_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if _QUOTE in structure:
        structure = b"".join(structure.split(b'"')[::2])
    if len(structure) <= 2 * limit:
        return False
    if b"[" * (limit + 1) in structure:  # the usual attack, refused in one search
        return True
    for _ in range(limit):
        # Each pass removes the innermost pairs only, one level: "[]" cannot overlap itself.
        inner = structure.replace(b"[]", b"")
        if not inner or len(inner) == len(structure):
            return False
        structure = inner
    return True


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
    out_of_range = _RANGE.match(found["rule"])
    if out_of_range:
        return InvalidRequest(f"{path}: {_range_rule(**out_of_range.groupdict())}")
    if found["rule"] in _TOO_BIG:
        return InvalidRequest(f"{path}: {_TOO_BIG[found['rule']]}")
    return InvalidRequest(f"{path}: {_plain(found['rule'])}")


def _range_rule(kind: str, op: str, bound: str) -> str:
    """The rule behind a range of pipeline/requests.py, in the words the pipeline uses."""
    if kind == "float":
        return "must be a finite number"  # Finite is the only float range
    if op == ">=":
        return {"1": "must be a positive integer", "0": "must not be negative"}.get(
            bound, f"must be at least {bound}"
        )
    return f"must be at most {bound}"


def _plain(text: str) -> str:
    # ``null`` is always accepted as "absent" (SPEC §1), so naming it as an option is noise.
    text = text.replace("`", "").replace(" | null", "")
    return text[:1].lower() + text[1:]


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)
