"""One typed request per API method: what both transports hand to dispatch.

The structs hold types only (msgspec checks them while decoding); the rules that span fields or
need a message of our own live in pipeline/validate.py. Unknown keys are ignored and ``null``
decodes as absent (SPEC §1). ``XML_ARRAYS`` names the elements that are lists in each method's
XML form, because a one-element XML array looks like a scalar.
"""

from __future__ import annotations

from typing import Any

import msgspec

Scalar = str | int | float | bool


class Base(msgspec.Struct, kw_only=True):
    """Fields every method accepts."""

    token: str | None = None
    format: str | None = None


class MatchFields(Base, kw_only=True):
    """The identifier fields of Altcraft's matching (shared/research/altcraft-api.md §2)."""

    db_id: int | None = None
    matching: str | None = None
    email: str | None = None
    phone: str | None = None
    profile_id: str | None = None
    field_name: str | None = None
    field_value: str | int | float | None = None


class GoalItem(msgspec.Struct, kw_only=True):
    goal: str | None = None
    value: float | None = None


class RegisterRequest(MatchFields, kw_only=True):
    """``goals/register``: every parameter of the seed page (shared/spec/goals-register.txt)."""

    pixel_id: int | None = None
    goal: str | None = None
    goals: list[GoalItem] | None = None
    value: float | None = None
    date: str | int | None = None
    # advanced
    pixel_data: dict[str, Any] | None = None
    skip_triggers: bool | None = None
    enrich_profile: bool | None = None
    is_test: bool | None = None
    vendor: str | None = None
    external_type: str | None = None
    external_event_id: str | None = None
    altcraft_client_id: str | None = None
    # HTTP
    referer: str | None = None
    user_agent: str | None = None
    accept_language: str | None = None
    client_ip: str | None = None
    client_ip_v4: str | None = None
    client_ip_v6: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None
    # geolocation
    lat: float | None = None
    lon: float | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    address: str | None = None
    zip: str | None = None
    time_zone: str | None = None
    # UTM
    utm_content: str | None = None
    utm_medium: str | None = None
    utm_source: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    # network
    net_ssid: str | None = None
    net_mac_addr: str | None = None
    net_gateway_ipv4: str | None = None
    net_gateway_ipv6: str | None = None
    # mailing, loyalty, market
    send_message_id: str | None = None
    loyalty_id: int | None = None
    promo_id: str | None = None
    endpoint_eid: str | None = None
    order_eid: str | None = None
    product_eid: str | None = None
    sku_eid: str | None = None
    region_eid: str | None = None
    count_items: int | None = None
    categories: list[str] | None = None


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


XML_ARRAYS: dict[type[msgspec.Struct], frozenset[str]] = {
    DictionaryRequest: frozenset(),
    RegisterRequest: frozenset({"goals", "categories"}),
    ProfileImportRequest: frozenset({"phones"}),
    ProfileGetRequest: frozenset(),
}
