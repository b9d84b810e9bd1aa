"""Helpers shared by the contract tests: the seed page's examples as files, admin set-up through
the real CLI, replies in both formats, and goal events read straight from the store."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx

from goalline.storage.store import open_store

from conftest import goalline

EXAMPLES = Path(__file__).parent / "examples"
REGISTER = "/api/v1.1/goals/register"
CONTENT_TYPES = {"json": "application/json", "xml": "application/xml"}
#: Names the seed page sends as arrays; a one-element XML array looks like a scalar (SPEC §1).
XML_ARRAYS = frozenset({"goals", "categories", "event_ids"})


def cli(*args: str, database: str) -> dict[str, Any]:
    """Run ``goalline ARGS --json`` as a user would; fail with its stderr when it fails."""
    done = goalline(*args, "--json", database=database, check=False)
    assert done.returncode == 0, f"goalline {' '.join(args)} failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def create_token(name: str, value: str, *, database: str) -> int:
    created = cli("token", "create", name, "--value", value, database=database)
    assert created["token"] == value
    return int(created["id"])


def post(
    url: str,
    body: bytes,
    content_type: str | None = "application/json",
    *,
    path: str = REGISTER,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    return httpx.post(url + path, content=body, headers=sent, params=params, timeout=30)


def post_json(url: str, obj: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return post(url, json.dumps(obj).encode(), **kwargs)


def xml_reply(text: bytes) -> dict[str, Any]:
    """An XML reply envelope, with ``error`` and ``event_ids`` read as integers."""
    root = ET.fromstring(text)
    assert root.tag == "xml", f"reply root is <{root.tag}>, not <xml>"
    reply = xml_dict(root)
    reply["error"] = int(reply["error"])
    if "event_ids" in reply:
        reply["event_ids"] = [int(i) for i in reply["event_ids"]]
    return reply


def reply_of(response: httpx.Response, fmt: str) -> dict[str, Any]:
    """The reply envelope, checking that it came in format ``fmt``."""
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == CONTENT_TYPES[fmt], f"{fmt} request answered as {media}: {response.text}"
    if fmt == "xml":
        return xml_reply(response.content)
    reply: dict[str, Any] = response.json()
    return reply


def xml_dict(element: ET.Element) -> dict[str, Any]:
    """An element's children as a mapping of text: a repeated name (or an XML_ARRAYS name) is a
    list, an element with children a mapping. The seed page's reading of its own XML examples."""
    out: dict[str, Any] = {}
    for child in element:
        value: Any = xml_dict(child) if len(child) else (child.text or "")
        if child.tag in out:
            previous = out[child.tag]
            out[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.tag] = [value] if child.tag in XML_ARRAYS else value
    return out


def load_example(name: str) -> dict[str, Any]:
    """The example file ``name`` parsed: JSON typed, XML as text (see ``xml_dict``)."""
    raw = (EXAMPLES / name).read_bytes()
    if name.endswith(".xml"):
        root = ET.fromstring(raw)
        assert root.tag == "xml"
        return xml_dict(root)
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def as_xml_text(value: Any) -> Any:
    """A typed value as the seed page's XML writes it (``true``, ``-25.5``, ``56893``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return [as_xml_text(v) for v in value]
    if isinstance(value, dict):
        return {k: as_xml_text(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equal in value and in type, recursively (so ``1 != 1.0 != True`` and ``"1" != 1``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def stored_events(database: str, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Goal events read from the store itself (not through the server), oldest first."""
    store = open_store(database)
    try:
        if ids is None:
            return store.call(lambda tx: tx.events(), write=False)
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        where = f"id IN ({marks})"
        return store.call(lambda tx: tx.events(where, tuple(ids)), write=False)
    finally:
        store.close()


def utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    assert when.tzinfo is not None, f"{text!r} has no offset"
    return when


def near_now(text: str, seconds: float = 600) -> bool:
    return abs((utc(text) - dt.datetime.now(dt.UTC)).total_seconds()) < seconds
