"""Field rules for ``goals/register`` (pure): a RegisterRequest in, a Registration out.

Every refusal is an InvalidRequest whose text names the field path and the rule broken, e.g.
``goals[1].goal: longer than 128 characters`` (SPEC §2 "Limits"). Decisions the seed page leaves
open are written down in docs/api.md.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import operator
import re
import unicodedata
from functools import lru_cache, partial
from typing import Any

import msgspec
import pycountry

from goalline.enrichment import dictionary
from goalline.errors import InvalidRequest
from goalline.model import EVENT_ATTRS, Goal, Registration, iso_utc
from goalline.pipeline.match import match_key
from goalline.pipeline.requests import RegisterRequest

MAX_STRING = 128
#: Most goals in one request: the default of the ``max_goals`` setting (register.handle passes
#: the setting's value).
MAX_GOALS = 1000
MAX_CATEGORIES = 100
MAX_PIXEL_DATA_BYTES = 1024
MAX_COUNT_ITEMS = 1_000_000_000

#: The ASCII part of the goal-name alphabet; other characters are checked one by one.
_GOAL_CHARS = re.compile(r"[A-Za-z0-9 \t!#$%&*+\-.,:;'=?@^_()\[\]/\\|]*")
_EPOCH = re.compile(r"[0-9]+")
#: Event attributes copied from the request as sent (the rest are derived).
_REQUEST_ATTRS = tuple(name for name in EVENT_ATTRS if name in RegisterRequest.__struct_fields__)
_get_request_attrs = operator.attrgetter(*_REQUEST_ATTRS)
_NO_ATTRS: dict[str, Any] = dict.fromkeys(EVENT_ATTRS)
#: Goal((name, value)) without NamedTuple's Python-level __new__ (a request may have 1,000).
_new_goal = partial(tuple.__new__, Goal)
_MAC = re.compile(r"^(?:[0-9A-Fa-f]{2}([:-]))(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")
_MAC_DOTTED = re.compile(r"^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$")
_OFFSET_NO_COLON = re.compile(r"([+-])(\d{2})(\d{2})$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}$")
DATE_SHAPES = (
    "RFC 3339 with an offset (2006-01-25T15:04:05+07:00 or ...Z), the same with a +0700 offset, "
    "or Unix epoch seconds"
)
#: The earliest event date accepted: the Unix epoch, the earliest moment epoch seconds can say,
#: so every accepted shape has the same range (docs/api.md "Dates").
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EARLIEST_TEXT = "1970-01-01T00:00:00Z"


def registration(
    req: RegisterRequest,
    *,
    now: dt.datetime,
    max_future_seconds: int,
    phone_region: str = "",
    now_iso: str | None = None,
    max_goals: int = MAX_GOALS,
) -> Registration:
    """Check every field of ``req`` and return the normalised Registration.

    String lengths are already checked while decoding (pipeline/requests.py), and NUL
    characters refused by the codec; the rules here are the rest of SPEC §2.
    """
    db_id = required_id(req.db_id, "db_id")
    pixel_id = required_id(req.pixel_id, "pixel_id")
    goals = _goals(req, max_goals)
    if req.date is None:  # the event happened now (``now_iso``: ``now`` already formatted)
        event_at, date_raw = now_iso or iso_utc(now), None
    else:
        event_at, date_raw = _date(req.date, now, max_future_seconds)
    key = match_key(req, phone_region=phone_region)
    return Registration(
        db_id=db_id,
        pixel_id=pixel_id,
        goals=goals,
        matching=req.matching or "email",
        match=key,
        event_at=event_at,
        date_raw=date_raw,
        skip_triggers=bool(req.skip_triggers),
        enrich_profile=req.enrich_profile is not False,
        is_test=bool(req.is_test),
        attrs=_attrs(req),
    )


def required_id(value: int | None, path: str) -> int:
    """A required database, pixel or other object id: present and positive."""
    if value is None:
        raise InvalidRequest.field(path, "required")
    if value <= 0:
        raise InvalidRequest.field(path, "must be a positive integer")
    return value


def check_string(path: str, value: str, limit: int = MAX_STRING) -> None:
    if len(value) > limit:
        raise InvalidRequest.field(path, f"longer than {limit} characters")
    if "\x00" in value:
        raise InvalidRequest.field(path, "contains a NUL character")


def _goals(req: RegisterRequest, max_goals: int) -> tuple[Goal, ...]:
    if (req.goal is not None) + len(req.goals or ()) > max_goals:  # before any other work
        raise InvalidRequest.field("goals", f"more than {max_goals} goals in one request")
    goals: list[Goal] = []
    if req.goal is not None:
        goals.append(Goal(goal_name(req.goal, "goal"), _value(req.value, "value")))
    elif req.value is not None:
        raise InvalidRequest.field("value", "given without goal")
    for i, item in enumerate(req.goals or ()):
        name, value = item.goal, item.value
        if name is None:
            raise InvalidRequest.field(f"goals[{i}].goal", "required")
        if _goal_name_problem(name) is not None:
            goal_name(name, f"goals[{i}].goal")  # raises, naming the item
        if value is not None and not math.isfinite(value):
            _value(value, f"goals[{i}].value")  # raises, naming the item
        goals.append(_new_goal((name, value)))
    # Neither goal nor goals: one pixel-activation event without a goal name (SPEC §2).
    return tuple(goals) if goals else (Goal(None, None),)


def goal_name(name: str, path: str) -> str:
    """A goal name: letters (Latin, Cyrillic), digits, spaces, tabs, currency symbols and
    ``! # $ % & * + - . , : ; ' = ? @ ^ _ ( ) [ ] / \\ |``, at most 128 characters."""
    problem = _goal_name_problem(name)
    if problem is not None:
        raise InvalidRequest.field(path, problem)
    return name


@lru_cache(maxsize=4096)
def _goal_name_problem(name: str) -> str | None:
    """Why ``name`` is not a goal name, or None (cached: a site uses a handful of names)."""
    if len(name) > MAX_STRING:
        return f"longer than {MAX_STRING} characters"
    if "\x00" in name:
        return "contains a NUL character"
    if not name.strip():
        return "empty goal name"
    if not _GOAL_CHARS.fullmatch(name):
        for ch in name:
            if not _GOAL_CHARS.fullmatch(ch) and not _allowed_letter_or_currency(ch):
                return (
                    f"character {ch!r} is not allowed in goal names (letters, digits, spaces, "
                    "currency symbols and ! # $ % & * + - . , : ; ' = ? @ ^ _ ( ) [ ] / \\ |)"
                )
    return None


@lru_cache(maxsize=4096)
def _allowed_letter_or_currency(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category == "Sc":
        return True
    return category[0] == "L" and unicodedata.name(ch, "").startswith(("LATIN ", "CYRILLIC "))


def _value(value: float | None, path: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise InvalidRequest.field(path, "must be a finite number")
    return value


def _date(raw: str | int | None, now: dt.datetime, max_future: int) -> tuple[str, str | None]:
    """``date`` → (ISO UTC text, the text as sent). Decision recorded in docs/api.md."""
    if raw is None:
        return iso_utc(now), None
    if isinstance(raw, int) or _EPOCH.fullmatch(raw.strip()):
        try:
            when = dt.datetime.fromtimestamp(int(raw), dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidRequest.field("date", "epoch seconds out of range") from None
    else:
        text = raw.strip()
        text = _OFFSET_NO_COLON.sub(r"\1\2:\3", text) if "T" in text or " " in text else text
        try:
            when = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InvalidRequest.field("date", f"not a date; accepted: {DATE_SHAPES}") from None
        if when.tzinfo is None:
            raise InvalidRequest.field(
                "date", f"no UTC offset, so the moment is ambiguous; accepted: {DATE_SHAPES}"
            )
    if when < EARLIEST:  # also what an offset would push before year 1 (issue 17)
        raise InvalidRequest.field("date", f"before {EARLIEST_TEXT}")
    if (when - now).total_seconds() > max_future:
        raise InvalidRequest.field(
            "date", f"more than {max_future} seconds in the future (server time {iso_utc(now)})"
        )
    try:
        return iso_utc(when), str(raw)
    except OverflowError:  # after 9999-12-31 in UTC: only a huge max_future_seconds lets it by
        raise InvalidRequest.field("date", "after 9999-12-31T23:59:59Z") from None


def _attrs(req: RegisterRequest) -> dict[str, Any]:
    attrs = _NO_ATTRS.copy()  # every column, in order
    attrs.update(zip(_REQUEST_ATTRS, _get_request_attrs(req)))  # noqa: B905 (equal by design)
    if (req.lat is None) != (req.lon is None):
        missing = "lon" if req.lon is None else "lat"
        raise InvalidRequest.field(
            missing, "required when " + ("lat" if missing == "lon" else "lon") + " is given"
        )
    if req.lat is not None and not (math.isfinite(req.lat) and -90 <= req.lat <= 90):
        raise InvalidRequest.field("lat", "must be between -90 and 90")
    if req.lon is not None and not (math.isfinite(req.lon) and -180 <= req.lon <= 180):
        raise InvalidRequest.field("lon", "must be between -180 and 180")
    if req.sku_eid is not None and req.product_eid is None:
        raise InvalidRequest.field("product_eid", "required when sku_eid is given")
    # Each rule runs only for a field that was sent: most requests send few of them.
    for name, version in _IP_FIELDS:
        if attrs[name] is not None:
            attrs[name] = ip_address(attrs[name], name, version)
    if req.net_mac_addr is not None:
        attrs["net_mac_addr"] = mac_address(req.net_mac_addr)
    for name, dictionary_name in _DICTIONARY_FIELDS:
        if attrs[name] is not None:
            attrs[name] = in_dictionary(name, dictionary_name, attrs[name])
    if req.country is not None:
        attrs["country"] = country(req.country)
    if req.loyalty_id is not None and req.loyalty_id <= 0:
        raise InvalidRequest.field("loyalty_id", "must be a positive integer")
    if req.count_items is not None and not 0 <= req.count_items <= MAX_COUNT_ITEMS:
        raise InvalidRequest.field("count_items", f"must be between 0 and {MAX_COUNT_ITEMS}")
    if req.categories is not None:
        attrs["categories"] = _categories(req.categories)
    if req.pixel_data is not None:
        attrs["pixel_data"] = pixel_data(req.pixel_data)
    if req.accept_language:
        attrs["language"] = language(req.accept_language)
    attrs["sources"] = None
    return attrs


_IP_FIELDS = (
    ("client_ip", None), ("client_ip_v4", 4), ("client_ip_v6", 6),
    ("net_gateway_ipv4", 4), ("net_gateway_ipv6", 6),
)  # fmt: skip
_DICTIONARY_FIELDS = (
    ("time_zone", "tz"), ("browser", "browsers"), ("os", "oses"), ("device", "devices"),
)  # fmt: skip


@lru_cache(maxsize=8192)
def ip_address(raw: str | None, path: str, version: int | None) -> str | None:
    if raw is None:
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        raise InvalidRequest.field(path, "not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise InvalidRequest.field(path, "an IPv6 zone index (%...) is not allowed")
    if version is not None and address.version != version:
        raise InvalidRequest.field(path, f"not an IPv{version} address")
    return str(address)


def mac_address(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = raw.strip()
    if _MAC_DOTTED.match(text):
        digits = text.replace(".", "")
    elif _MAC.match(text):
        digits = text.replace(":", "").replace("-", "")
    else:
        raise InvalidRequest.field("net_mac_addr", "not a MAC address (like 28:87:ba:c1:0d:5e)")
    digits = digits.lower()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def in_dictionary(path: str, name: str, raw: str | None) -> str | None:
    """A value of dictionary ``name`` (case-insensitive), returned in canonical spelling."""
    if raw is None:
        return None
    found = dictionary.canonical(name, raw.strip())
    if found is None:
        example = {"tz": " (like Europe/Moscow)"}.get(name, "")
        raise InvalidRequest.field(
            path,
            f"{raw!r} is not in the {name} dictionary{example}; "
            f'list it with POST /api/v1.1/dictionary {{"name": "{name}"}}',
        )
    return found


@lru_cache(maxsize=4096)
def country(raw: str) -> str:
    """ISO 3166 alpha-2/alpha-3 code or English name → alpha-2 code."""
    try:
        return str(pycountry.countries.lookup(raw.strip()).alpha_2)
    except LookupError:
        raise InvalidRequest.field(
            "country", "not an ISO 3166 country code or English country name"
        ) from None


def _categories(raw: list[str] | None) -> str | None:
    if raw is None:
        return None
    if len(raw) > MAX_CATEGORIES:
        raise InvalidRequest.field("categories", f"more than {MAX_CATEGORIES} items")
    for i, item in enumerate(raw):
        check_string(f"categories[{i}]", item)
    return msgspec.json.encode(raw).decode()


def pixel_data(raw: dict[str, Any] | None) -> str | None:
    """Flat object: scalar values or arrays of scalars, at most 1 KB as compact UTF-8 JSON."""
    if raw is None:
        return None
    for key, value in raw.items():
        path = f"pixel_data.{key}"
        check_string(path, key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                raise InvalidRequest.field(path, "nested objects are not allowed")
            if isinstance(item, list):
                raise InvalidRequest.field(path, "arrays may hold only scalars")
            if isinstance(item, str):
                check_string(path, item, MAX_PIXEL_DATA_BYTES)
    encoded = msgspec.json.encode(raw)
    if len(encoded) > MAX_PIXEL_DATA_BYTES:
        raise InvalidRequest.field(
            "pixel_data", f"{len(encoded)} bytes as compact JSON; at most {MAX_PIXEL_DATA_BYTES}"
        )
    return encoded.decode()


@lru_cache(maxsize=4096)
def language(accept_language: str | None) -> str | None:
    """The primary language (ISO 639 code) of the highest-weighted Accept-Language entry."""
    if not accept_language:
        return None
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().split("-")[0].lower()
        if not _LANGUAGE.match(primary):
            continue
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        candidate = (-weight, position, primary)
        if weight > 0 and (best is None or candidate < best):
            best = candidate
    return best[2] if best else None
