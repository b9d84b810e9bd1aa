"""Which codec reads a request and which writes its reply (SPEC §1 "Wire rules").

Reading: ``Content-Type`` JSON (with or without charset) or XML; a missing or ``text/plain``
type is sniffed (``<`` first means XML, else JSON); so is a form-encoded body
that starts with ``{`` or ``<`` (``curl -d`` without ``-H``). Replying: the ``format`` body field or
``?format=`` wins, then an ``Accept`` that names exactly one of JSON or XML, else the request's
own format.
"""

from __future__ import annotations

from typing import Literal

from goalline.errors import InvalidRequest, UnsupportedMediaType

Format = Literal["json", "xml"]

_JSON_TYPES = {"application/json", "text/json", "application/x-json"}
_XML_TYPES = {"application/xml", "text/xml"}
#: Types whose body is sniffed: clients that forget the header (curl -d sends form encoding).
_SNIFFED = {"", "text/plain", "application/octet-stream", "application/x-www-form-urlencoded"}


def request_format(content_type: str, body: bytes) -> Format:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or media.endswith("+json"):
        return "json"
    if media in _XML_TYPES or media.endswith("+xml"):
        return "xml"
    if media in _SNIFFED:
        start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if start == b"<":
            return "xml"
        if start in (b"{", b"") or media != "application/x-www-form-urlencoded":
            return "json"
    raise UnsupportedMediaType(
        f"content-type: {media!r} is not supported; send application/json or application/xml"
    )


def reply_format(request: Format, accept: str, explicit: str | None) -> Format:
    if explicit:
        wanted = explicit.strip().lower()
        if wanted not in ("json", "xml"):
            raise InvalidRequest.field("format", "must be json or xml")
        return wanted  # type: ignore[return-value]
    if accept:
        media = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
        wants_json = bool(media & _JSON_TYPES)
        wants_xml = bool(media & _XML_TYPES)
        if wants_json != wants_xml:
            return "json" if wants_json else "xml"
    return request
