"""Altcraft-style XML request and reply bodies.

The Altcraft Platform API v1.1 accepts the same payloads as JSON or as XML wrapped in an ``<xml>``
root. XML carries no types, so :func:`decode` returns strings (a later layer converts them) and
:func:`encode` turns the server's own reply mappings into text.

Conventions
-----------
- each child element is a key; an element with children is a mapping;
- an element repeated under one parent is a list, as is a name in ``arrays`` or an element marked
  ``array="true"``;
- an empty element (``<a/>``, ``<a></a>`` or whitespace only) means "absent" and decodes to
  ``None``; inside a list-named element an empty occurrence contributes nothing.

Parsing is hardened with :mod:`defusedxml`: DTDs and entity declarations are refused outright.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import msgspec
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from goalline.errors import InvalidRequest

__all__ = ["MAX_DEPTH", "decode", "encode"]

#: Deepest element nesting accepted, counting ``<xml>`` itself as level 1: the default of the
#: ``max_xml_depth`` setting (the transport passes the setting's value to :func:`decode`).
MAX_DEPTH = 32

_ROOT = "xml"
_ROOT_PATH = "body"
_XML_WS = " \t\r\n"
_BOM = "\ufeff"
_PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'

# XML 1.0 (5th edition) Name, without ":" so that no namespace prefix can sneak in.
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME_CHAR = _NAME_START + r"\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"
_NAME = re.compile(f"[{_NAME_START}][{_NAME_CHAR}]*")
# Anything outside the XML 1.0 Char production (control characters, lone surrogates, U+FFFE/F).
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def decode(
    body: bytes, arrays: frozenset[str] = frozenset(), *, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """Decode an Altcraft XML request body into a mapping of strings.

    Parameters
    ----------
    body : bytes
        The raw request body, UTF-8, with an optional BOM, prolog and surrounding whitespace.
    arrays : frozenset of str
        Element local names that always decode to a list, at any depth.
    max_depth : int
        Deepest element nesting accepted, ``<xml>`` being level 1.

    Returns
    -------
    dict of str to Any
        The children of ``<xml>``; values are ``str``, ``None``, lists or nested dicts.

    Raises
    ------
    InvalidRequest
        The body is not UTF-8, not well-formed, uses a DTD or entities, has a root other than
        ``<xml>``, mixes text with child elements, or nests deeper than ``max_depth``.
    """
    root = _parse(body)
    name = _local(root.tag)
    if name != _ROOT:
        raise InvalidRequest(f"{_ROOT_PATH}: XML root element must be <{_ROOT}>, got <{name}>")
    children = list(root)
    if not children:
        if not _blank(root.text):
            raise InvalidRequest(
                f"{_ROOT_PATH}: XML root element must contain child elements, not text"
            )
        return {}
    _check_not_mixed(root, children, _ROOT_PATH)
    try:
        return _decode_children(children, "", 1, _Walk(arrays, max_depth))
    except RecursionError:  # a max_depth set beyond what Python's stack allows
        raise InvalidRequest(f"{_ROOT_PATH}: XML nested too deep to read") from None


def encode(obj: Mapping[str, Any]) -> bytes:
    """Encode a reply mapping as an Altcraft XML document.

    Parameters
    ----------
    obj : Mapping of str to Any
        Values may be mappings, lists or tuples (one element per item), ``None`` (omitted),
        ``bool``, ``int``, ``float`` or ``str``.

    Returns
    -------
    bytes
        UTF-8 ``<?xml ...?>`` prolog, a newline, then ``<xml>...</xml>`` on one line.

    Raises
    ------
    ValueError
        A key is not a valid XML element name, a float is not finite, or a list is nested
        directly in a list.
    TypeError
        A value has an unsupported type.
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"cannot encode {type(obj).__name__} as an XML document, need a mapping")
    out = [_PROLOG, f"<{_ROOT}>"]
    _encode_mapping(obj, out)
    out.append(f"</{_ROOT}>")
    return "".join(out).encode("utf-8")


# --- decoding -------------------------------------------------------------------------------


def _parse(body: bytes) -> Element:
    """Parse ``body`` with every DTD and entity feature refused."""
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{_ROOT_PATH}: not well-formed XML (not valid UTF-8)") from exc
    text = text.strip(_XML_WS)
    if text.startswith(_BOM):
        text = text[1:].strip(_XML_WS)
    try:
        # A str (not bytes) makes expat parse as UTF-8 whatever the prolog declares.
        root: Element = fromstring(
            text, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    except DefusedXmlException as exc:
        raise InvalidRequest(f"{_ROOT_PATH}: XML entities and DTDs are not allowed") from exc
    except ParseError as exc:
        raise InvalidRequest(f"{_ROOT_PATH}: not well-formed XML ({exc})") from exc


class _Walk(NamedTuple):
    """What every level of the decoding walk needs."""

    arrays: frozenset[str]
    max_depth: int


def _decode_children(children: list[Element], path: str, depth: int, walk: _Walk) -> dict[str, Any]:
    """Group ``children`` by local name, in order of first appearance, and decode each group."""
    groups: dict[str, list[Element]] = {}
    for child in children:
        groups.setdefault(_local(child.tag), []).append(child)
    out: dict[str, Any] = {}
    for name, elems in groups.items():
        child_path = f"{path}.{name}" if path else name
        forced = name in walk.arrays or any(_marked_array(e) for e in elems)
        if not forced and len(elems) == 1:
            out[name] = _decode_element(elems[0], child_path, depth + 1, walk)
            continue
        items: list[Any] = []
        for elem in elems:
            value = _decode_element(elem, f"{child_path}[{len(items)}]", depth + 1, walk)
            if value is None and forced:
                continue
            items.append(value)
        out[name] = items
    return out


def _decode_element(elem: Element, path: str, depth: int, walk: _Walk) -> Any:
    """Decode one element: a dict if it has children, else its text, or ``None`` if empty."""
    if depth > walk.max_depth:
        raise InvalidRequest(f"{_ROOT_PATH}: XML nested deeper than {walk.max_depth} levels")
    children = list(elem)
    if not children:
        return None if _blank(elem.text) else elem.text
    _check_not_mixed(elem, children, path)
    return _decode_children(children, path, depth, walk)


def _check_not_mixed(elem: Element, children: list[Element], path: str) -> None:
    """Refuse text (before or between child elements) next to child elements."""
    if not _blank(elem.text) or not all(_blank(child.tail) for child in children):
        raise InvalidRequest(f"{path}: element has both text and child elements")


def _marked_array(elem: Element) -> bool:
    """Whether ``elem`` carries ``array="true"`` (any namespace on the attribute)."""
    return any(_local(key) == "array" and value == "true" for key, value in elem.attrib.items())


def _local(tag: str) -> str:
    """``{namespace}name`` -> ``name``."""
    return tag.rpartition("}")[2]


def _blank(text: str | None) -> bool:
    """Whether ``text`` is absent or nothing but XML whitespace."""
    return text is None or not text.strip(_XML_WS)


# --- encoding -------------------------------------------------------------------------------


class _Unspellable(ValueError):
    """An object XML elements cannot spell: a key that is no element name, a list in a list."""


def _encode_mapping(obj: Mapping[str, Any], out: list[str]) -> None:
    for key, value in obj.items():
        if not isinstance(key, str) or _NAME.fullmatch(key) is None:
            raise _Unspellable(f"cannot encode key {key!r}: not a valid XML element name")
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, list | tuple):
                    raise _Unspellable(f"cannot encode key {key!r}: a list directly inside a list")
                _encode_element(key, item, out)
        else:
            _encode_element(key, value, out)


def _encode_element(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        inner: list[str] = []
        try:
            _encode_mapping(value, inner)
        except _Unspellable:
            # An object that XML elements cannot spell (a key that is no element name, a list
            # inside a list: pixel_data sent as JSON) becomes one JSON text, so the reply
            # stays well-formed and says everything.
            text = msgspec.json.encode(value).decode()
            out.append(f"<{name}>{_encode_scalar(name, text)}</{name}>")
            return
        out.append(f"<{name}>")
        out.extend(inner)
        out.append(f"</{name}>")
        return
    out.append(f"<{name}>{_encode_scalar(name, value)}</{name}>")


def _encode_scalar(name: str, value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot encode key {name!r}: {value!r} is not a finite number")
        return repr(float(value))
    if isinstance(value, str):
        # Characters XML 1.0 cannot carry become U+FFFD, so a reply is always well-formed;
        # a CR is kept as a character reference because parsers fold a literal one into LF.
        return escape(_NOT_XML_CHAR.sub("\ufffd", value), {"\r": "&#13;"})
    raise TypeError(f"cannot encode key {name!r}: unsupported type {type(value).__name__}")
