"""The OpenAPI 3.1 document (``GET /openapi.json``), as strict as the server.

The request schemas start from the request structs themselves (msgspec), so a field or a type
cannot drift from what the server decodes. The structs hold types only; the rules the pipeline
checks after decoding are added here, each read from the constant the check itself uses
(``MATCHING_MODES``, the dictionaries, ``MAX_GOALS``, ...): required fields, closed sets as
enums, string lengths, integer ranges, which fields need which others. Every reply is
described too: the success envelope with the method's data, and the error envelope for every
status a call can get, with ``Retry-After`` where the server sends it, in JSON and in XML.

A document can be stricter than the server in small ways (enums are case-sensitive, where the
server forgives case and surrounding spaces); it never accepts what the server refuses in a way
JSON Schema can say. Rules it cannot say (the 1 KB limit of ``pixel_data``, a ``date`` no more
than ``max_future_seconds`` ahead, email and phone syntax beyond their format) are in the
fields' descriptions and in docs/api.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

import msgspec
import pycountry

from goalline import __version__
from goalline.enrichment import dictionary
from goalline.errors import ERROR_CODES, SUCCESS_TEXT
from goalline.model import FIELD_TYPES, POLICIES
from goalline.pipeline import bulk, databases, history, validate
from goalline.pipeline.dispatch import METHODS
from goalline.pipeline.match import MATCHING_MODES
from goalline.pipeline.profiles import MAX_PHONES

Schema = dict[str, Any]

#: Integers are stored as 64-bit signed integers (SQLite INTEGER, PostgreSQL bigint).
INT64_MAX = 2**63 - 1
REF = "#/components/schemas/{name}"
#: Statuses whose reply carries ``Retry-After`` (seconds): the client must wait, then retry.
RETRY_AFTER = frozenset({429, 503})
#: The identifier each matching mode needs (pipeline/match.py ``match_key``).
NEEDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "email_profile": ("email",),
    "phone": ("phone",),
    "profile_id": ("profile_id",),
    "custom": ("field_name", "field_value"),
}
assert set(NEEDS) == set(MATCHING_MODES), "every matching mode says what it needs"
#: What a required identifier must be: not null (absent) and, as text, not empty (an empty
#: XML element is absent too).
IDENTIFIER_TYPES: dict[str, Schema] = {
    "email": {"type": "string", "minLength": 1},
    "phone": {"type": "string", "minLength": 1},
    "profile_id": {"type": "string", "minLength": 1},
    "field_name": {"type": "string", "minLength": 1},
    "field_value": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}]},
}
#: Where profiles/import finds an identifier in the profile data: (key, schema); "" for the
#: custom field, whose name is the request's field_name.
FROM_DATA: dict[str, tuple[str, Schema]] = {
    "email": ("email", {"type": "string", "minLength": 1}),
    "phone": (
        "phones",
        {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string"}},
            ]
        },
    ),
    "field_value": ("", {}),
}

# Goal names (validate.goal_name): the ASCII part exactly, plus the Latin and Cyrillic letters
# and currency symbols of the Basic Multilingual Plane's main blocks. The server accepts a few
# more (any letter whose Unicode name says LATIN or CYRILLIC, any currency symbol).
_GOAL_SIGNS = r"!#$%&*+\-.,:;'=?@^_()\[\]/\\|"
_GOAL_LETTERS = (
    "A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0400-\u0481\u048a-\u052f"
    "\u00a2-\u00a5\u20a0-\u20c0"
)
GOAL_PATTERN = f"^[ \\t{_GOAL_LETTERS}{_GOAL_SIGNS}]*[{_GOAL_LETTERS}{_GOAL_SIGNS}][ \\t{_GOAL_LETTERS}{_GOAL_SIGNS}]*$"  # noqa: E501
MAC_PATTERN = (
    r"^\s*(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}\s*$"
    r"|^\s*(?:[0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}\s*$"
    r"|^\s*[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\s*$"
)
#: RFC 3339 with an offset (``Z``, ``+07:00`` or ``+0700``), seconds optional fractions.
DATE_PATTERN = (
    r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})\s*$"
)
#: Unix epoch seconds as text.
EPOCH_PATTERN = r"^\s*[0-9]{1,11}\s*$"
NO_NUL = r"^[^\x00]*$"
DAY_PATTERN = r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$"


# -- schema pieces ------------------------------------------------------------------------------


def integer(minimum: int = -(2**63), maximum: int = INT64_MAX, **extra: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, **extra}


def text(limit: int = validate.MAX_STRING, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": limit, **extra}


def enum(values: Iterable[str], **extra: Any) -> Schema:
    return {"type": "string", "enum": list(dict.fromkeys(values)), **extra}


def optional(schema: Schema) -> Schema:
    """``null`` is accepted as "absent" by every method (SPEC §1)."""
    return {"anyOf": [schema, {"type": "null"}]}


def ident(what: str) -> Schema:
    return integer(1, description=f"The {what} id: a positive integer")


def _countries() -> list[str]:
    codes = [c.alpha_2 for c in pycountry.countries] + [c.alpha_3 for c in pycountry.countries]
    return sorted(codes) + sorted(c.name for c in pycountry.countries)


SCALAR: Schema = {"type": ["string", "number", "boolean", "null"]}

# -- what the pipeline checks after decoding, per request struct --------------------------------

#: Fields of every method (``Base``).
BASE: dict[str, Schema] = {
    "token": optional(text(description="API token; or the header Authorization: Bearer <token>")),
    "format": optional(enum(("json", "xml"), description="Format of the reply")),
}
#: The identifier fields of matching (``MatchFields``).
MATCH: dict[str, Schema] = {
    "db_id": optional(ident("database")),
    "matching": optional(
        enum(MATCHING_MODES, description="How the profile is found; default email")
    ),
    "email": optional(text(format="email", description="Compared case-insensitively")),
    "phone": optional(text(description="A possible phone number; compared in E.164")),
    "profile_id": optional(text()),
    "field_name": optional(text(description="A custom field of the database")),
    "field_value": optional(
        {"anyOf": [text(), {"type": "number"}], "description": "Fits the field's type"}
    ),
}
GOAL_NAME = text(minLength=1, pattern=GOAL_PATTERN, description="A goal name")
REGISTER: dict[str, Schema] = {
    "db_id": ident("database"),
    "pixel_id": ident("pixel"),
    "goal": optional(GOAL_NAME),
    "value": optional({"type": "number", "description": "Needs goal; may be negative"}),
    "goals": optional(
        {
            "type": "array",
            "maxItems": validate.MAX_GOALS,
            "items": {
                "type": "object",
                "required": ["goal"],
                "properties": {
                    "goal": GOAL_NAME,
                    "value": optional({"type": "number"}),
                },
                "xml": {"name": "goals"},
            },
        }
    ),
    "date": optional(
        {
            "anyOf": [
                text(pattern=DATE_PATTERN),
                text(pattern=EPOCH_PATTERN),
                integer(0, 99_999_999_999),
            ],
            "description": "When it happened: " + validate.DATE_SHAPES + "; default now; "
            "at most the server's max_future_seconds ahead",
        }
    ),
    "pixel_data": optional(
        {
            "type": "object",
            "propertyNames": {"maxLength": validate.MAX_STRING},
            "additionalProperties": {
                "anyOf": [
                    text(validate.MAX_PIXEL_DATA_BYTES),
                    {"type": ["number", "boolean", "null"]},
                    {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                text(validate.MAX_PIXEL_DATA_BYTES),
                                {"type": ["number", "boolean", "null"]},
                            ]
                        },
                    },
                ]
            },
            "description": f"Scalars or arrays of scalars, at most "
            f"{validate.MAX_PIXEL_DATA_BYTES} bytes as compact UTF-8 JSON",
        }
    ),
    "client_ip": optional(
        {"anyOf": [text(format="ipv4"), text(format="ipv6")], "description": "IPv4 or IPv6"}
    ),
    "client_ip_v4": optional(text(format="ipv4")),
    "client_ip_v6": optional(text(format="ipv6")),
    "net_gateway_ipv4": optional(text(format="ipv4")),
    "net_gateway_ipv6": optional(text(format="ipv6")),
    "net_mac_addr": optional(text(pattern=MAC_PATTERN)),
    "lat": optional({"type": "number", "minimum": -90, "maximum": 90}),
    "lon": optional({"type": "number", "minimum": -180, "maximum": 180}),
    "loyalty_id": optional(integer(1)),
    "count_items": optional(integer(0, validate.MAX_COUNT_ITEMS)),
    "categories": optional({"type": "array", "maxItems": validate.MAX_CATEGORIES, "items": text()}),
}
# The closed sets of the dictionary method (validate.in_dictionary) and of countries.
DICTIONARY_FIELDS = {"time_zone": "tz", "browser": "browsers", "os": "oses", "device": "devices"}

PAGE_LIMIT = "Items per page, 1 to {}"


def _tightening() -> dict[str, tuple[dict[str, Schema], Schema]]:
    """Request struct name → (property overrides, extra keywords of the object)."""
    register = dict(REGISTER)
    for field, name in DICTIONARY_FIELDS.items():
        register[field] = optional(
            enum(dictionary.values(name), description=f"A value of the {name} dictionary")
        )
    register["country"] = optional(enum(_countries(), description="ISO 3166 code or name"))
    matched = _matching_rules()
    phones = {"type": "array", "maxItems": MAX_PHONES, "items": text()}
    profile_data = {
        "type": "object",
        "properties": {
            "email": optional(text(format="email")),
            "phones": optional({"anyOf": [text(), phones]}),
        },
        "additionalProperties": {
            "anyOf": [SCALAR, {"type": "array", "items": SCALAR}],
        },
        "description": "Profile fields: email, phones, system fields (_fname, ...) and the "
        "database's custom fields",
    }
    batch_item = {
        "type": "object",
        "properties": {
            **{name: MATCH[name] for name in bulk.IDENTIFIERS},
            "data": optional(profile_data),
        },
        "additionalProperties": profile_data["additionalProperties"],
        "description": "A profile: identifier fields and a data object, or the data itself",
        "xml": {"name": "data"},
    }
    return {
        "RegisterRequest": (
            register,
            {
                "required": ["db_id", "pixel_id"],
                "dependentRequired": {
                    "value": ["goal"],
                    "lat": ["lon"],
                    "lon": ["lat"],
                    "sku_eid": ["product_eid"],
                },
                **matched,
            },
        ),
        "ProfileImportRequest": (
            {"db_id": ident("database"), "data": optional(profile_data)},
            {"required": ["db_id"], **_matching_rules(data=True)},
        ),
        "ProfileGetRequest": ({"db_id": ident("database")}, {"required": ["db_id"], **matched}),
        "DictionaryRequest": ({"name": enum(dictionary.NAMES)}, {"required": ["name"]}),
        "ProfileImportBatchRequest": (
            {
                "db_id": ident("database"),
                "matching": optional(enum(MATCHING_MODES)),
                "field_name": optional(text()),
                "data": {
                    "type": "array",
                    "maxItems": bulk.MAX_ITEMS,
                    "items": batch_item,
                },
            },
            {"required": ["db_id", "data"]},
        ),
        "HistoryGetRequest": (
            {
                "list_id": optional(ident("database")),
                "date_from": optional(text(pattern=DAY_PATTERN, description="YYYY-MM-DD, UTC")),
                "date_to": optional(text(pattern=DAY_PATTERN, description="YYYY-MM-DD, UTC")),
                "limit": optional(
                    integer(1, history.MAX_LIMIT, description=PAGE_LIMIT.format(history.MAX_LIMIT))
                ),
                "from_id": optional(integer(1, description="event_id of the previous page's last")),
            },
            {
                "allOf": [
                    {
                        "anyOf": [
                            {"required": ["db_id"], "properties": {"db_id": {"type": "integer"}}},
                            {
                                "required": ["list_id"],
                                "properties": {"list_id": {"type": "integer"}},
                            },
                        ]
                    },
                    _matching_rules(history=True),
                ]
            },
        ),
        "DatabasesListRequest": (
            {
                "from_id": optional(integer(0)),
                "limit": optional(
                    integer(
                        1, databases.MAX_LIMIT, description=PAGE_LIMIT.format(databases.MAX_LIMIT)
                    )
                ),
            },
            {},
        ),
        "DatabaseFieldsRequest": ({"db_id": ident("database")}, {"required": ["db_id"]}),
    }


def _matching_rules(*, history: bool = False, data: bool = False) -> Schema:
    """``matching`` (default email) decides which identifier is required (match.match_key):
    one alternative per set of identifiers; an absent or null ``matching`` means email.

    With ``data`` (profiles/import), an identifier may come from the profile data instead
    (``data.email``, the first of ``data.phones``, the custom field). subscribers/history_get
    alone reads a ``profile_id`` with no ``matching`` and no ``email`` as matching by id."""
    alternatives: list[Schema] = []
    by_needs: dict[tuple[str, ...], list[Any]] = {}
    for mode, needs in NEEDS.items():
        by_needs.setdefault(needs, []).append(mode)
    for needs, modes in by_needs.items():
        if "email" in modes:
            modes = [*modes, None]
        chosen: Schema = {"properties": {"matching": {"enum": modes}}}
        if None not in modes:
            chosen["required"] = ["matching"]
        alternatives.append({"allOf": [chosen, *(_present(name, data) for name in needs)]})
    if history:
        alternatives.append(
            {
                "required": ["profile_id"],
                "properties": {"matching": {"type": "null"}, "profile_id": {"type": "string"}},
            }
        )
    return {"anyOf": alternatives}


def _present(name: str, data: bool) -> Schema:
    """Identifier ``name`` is given (in the body, or with ``data`` in the profile data)."""
    given: Schema = {"required": [name], "properties": {name: IDENTIFIER_TYPES[name]}}
    if not data or name not in FROM_DATA:
        return given
    key, schema = FROM_DATA[name]
    inside: Schema = {"type": "object", "minProperties": 1}
    if key:
        inside = {"type": "object", "required": [key], "properties": {key: schema}}
    return {"anyOf": [given, {"required": ["data"], "properties": {"data": inside}}]}


# -- replies -------------------------------------------------------------------------------------

ERROR_ENVELOPE: Schema = {
    "type": "object",
    "required": ["error", "error_text"],
    "properties": {
        "error": {"type": "integer", "description": "The error code"},
        "error_text": {
            "type": "string",
            "minLength": 1,
            "description": "The field path and the rule broken",
        },
    },
    "additionalProperties": False,
}

EVENT_IDS = {"type": "array", "items": {"type": "integer"}}
_PROFILE_FIELDS = {"type": "object", "additionalProperties": True}

#: Each method's data beside the success envelope: (properties, required).
REPLIES: dict[str, tuple[dict[str, Schema], list[str]]] = {
    "goals/register": (
        {
            "profile_id": {"type": "string"},
            "event_ids": {**EVENT_IDS, "description": "One per stored goal event, in order"},
            "duplicate_event_ids": EVENT_IDS,
        },
        ["event_ids"],
    ),
    "profiles/import": ({"profile_id": {"type": "string"}}, ["profile_id"]),
    "profiles/get": (
        {"profile_id": {"type": "string"}, "data": _PROFILE_FIELDS},
        ["profile_id", "data"],
    ),
    "dictionary": (
        {
            "name": enum(dictionary.NAMES),
            "data": {"type": "array", "items": {"type": "string"}},
        },
        ["name", "data"],
    ),
    "profiles/import_batch": (
        {
            "result": {
                "type": "array",
                "description": "One per item, in order: its own envelope and profile_id",
                "items": {
                    "type": "object",
                    "required": ["error", "error_text"],
                    "properties": {
                        "error": {"type": "integer", "enum": sorted(ERROR_CODES)},
                        "error_text": {"type": "string"},
                        "profile_id": {"type": "string"},
                    },
                },
            }
        },
        ["result"],
    ),
    "subscribers/history_get": (
        {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["action", "datetime", "event_id", "list_id", "pixel_id"],
                    "properties": {
                        "action": enum(("goal", "pixel")),
                        "datetime": {"type": "string", "format": "date-time"},
                        "event_id": {"type": "integer"},
                        "profile_id": {"type": ["string", "null"]},
                        "list_id": {"type": "integer"},
                        "pixel_id": {"type": "integer"},
                        "goal": {"type": "string"},
                        "is_test": {"type": "boolean"},
                    },
                },
            },
            "next_from_id": {"type": "integer"},
        },
        ["data"],
    ),
    "databases/list": (
        {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "name", "unknown_profile"],
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "unknown_profile": enum(POLICIES),
                    },
                },
            },
            "next_from_id": {"type": "integer"},
        },
        ["data"],
    ),
    "databases/fields_get": (
        {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "type", "category"],
                    "properties": {
                        "name": {"type": "string"},
                        "type": enum((*FIELD_TYPES, "array", *databases.SYSTEM_TYPES.values())),
                        "category": enum(("system", "custom")),
                    },
                },
            }
        },
        ["data"],
    ),
}
assert set(REPLIES) == set(METHODS), "every method documents its reply"

#: HTTP statuses of API replies: the envelope's codes, and 405 (envelope error 400).
STATUSES: dict[int, str] = {(code or 200): meaning for code, meaning in ERROR_CODES.items()} | {
    405: "HTTP method other than POST (envelope error 400, header Allow: POST)"
}


def _success(method: str) -> Schema:
    properties, required = REPLIES[method]
    return {
        "type": "object",
        "required": ["error", "error_text", *required],
        "properties": {
            "error": {"const": 0},
            "error_text": {"const": SUCCESS_TEXT},
            **properties,
        },
        "additionalProperties": True,
    }


def _error(code: int) -> Schema:
    return {"allOf": [{"$ref": REF.format(name="ErrorEnvelope")}], **_error_code(code)}


def _error_code(code: int) -> Schema:
    return {"properties": {"error": {"const": code}}}


def _content(schema: Schema) -> Schema:
    """The same reply in both formats; XML's root element is ``<xml>``."""
    return {
        "application/json": {"schema": schema},
        "application/xml": {"schema": {**schema, "xml": {"name": "xml"}}},
    }


def _responses(method: str, success_ref: str) -> Schema:
    out: Schema = {}
    for status, meaning in STATUSES.items():
        if status == 200:
            schema: Schema = {"$ref": success_ref}
            headers: Schema = {
                "Duplicate-Request": {
                    "description": "true on a repeat of a remembered request",
                    "schema": {"type": "string", "enum": ["true"]},
                },
                "Duplicate-Key": {
                    "description": "The remembered request's key",
                    "schema": {"type": "string"},
                },
            }
        else:
            schema = _error(400 if status == 405 else status)
            headers = {}
        if status in RETRY_AFTER:
            headers["Retry-After"] = {
                "description": "Seconds to wait before retrying",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        if status == 405:
            headers["Allow"] = {"required": True, "schema": {"type": "string", "const": "POST"}}
        reply: Schema = {"description": meaning, "content": _content(schema)}
        if headers:
            reply["headers"] = headers
        out[str(status)] = reply
    return out


# -- the document --------------------------------------------------------------------------------


def request_components() -> dict[str, Schema]:
    """The request structs' schemas with every rule the pipeline adds (see the module doc)."""
    methods = list(METHODS.values())
    (_, components) = msgspec.json.schema_components([m.request for m in methods], ref_template=REF)
    components = copy.deepcopy(components)
    tightening = _tightening()
    for method in methods:
        name = method.request.__name__
        schema = components[name]
        props: dict[str, Schema] = schema["properties"]
        overrides, extra = tightening[name]
        for field, override in {**BASE, **MATCH, **overrides}.items():
            if field in props:
                props[field] = copy.deepcopy(override)  # the walks below edit it
        for prop in props.values():
            _bound_integers(prop)
            _no_nul(prop)
        schema.update(extra)
        schema["xml"] = {"name": "xml"}
    components.pop("GoalItem", None)  # inlined in RegisterRequest.goals (its XML name)
    return components


def _bound_integers(schema: Any) -> None:
    """Every integer the structs leave unbounded fits 64 bits."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer" and "maximum" not in schema:
            schema.update(minimum=-(2**63), maximum=INT64_MAX)
        for value in schema.values():
            _bound_integers(value)
    elif isinstance(schema, list):
        for value in schema:
            _bound_integers(value)


def _no_nul(schema: Any) -> None:
    """No string, and no key of a free-form object, may hold a NUL character (the JSON codec
    refuses one anywhere: PostgreSQL text cannot store it)."""
    if isinstance(schema, dict):
        kind = schema.get("type")
        is_text = kind == "string" or (isinstance(kind, list) and "string" in kind)
        if is_text and not {"pattern", "enum", "const"} & schema.keys():
            schema["pattern"] = NO_NUL
        if isinstance(schema.get("additionalProperties"), dict):
            schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": NO_NUL}
        for value in schema.values():
            _no_nul(value)
    elif isinstance(schema, list):
        for value in schema:
            _no_nul(value)


@cache
def openapi_document() -> dict[str, Any]:
    components = request_components()
    components["ErrorEnvelope"] = ERROR_ENVELOPE
    paths: dict[str, Any] = {}
    parameters = [
        {
            "name": "format",
            "in": "query",
            "required": False,
            "description": "Format of the reply (the body field format wins)",
            "schema": enum(("json", "xml")),
        },
        {
            "name": "Request-ID",
            "in": "header",
            "required": False,
            "description": "Deduplication key of a data-changing request (X-Request-ID too)",
            "schema": {"type": "string", "maxLength": 128, "pattern": "^[!-~]+$"},
        },
    ]
    for method in METHODS.values():
        success_name = "Reply_" + method.name.replace("/", "_")
        components[success_name] = _success(method.name)
        ref = {"$ref": REF.format(name=method.request.__name__)}
        paths[f"/api/v1.1/{method.name}"] = {
            "post": {
                "summary": method.summary,
                "operationId": method.name.replace("/", "_"),
                "parameters": parameters,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref},
                        "application/xml": {"schema": ref},
                    },
                },
                "responses": _responses(method.name, REF.format(name=success_name)),
                "security": [{"bearer": []}, {}],
            }
        }
    paths.update(_ops_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Goalline",
            "version": __version__,
            "description": "Goal achievements and goal values for customer profiles, "
            "wire-compatible with the Altcraft Platform API v1.1. The API token travels in the "
            "body field `token` or as `Authorization: Bearer <token>` (the body's wins). With "
            "the setting error_status=200 every reply is HTTP 200 and only the body's `error` "
            "tells an error.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The API token; or the body field `token`",
                }
            },
        },
    }


def _ops_paths() -> dict[str, Any]:
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    not_ready = {
        "description": "Storage does not answer",
        "headers": {"Retry-After": {"required": True, "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": status}},
    }
    return {
        "/healthz": {
            "get": {
                "summary": "200 while the process is up",
                "responses": {
                    "200": {
                        "description": "Up",
                        "content": {"application/json": {"schema": status}},
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "200 when storage answers, else 503",
                "responses": {
                    "200": {
                        "description": "Ready",
                        "content": {"application/json": {"schema": status}},
                    },
                    "503": not_ready,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of this process",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
