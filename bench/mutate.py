"""Fuzz cases: JSON and XML mutations of the seed examples, for every API method.

``case(seed, index)`` is a pure function: the same seed and index give the same request, byte
for byte, so any failing case can be made again alone (``scripts/fuzz --seed S --case I``).
The seeds are the seed page's examples (tests/contract/examples) and one valid body per API
method of ``goalline.pipeline.dispatch.METHODS`` (a method without a body of its own here gets
a generic one, so a new method is fuzzed from the day it is added).

A case is a request: HTTP method, path (with query), headers and body, and whether it must go
over a raw socket (header bytes an HTTP client library refuses to send). Mutations are layered:
the body's values (wrong types, huge numbers, long and odd strings, dates far away, removed,
duplicated and unknown keys, deep nesting, many items), XML's own features (attributes,
namespaces, DTDs and entities, CDATA, comments, mixed content, other roots and encodings), then
the bytes (bit flips, truncation, invalid UTF-8 and control bytes, a BOM, trailing bytes), then
the headers (odd Content-Type and Accept, tokens, Request-ID, query, path and HTTP method).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goalline.demo import DEMO_TOKEN
from goalline.pipeline.dispatch import METHODS
from goalline.pipeline.match import MATCHING_MODES

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "contract" / "examples"
#: The tokens the seed examples carry; the fuzzer's server knows them (see bench/fuzz.py).
EXAMPLE_TOKENS = (
    "abcdefghijklmnqrstuvwxyz",
    "2fefb577533d4cae919350c450755239",
    "91f1dfa81c264a938b475677c60ce967",
)
REGISTER = "goals/register"


# -- seeds ----------------------------------------------------------------------------------------


def method_bodies() -> dict[str, dict[str, Any]]:
    """One valid body per API method, on the demo data (database 1, pixel 1, its profiles)."""
    t = DEMO_TOKEN
    known: dict[str, dict[str, Any]] = {
        REGISTER: {
            "token": t,
            "db_id": 1,
            "pixel_id": 1,
            "matching": "email",
            "email": "john@example.com",
            "goal": "purchase",
            "value": 49.9,
        },
        "profiles/import": {
            "token": t,
            "db_id": 1,
            "matching": "email",
            "email": "fuzz@example.com",
            "data": {"_fname": "Fuzz", "CRM_ID": "42", "interests": ["audio"]},
        },
        "profiles/get": {"token": t, "db_id": 1, "email": "john@example.com"},
        "dictionary": {"token": t, "name": "browsers"},
        "profiles/import_batch": {
            "token": t,
            "db_id": 1,
            "matching": "email",
            "data": [
                {"email": "batch1@example.com", "data": {"_fname": "One"}},
                {"email": "batch2@example.com", "_fname": "Two", "phones": ["+79000000009"]},
            ],
        },
        "subscribers/history_get": {
            "token": t,
            "list_id": 1,
            "email": "john@example.com",
            "limit": 5,
        },
        "databases/list": {"token": t, "limit": 10},
        "databases/fields_get": {"token": t, "db_id": 1},
    }
    return {name: known.get(name, {"token": t, "db_id": 1}) for name in METHODS}


@dataclass(frozen=True)
class Seed:
    method: str
    fmt: str  # "json" or "xml"
    name: str
    value: dict[str, Any]  # JSON: the parsed object; XML: the same as a tree of text (xml_tree)


def load_seeds() -> list[Seed]:
    seeds: list[Seed] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        seeds.append(Seed(REGISTER, "json", path.name, json.loads(path.read_bytes())))
    for path in sorted(EXAMPLES.glob("*.xml")):
        seeds.append(Seed(REGISTER, "xml", path.name, parse_xml(path.read_text())))
    for method, body in method_bodies().items():
        seeds.append(Seed(method, "json", method, body))
        seeds.append(Seed(method, "xml", method, as_xml_value(body)))
    return seeds


# -- a JSON writer that can also say what json.dumps cannot ---------------------------------------


class Raw(str):
    """JSON or XML text written verbatim (``1e999``, ``NaN``, ``"\\ud800"``, ``&x;``)."""


class Pairs(list[tuple[str, Any]]):
    """An object written with its keys in this order, duplicates included."""


def dump_json(value: Any, rng: random.Random) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dump_json(v, rng)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(k)}:{dump_json(v, rng)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v, rng) for v in value) + "]"
    return json.dumps(value, ensure_ascii=rng.random() < 0.5)


# -- XML as a small tree of text ------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    text: str | None = None
    children: list[Node] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


def parse_xml(text: str) -> dict[str, Any]:
    """A seed XML file as {"root": Node}: kept as a tree so mutations can edit elements."""
    import xml.etree.ElementTree as ET

    def node(e: ET.Element) -> Node:
        kids = [node(c) for c in e]
        return Node(e.tag, None if kids else (e.text or ""), kids, dict(e.attrib))

    return {"root": node(ET.fromstring(text))}


def as_xml_value(body: dict[str, Any]) -> dict[str, Any]:
    """A JSON body spelled as Altcraft XML: arrays repeat their element."""

    def nodes(tag: str, value: Any) -> list[Node]:
        if isinstance(value, list):
            return [n for item in value for n in nodes(tag, item)]
        if isinstance(value, dict):
            return [Node(tag, None, [n for k, v in value.items() for n in nodes(k, v)])]
        if isinstance(value, bool):
            return [Node(tag, "true" if value else "false")]
        return [Node(tag, "" if value is None else str(value))]

    return {"root": Node("xml", None, [n for k, v in body.items() for n in nodes(k, v)])}


def escape(text: str) -> str:
    if isinstance(text, Raw):
        return str(text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_xml(node: Node) -> str:
    if not node.tag:  # text between elements (mixed content)
        return escape(node.text or "")
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in node.attrs.items())
    if node.children:
        inner = "".join(write_xml(c) for c in node.children)
        return f"<{node.tag}{attrs}>{inner}</{node.tag}>"
    if node.text is None:
        return f"<{node.tag}{attrs}/>"
    return f"<{node.tag}{attrs}>{escape(node.text)}</{node.tag}>"


# -- value pools ----------------------------------------------------------------------------------

HUGE = [
    2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400, -(10**400),
    Raw("1e999"), Raw("-1e999"), Raw("1e-999"), Raw("NaN"), Raw("Infinity"), Raw("-0"),
    Raw("123456789012345678901234567890.5"), Raw("0x10"), Raw("01"), Raw("1."), Raw(".5"),
    1.7976931348623157e308, -0.0, 5e-324,
]  # fmt: skip
DATES = [
    "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z", "2024-02-30T00:00:00Z",
    "2024-01-01T00:00:00", "2024-01-01", "2024-01-01T00:00:00+2500", "2024-01-01T25:61:00Z",
    "2024-01-01 00:00:00+0300", "2024-01-01T00:00:00.123456789Z", "1970-01-01T00:00:00Z",
    "", " ", "now", "1700000000", " 1700000000 ", "99999999999999999999", "1e10",
    -62135596800, -62135596801, -(10**12), 10**12, 10**20, 253402300800, 0, -1, 1.5, 2**63,
]  # fmt: skip
STRINGS = [
    "", " ", "\t", "a" * 129, "a" * 2049, "é" * 129, "я" * 128, "😀" * 65, "x" * 20_000,
    "\u0000", "a\u0000b", "\x01\x1f\x7f", "\u202e\u200b\ufeff", "e\u0301", "\uffff", "\U0010ffff",
    Raw('"\\ud800"'), Raw('"\\udfff\\ud800"'), Raw('"\\u0000"'), Raw('"\\x41"'), Raw('"\\q"'),
    "<xml>&amp;</xml>", "' OR 1=1--", "%s%n%x", "../../etc/passwd", "a\r\nb: c", "null",
    "true", "0", "-1", "1e999", "NaN", "Europe/Moscow", "john@example.com", "+79000000000",
    "cart", "☃ goal", "goal\u00a0name", "€ 5", "Цель",
]  # fmt: skip
FIELD_VALUES: dict[str, list[Any]] = {
    "token": ["", " ", DEMO_TOKEN, " " + DEMO_TOKEN, "t" * 129, *EXAMPLE_TOKENS, "nope"],
    "db_id": [0, -1, 1, 2, 24, 999_999, 2**63, "1", 1.0, True],
    "pixel_id": [0, -1, 1, 7, 999_999, 2**63, "7", 7.5],
    "matching": [*MATCHING_MODES, "", "EMAIL", "custom ", "x", 1],
    "email": ["a@b", "@", "x" * 120 + "@e.com", "é@e.рф", "JOHN@EXAMPLE.COM ", "a@@b.c"],
    "phone": ["+7", "+79000000000", "00", "abc", "+" + "9" * 30, "8 (900) 000-00-00"],
    "field_name": ["CRM_ID", "interests", "_fname", "nope", ""],
    "field_value": ["123420", 123420, 1.5, "audio, sport", True, [], {}],
    "client_ip": ["::1%eth0", "256.1.1.1", "1.2.3.4/24", "01.2.3.4", "::ffff:1.2.3.4", "8.8.8.8"],
    "client_ip_v4": ["::1", "1.2.3", "8.8.8.8"],
    "client_ip_v6": ["1.2.3.4", "fe80::1%1", "::"],
    "net_mac_addr": ["28:87:ba:c1:0d:5e", "28-87-BA-C1-0D-5E", "2887.bac1.0d5e", "zz:zz"],
    "country": ["", "XX", "Russia", "rus", "ru", "Côte d'Ivoire", "643"],
    "time_zone": ["Europe/Moscow", "europe/moscow", "UTC", "Mars/Base", "Factory"],
    "browser": ["Chrome", "chrome", "Netscape"],
    "os": ["Ubuntu", "Linux", "TempleOS"],
    "device": ["Desktop", "Toaster"],
    "lat": [91, -91, 90, 1e308, Raw("NaN"), "55.1"],
    "lon": [181, -181, 180, Raw("-Infinity")],
    "count_items": [-1, 10**9, 10**9 + 1, 2**63],
    "loyalty_id": [0, -5, 2**64],
    "format": ["xml", "json", "JSON", " xml ", "yaml", ""],
    "name": ["browsers", "oses", "devices", "tz", "languages", "BROWSERS", "nope", ""],
    "limit": [0, 1, 1000, 1001, -1, 2**63],
    "from_id": [0, -1, 1, 2**63],
    "list_id": [0, 1, 24, -1],
    "date_from": ["2024-01-01", "2024-13-01", "0001-01-01", "9999-12-31", "yesterday"],
    "date_to": ["2024-01-01", "2023-01-01", "0000-00-00"],
}
ALL_TYPES: list[Any] = [None, True, False, 0, -1, 1.5, "", "x", "1", [], {}, [1], {"a": 1}]
CONTENT_TYPES = [
    None, "", "application/json", "application/json; charset=utf-8",
    "application/json; charset=latin-1", "text/plain", "application/octet-stream",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
    "text/xml", "application/problem+json", "application/soap+xml", "text/html", "image/png",
    "application/json, application/xml", "APPLICATION/JSON", ";;;", "application/json; charset",
    "x" * 5000, "application/xml; charset=utf-16", "text/json", "*/*",
]  # fmt: skip
ACCEPTS = [
    None, "*/*", "application/json", "application/xml", "text/xml",
    "application/json, application/xml", "application/xml;q=0.1, application/json;q=0.9",
    "text/html", "text/csv", "garbage/;;", "", "application/*", "a" * 5000,
]  # fmt: skip
HTTP_METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]


# -- the case -------------------------------------------------------------------------------------


@dataclass
class Case:
    index: int
    label: str
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    #: Sent over a raw socket: header bytes an HTTP client library refuses to send.
    raw: bool = False
    ops: list[str] = field(default_factory=list)

    def request_bytes(self, host: str) -> bytes:
        """The whole HTTP/1.1 request as sent (saved for failures; ``nc`` replays it)."""
        lines = [f"{self.method} {self.path} HTTP/1.1".encode(), b"Host: " + host.encode()]
        lines += [k + b": " + v for k, v in self.headers]
        if not any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in self.headers):
            lines.append(b"Content-Length: %d" % len(self.body))
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


Mutation = Callable[[random.Random, Any], Any]


def case(seed: int, index: int, seeds: list[Seed]) -> Case:
    """Case ``index`` of run ``seed``: the same arguments always give the same request."""
    rng = random.Random(f"{seed}:{index}")
    chosen = rng.choice(seeds)
    ops: list[str] = []
    value = copy.deepcopy(chosen.value)
    if chosen.fmt == "json":
        for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
            name, op = rng.choice(JSON_OPS)
            value = op(rng, value)
            ops.append(name)
        body = dump_json(value, rng).encode("utf-8", "surrogatepass")
    else:
        for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
            name, xop = rng.choice(XML_OPS)
            value = xop(rng, value)
            ops.append("xml-" + name)
        body = xml_document(rng, value, ops)
    if rng.random() < 0.3:
        name, bop = rng.choice(BYTE_OPS)
        body = bop(rng, body)
        ops.append("bytes-" + name)
    media = "application/json" if chosen.fmt == "json" else "application/xml"
    headers: list[tuple[bytes, bytes]] = [(b"Content-Type", media.encode())]
    http_method, path = "POST", "/api/v1.1/" + chosen.method
    raw = False
    if rng.random() < 0.4:
        for _ in range(rng.choice((1, 1, 2, 3))):
            name, hop = rng.choice(HEADER_OPS)
            http_method, path, headers = hop(rng, http_method, path, headers)
            ops.append("header-" + name)
    # Small bodies only: a server that refuses a header closes the connection, and a body
    # still unread then resets it before the client reads the reply (TCP, not the server).
    if rng.random() < 0.04 and len(body) <= 16384:
        headers, body = raw_headers(rng, headers, body)
        ops.append("raw-header-bytes")
        raw = True
    label = f"{chosen.fmt}:{chosen.name}" + ("" if not ops else ":" + "+".join(ops))
    return Case(index, label, http_method, path, headers, body, raw, ops)


# -- JSON value mutations -------------------------------------------------------------------------


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place (key path) in a JSON value."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*path, k))
            out += _slots(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*path, i))
            out += _slots(v, (*path, i))
    return out


def _parent(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        value = value[step]
    return value


def _set_somewhere(
    rng: random.Random, value: Any, make: Callable[[random.Random, Any, Any], Any]
) -> Any:
    slots = _slots(value)
    if not isinstance(value, dict) or not slots:
        return value
    where = rng.choice(slots)
    parent = _parent(value, where)
    parent[where[-1]] = make(rng, where[-1], parent[where[-1]])
    return value


def op_drop(rng: random.Random, value: Any) -> Any:
    slots = [s for s in _slots(value) if isinstance(_parent(value, s), dict)]
    if slots:
        where = rng.choice(slots)
        del _parent(value, where)[where[-1]]
    return value


def op_null(rng: random.Random, value: Any) -> Any:
    return _set_somewhere(rng, value, lambda r, k, v: None)


def op_wrong_type(rng: random.Random, value: Any) -> Any:
    return _set_somewhere(rng, value, lambda r, k, v: copy.deepcopy(r.choice(ALL_TYPES)))


def op_huge(rng: random.Random, value: Any) -> Any:
    return _set_somewhere(rng, value, lambda r, k, v: r.choice(HUGE))


def op_string(rng: random.Random, value: Any) -> Any:
    return _set_somewhere(rng, value, lambda r, k, v: r.choice(STRINGS))


def op_field(rng: random.Random, value: Any) -> Any:
    """A tricky value for a named field (sent even where the seed lacks the field)."""
    if isinstance(value, dict):
        name = rng.choice(list(FIELD_VALUES))
        value[name] = copy.deepcopy(rng.choice(FIELD_VALUES[name]))
    return value


def op_date(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict):
        key = rng.choice(("date", "date", "date_from", "date_to"))
        value[key] = rng.choice(DATES)
    return value


def op_duplicate_key(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict) and value:
        pairs = Pairs(value.items())
        key, _ = rng.choice(pairs)
        pairs.insert(rng.randrange(len(pairs) + 1), (key, copy.deepcopy(rng.choice(ALL_TYPES))))
        return pairs
    return value


def op_unknown_key(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict):
        key = rng.choice(("__proto__", "constructor", "", " ", "goal ", "é", "a" * 300, "$where"))
        value[key] = copy.deepcopy(rng.choice(ALL_TYPES))
    return value


def nested(rng: random.Random, depth: int) -> Any:
    if rng.random() < 0.5:
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


def op_deep(rng: random.Random, value: Any) -> Any:
    depth = rng.choice((33, 100, 500, 1000, 1000, 5000, 20_000))
    if isinstance(value, dict) and rng.random() < 0.5:
        key = rng.choice(("pixel_data", "data", "goals", "categories", "field_value", "x"))
        value[key] = nested(rng, depth)
        return value
    if rng.random() < 0.2:
        return nested(rng, depth)
    return _set_somewhere(rng, value, lambda r, k, v: nested(r, depth))


def op_many(rng: random.Random, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    which = rng.choice(("goals", "categories", "data", "pixel_data", "keys"))
    if which == "goals":
        value["goals"] = [{"goal": f"g{i}", "value": i} for i in range(rng.choice((1000, 1001)))]
    elif which == "categories":
        value["categories"] = [f"c{i}" for i in range(rng.choice((100, 101, 1000)))]
    elif which == "data":
        count = rng.choice((2, 2, 2, 10_001))
        value["data"] = [{"email": f"m{i}@example.com"} for i in range(count)]
    elif which == "pixel_data":
        value["pixel_data"] = {f"k{i}": "v" * rng.choice((1, 10)) for i in range(200)}
    else:
        for i in range(2000):
            value[f"unknown_{i}"] = i
    return value


def op_whole(rng: random.Random, value: Any) -> Any:
    """The body is not an object at all."""
    return rng.choice([[], [value], "text", 1, None, True, Raw(""), Raw("{"), Raw("{}" * 3)])


JSON_OPS: list[tuple[str, Mutation]] = [
    ("drop", op_drop), ("null", op_null), ("wrong-type", op_wrong_type), ("huge", op_huge),
    ("string", op_string), ("field", op_field), ("field", op_field), ("date", op_date),
    ("duplicate-key", op_duplicate_key), ("unknown-key", op_unknown_key), ("deep", op_deep),
    ("many", op_many), ("whole", op_whole),
]  # fmt: skip


# -- XML mutations --------------------------------------------------------------------------------


def _nodes(node: Node) -> list[Node]:
    return [node, *(n for c in node.children for n in _nodes(c))]


def _xml_value(rng: random.Random) -> str:
    pick = rng.choice(STRINGS + [str(h) for h in HUGE] + [str(d) for d in DATES] + ["true", "1"])
    return str(pick)


def xop_text(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    leaves = [n for n in _nodes(doc["root"]) if not n.children and n is not doc["root"]]
    if leaves:
        rng.choice(leaves).text = _xml_value(rng)
    return doc


def xop_field(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    name = rng.choice(list(FIELD_VALUES))
    raw = rng.choice(FIELD_VALUES[name])
    doc["root"].children.append(Node(name, str(raw) if not isinstance(raw, list | dict) else ""))
    return doc


def xop_drop(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    parents = [n for n in _nodes(doc["root"]) if n.children]
    if parents:
        parent = rng.choice(parents)
        parent.children.pop(rng.randrange(len(parent.children)))
    return doc


def xop_duplicate(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    parents = [n for n in _nodes(doc["root"]) if n.children]
    if parents:
        parent = rng.choice(parents)
        twin = copy.deepcopy(rng.choice(parent.children))
        parent.children.insert(rng.randrange(len(parent.children) + 1), twin)
    return doc


def xop_attribute(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    target = rng.choice(_nodes(doc["root"]))
    name, val = rng.choice(
        [("array", "true"), ("array", "false"), ("array", "TRUE"), ("type", "int"),
         ("xmlns", "urn:x"), ("xmlns:a", "urn:a"), ("a:array", "true"), ("nil", "true"),
         ("x" * 300, "y"), ("id", "1" * 5000)]
    )  # fmt: skip
    target.attrs[name] = val
    return doc


def xop_namespace(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    root = doc["root"]
    kind = rng.random()
    if kind < 0.4:
        root.attrs["xmlns"] = "urn:goalline:test"
    elif kind < 0.8:
        root.attrs["xmlns:a"] = "urn:a"
        for node in rng.sample(_nodes(root)[1:], k=min(3, len(_nodes(root)) - 1)):
            node.tag = "a:" + node.tag
    else:  # an unbound prefix: not well-formed
        target = rng.choice(_nodes(root))
        target.tag = "b:" + target.tag
    return doc


def xop_root(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    doc["root"].tag = rng.choice(["root", "XML", "json", "a:xml", "xml2", "request"])
    if doc["root"].tag == "a:xml":
        doc["root"].attrs["xmlns:a"] = "urn:a"
    return doc


def xop_mixed(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    parents = [n for n in _nodes(doc["root"]) if n.children]
    if parents:
        parent = rng.choice(parents)
        parent.children.insert(0, Node("", Raw("stray text")))
    return doc


def xop_deep(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    depth = rng.choice((31, 32, 33, 100, 1000, 1000, 20_000))
    tag = rng.choice(["pixel_data", "goals", "a", "data"])
    # As text: a tree this deep would overflow the recursion of our own writer.
    doc["root"].children.append(Node(tag, Raw(f"<{tag}>" * depth + "1" + f"</{tag}>" * depth)))
    return doc


def xop_many(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    tag = rng.choice(["goals", "categories", "x", "goal", "data"])
    count = rng.choice((100, 100, 1001, 1001, 10_001))
    kids = [Node(tag, f"v{i}") if tag != "goals" else Node(tag, None, [Node("goal", f"g{i}")])
            for i in range(count)]  # fmt: skip
    doc["root"].children.extend(kids)
    return doc


def xop_special(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    """Entity and character references, CDATA, comments, processing instructions."""
    leaves = [n for n in _nodes(doc["root"]) if not n.children and n is not doc["root"]]
    if leaves:
        rng.choice(leaves).text = Raw(
            rng.choice(
                ["&amp;&lt;&gt;&quot;&apos;", "&unknown;", "&#0;", "&#x1;", "&#xD800;",
                 "&#1114112;", "&#x10FFFF;", "<![CDATA[<goal>x</goal>]]>", "<!-- c -->cart",
                 "<?pi x?>cart", "&#13;", "a]]>b", "<", "&", "\x00", "\x0b"]
            )
        )  # fmt: skip
    return doc


XML_OPS: list[tuple[str, Callable[[random.Random, dict[str, Any]], dict[str, Any]]]] = [
    ("text", xop_text), ("text", xop_text), ("field", xop_field), ("drop", xop_drop),
    ("duplicate", xop_duplicate), ("attribute", xop_attribute), ("namespace", xop_namespace),
    ("root", xop_root), ("mixed", xop_mixed), ("deep", xop_deep), ("many", xop_many),
    ("special", xop_special),
]  # fmt: skip

DOCTYPES = [
    '<!DOCTYPE xml [<!ENTITY x "y">]>',
    '<!DOCTYPE xml SYSTEM "file:///etc/passwd">',
    '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    '<!DOCTYPE xml [<!ELEMENT xml ANY><!ATTLIST xml array CDATA "true">]>',
    "<!DOCTYPE xml>",
]


def xml_document(rng: random.Random, doc: dict[str, Any], ops: list[str]) -> bytes:
    root = doc["root"]
    text = write_xml(root)
    prolog = ""
    encoding = "utf-8"
    roll = rng.random()
    if roll < 0.2:
        prolog = '<?xml version="1.0" encoding="UTF-8"?>\n'
    elif roll < 0.25:
        prolog, encoding = '<?xml version="1.0" encoding="ISO-8859-1"?>', "latin-1"
        ops.append("xml-latin-1")
    elif roll < 0.28:
        prolog, encoding = '<?xml version="1.0" encoding="UTF-16"?>', "utf-16"
        ops.append("xml-utf-16")
    elif roll < 0.3:
        prolog = '<?xml version="1.1"?>'
        ops.append("xml-1.1")
    if rng.random() < 0.06:
        prolog += rng.choice(DOCTYPES)
        if "ENTITY" in prolog and rng.random() < 0.7:
            leaves = [n for n in _nodes(root) if not n.children and n is not root]
            if leaves:
                rng.choice(leaves).text = Raw(rng.choice(["&x;", "&e;", "&d;"]))
                text = write_xml(root)
        ops.append("xml-doctype")
    return (prolog + text).encode(encoding, "replace")


# -- byte mutations -------------------------------------------------------------------------------

INVALID_UTF8 = [
    b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
    b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80",
]  # fmt: skip
CONTROL = [b"\x00", b"\x1b", b"\x7f", b"\x0c", b"\x08", b"\r", b"\x85"]


def _inside_string(rng: random.Random, body: bytes) -> int:
    """A position just after an opening quote or tag, where a decoder reads text."""
    marks = [i + 1 for i, b in enumerate(body) if b in (0x22, 0x3E)]
    return rng.choice(marks) if marks and rng.random() < 0.8 else rng.randrange(len(body) + 1)


def bop_flip(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def bop_truncate(rng: random.Random, body: bytes) -> bytes:
    return body[: rng.randrange(len(body) + 1)]


def bop_invalid_utf8(rng: random.Random, body: bytes) -> bytes:
    at = _inside_string(rng, body)
    return body[:at] + rng.choice(INVALID_UTF8) + body[at:]


def bop_control(rng: random.Random, body: bytes) -> bytes:
    at = _inside_string(rng, body)
    return body[:at] + rng.choice(CONTROL) + body[at:]


def bop_bom(rng: random.Random, body: bytes) -> bytes:
    kind = rng.random()
    if kind < 0.5:
        return b"\xef\xbb\xbf" + body
    if kind < 0.8:
        return body.decode("utf-8", "replace").encode("utf-16")
    return b"\xff\xfe" + body


def bop_trailing(rng: random.Random, body: bytes) -> bytes:
    return body + rng.choice([b"\n", b"\r\n", b"garbage", b"{}", b"\x00", b" " * 1000, b"<x/>"])


def bop_empty(rng: random.Random, body: bytes) -> bytes:
    return rng.choice([b"", b" ", b"\n", b"\x00", b"null", b"{}", b"<xml/>", b"<xml></xml>"])


BYTE_OPS: list[tuple[str, Callable[[random.Random, bytes], bytes]]] = [
    ("flip", bop_flip), ("truncate", bop_truncate), ("invalid-utf8", bop_invalid_utf8),
    ("invalid-utf8", bop_invalid_utf8), ("control", bop_control), ("bom", bop_bom),
    ("trailing", bop_trailing), ("empty", bop_empty),
]  # fmt: skip


# -- header, path and method mutations ------------------------------------------------------------

Headers = list[tuple[bytes, bytes]]


def _without(headers: Headers, name: bytes) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != name.lower()]


def hop_content_type(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    value = rng.choice(CONTENT_TYPES)
    h = _without(h, b"content-type")
    if value is not None:
        h.append((b"Content-Type", value.encode()))
    if rng.random() < 0.1:
        h.append((b"Content-Type", b"application/xml"))  # twice
    return m, p, h


def hop_accept(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    value = rng.choice(ACCEPTS)
    if value is not None:
        h = [*h, (b"Accept", value.encode())]
    return m, p, h


def hop_auth(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    value = rng.choice(
        ["Bearer " + DEMO_TOKEN, "Bearer ", "Bearer nope", "Basic YTpi", "bearer " + DEMO_TOKEN,
         "Bearer " + "x" * 5000, "Bearer\t" + DEMO_TOKEN, "Bearer é".encode().decode("latin-1")]
    )  # fmt: skip
    return m, p, [*h, (b"Authorization", value.encode("latin-1"))]


def hop_request_id(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    name = rng.choice([b"Request-ID", b"X-Request-ID"])
    value = rng.choice(["", "fixed-id", f"{rng.getrandbits(128):032x}", "r" * 8000, "é\xff"])
    return m, p, [*h, (name, value.encode("latin-1", "replace"))]


def hop_query(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    query = rng.choice(
        ["format=xml", "format=json", "format=yaml", "format=", f"token={DEMO_TOKEN}",
         "token=", "a=%ff%fe", "x" * 5000, "format=xml&format=json", "token=%00"]
    )  # fmt: skip
    return m, p + "?" + query, h


def hop_path(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    name = p.removeprefix("/api/v1.1/")
    p = rng.choice(
        [f"/api/v1.1/{name}/", f"/api/v1.1//{name}", f"//api//v1.1//{name}//",
         "/api/v1.1/goals/unknown", f"/api/v1.1/{name.upper()}", "/api/v1.1/", "/api/v1.1",
         f"/api/v1.1/{name}/%2e%2e", "/api/v1.1/" + "a/" * 500, f"/api/v1.1/{name}%00",
         f"/api/v1.1/{name}?", f"/api/v1.0/{name}"]
    )  # fmt: skip
    return m, p, h


def hop_method(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    return rng.choice(HTTP_METHODS), p, h


def hop_extra(rng: random.Random, m: str, p: str, h: Headers) -> tuple[str, str, Headers]:
    name, value = rng.choice(
        [(b"Expect", b"100-continue"), (b"Content-Encoding", b"gzip"), (b"X-Forwarded-For", b"::1"),
         (b"User-Agent", b"x" * 8000), (b"Accept-Language", b"\xff\xfe"), (b"Cookie", b"a=b")]
    )  # fmt: skip
    return m, p, [*h, (name, value)]


HeaderOp = Callable[[random.Random, str, str, Headers], tuple[str, str, Headers]]
HEADER_OPS: list[tuple[str, HeaderOp]] = [
    ("content-type", hop_content_type), ("content-type", hop_content_type),
    ("accept", hop_accept), ("accept", hop_accept), ("auth", hop_auth),
    ("request-id", hop_request_id), ("query", hop_query), ("path", hop_path),
    ("method", hop_method), ("extra", hop_extra),
]  # fmt: skip


def raw_headers(rng: random.Random, headers: Headers, body: bytes) -> tuple[Headers, bytes]:
    """Header bytes outside what HTTP allows, and framing the parser must refuse or read."""
    kind = rng.randrange(9)
    if kind == 8:  # larger than --max-body-bytes (10 MiB), by the header alone
        return [*headers, (b"Content-Length", b"%d" % (64 * 1024 * 1024))], body
    if kind == 0:
        bad = rng.choice([b"\x01", b"\x00", b"\x7f", b"\x1b", b"\r"])
        return [*headers, (b"X-Bad", b"a" + bad + b"b")], body
    if kind == 1:
        return [*headers, (rng.choice([b"Bad Header", b"X-\x00", b"(x)", b"\xff"]), b"1")], body
    if kind == 2:
        return [*headers, (b"Content-Type", b"application/json\x00")], body
    if kind == 3:
        return [*headers, (b"X-Folded", b"a\r\n b")], body  # obsolete line folding
    if kind == 4:
        shorter = str(rng.randrange(len(body) + 1)).encode()
        return [*headers, (b"Content-Length", shorter)], body
    if kind == 5:
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        return [*headers, (b"Transfer-Encoding", b"chunked")], chunked
    if kind == 6:
        return [*headers, (b"Transfer-Encoding", b"chunked")], b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    return [*headers, (b"Content-Length", b"-1")], body
