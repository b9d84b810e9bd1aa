"""One typed request per API method: what both transports hand to dispatch.

The structs hold types only (msgspec checks them while decoding); the rules that span fields or
need a message of our own live in pipeline/validate.py. Unknown keys are ignored and ``null``
decodes as absent (SPEC §1). ``XML_ARRAYS`` names the elements that are lists in each method's
XML form, because a one-element XML array looks like a scalar.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import msgspec

#: SPEC §2: every string at most 128 characters; the three copied from browsers' headers 2,048.
#: msgspec enforces these while decoding (codecs/json.py words the error per field).
Str128 = Annotated[str, msgspec.Meta(max_length=128)]
Str2048 = Annotated[str, msgspec.Meta(max_length=2048)]

#: Every number gets its range while decoding, so nothing a store or an encoder cannot hold
#: reaches a handler (issue 17: 2**63 was a 500 on SQLite, "bigint out of range" on
#: PostgreSQL). The rules of a field's own (``limit`` 1..1000, ``lat`` -90..90, ...) stay with
#: the method, worded there; codecs/json.py words these ("db_id: must be a positive integer").
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: An integer both stores can hold (a signed 64-bit column).
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
#: The id of a stored object (database, pixel, event, loyalty programme): positive.
Id = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
#: A count or an offset: not negative.
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
#: A finite float: JSON's ``1e999`` decodes as infinity, XML's text may say ``inf`` or ``nan``.
Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]


class Base(msgspec.Struct, kw_only=True):
    """Fields every method accepts."""

    token: Str128 | None = None
    format: Str128 | None = None


class MatchFields(Base, kw_only=True):
    """The identifier fields of Altcraft's matching (shared/research/altcraft-api.md §2)."""

    db_id: Id | None = None
    matching: Str128 | None = None
    email: Str128 | None = None
    phone: Str128 | None = None
    profile_id: Str128 | None = None
    field_name: Str128 | None = None
    field_value: Str128 | Int64 | Finite | None = None


class GoalItem(msgspec.Struct, kw_only=True):
    goal: Str128 | None = None
    value: Finite | None = None


class RegisterRequest(MatchFields, kw_only=True):
    """``goals/register``: every parameter of the seed page (shared/spec/goals-register.txt)."""

    pixel_id: Id | None = None
    goal: Str128 | None = None
    goals: list[GoalItem] | None = None
    value: Finite | None = None
    date: Str128 | Int64 | None = None
    # advanced
    pixel_data: dict[str, Any] | None = None
    skip_triggers: bool | None = None
    enrich_profile: bool | None = None
    is_test: bool | None = None
    vendor: Str128 | None = None
    external_type: Str128 | None = None
    external_event_id: Str128 | None = None
    altcraft_client_id: Str128 | None = None
    # HTTP
    referer: Str2048 | None = None
    user_agent: Str2048 | None = None
    accept_language: Str2048 | None = None
    client_ip: Str128 | None = None
    client_ip_v4: Str128 | None = None
    client_ip_v6: Str128 | None = None
    browser: Str128 | None = None
    os: Str128 | None = None
    device: Str128 | None = None
    # geolocation
    lat: Finite | None = None
    lon: Finite | None = None
    country: Str128 | None = None
    region: Str128 | None = None
    city: Str128 | None = None
    address: Str128 | None = None
    zip: Str128 | None = None
    time_zone: Str128 | None = None
    # UTM
    utm_content: Str128 | None = None
    utm_medium: Str128 | None = None
    utm_source: Str128 | None = None
    utm_campaign: Str128 | None = None
    utm_term: Str128 | None = None
    # network
    net_ssid: Str128 | None = None
    net_mac_addr: Str128 | None = None
    net_gateway_ipv4: Str128 | None = None
    net_gateway_ipv6: Str128 | None = None
    # mailing, loyalty, market
    send_message_id: Str128 | None = None
    loyalty_id: Id | None = None
    promo_id: Str128 | None = None
    endpoint_eid: Str128 | None = None
    order_eid: Str128 | None = None
    product_eid: Str128 | None = None
    sku_eid: Str128 | None = None
    region_eid: Str128 | None = None
    count_items: Int64 | None = None
    categories: list[Str128] | None = None


class ProfileImportRequest(MatchFields, kw_only=True):
    """``profiles/import``: create or update one profile by matching."""

    data: dict[str, Any] | None = None
    skip_triggers: bool | None = None
    detect_geo: bool | None = None


class ProfileGetRequest(MatchFields, kw_only=True):
    """``profiles/get``: one profile by matching."""


class DictionaryRequest(Base, kw_only=True):
    """``dictionary``: one value list by name."""

    name: str | None = None


class ProfileImportBatchRequest(Base, kw_only=True):
    """``profiles/import_batch``: many profiles, each item matched on its own (SPEC §3).

    Items stay untyped here, so one malformed item fails alone (pipeline/bulk.py checks each).
    """

    db_id: Id | None = None
    matching: str | None = None
    field_name: str | None = None
    skip_triggers: bool | None = None
    detect_geo: bool | None = None
    data: list[Any] | None = None


class HistoryGetRequest(MatchFields, kw_only=True):
    """``subscribers/history_get``: a profile's actions, newest first, paged by ``from_id``."""

    list_id: Id | None = None
    date_from: str | None = None
    date_to: str | None = None
    limit: Int64 | None = None
    from_id: Id | None = None


class DatabasesListRequest(Base, kw_only=True):
    """``databases/list``: the databases the token may use."""

    from_id: Count | None = None
    limit: Int64 | None = None


class DatabaseFieldsRequest(Base, kw_only=True):
    """``databases/fields_get``: a database's profile fields."""

    db_id: Id | None = None


XML_ARRAYS: dict[type[msgspec.Struct], frozenset[str]] = {
    DictionaryRequest: frozenset(),
    RegisterRequest: frozenset({"goals", "categories"}),
    ProfileImportRequest: frozenset({"phones"}),
    ProfileGetRequest: frozenset(),
    ProfileImportBatchRequest: frozenset({"data", "phones"}),
    HistoryGetRequest: frozenset(),
    DatabasesListRequest: frozenset(),
    DatabaseFieldsRequest: frozenset(),
}
