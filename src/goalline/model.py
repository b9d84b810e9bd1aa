"""Domain values shared by the pipeline and storage: plain data, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple


def iso_utc(when: dt.datetime) -> str:
    """Fixed-width ISO 8601 in UTC with microseconds (``2026-11-27T09:35:48.123456Z``): the
    form every stored time takes, so times sort correctly as text on both stores.

    Raises OverflowError for a moment outside years 1 to 9999 in UTC (``0001-01-01T00:00+05:00``
    is one): callers pass the server clock, or a ``date`` validate.py has bounded first."""
    utc = when if when.tzinfo is dt.UTC else when.astimezone(dt.UTC)
    # %-formatting: a quarter of isoformat()'s cost, and it runs several times a request.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond,
    )  # fmt: skip


MatchKind = Literal["email", "phone", "profile_id", "custom"]

POLICIES: tuple[str, ...] = ("record", "reject", "create")
FIELD_TYPES: tuple[str, ...] = ("string", "int", "float", "bool", "date", "tags")


@dataclass(frozen=True)
class MatchKey:
    """What a request identifies its profile by, normalised (pipeline/match.py).

    ``field`` is the profile field searched: ``email``, ``phones``, a custom field's name, or
    None for ``profile_id``. ``value`` is the normalised key; for a custom field it is the value
    as sent until the field's type is known inside the transaction.
    """

    kind: MatchKind
    field: str | None
    value: str

    def describe(self) -> str:
        name = self.field or "profile_id"
        return f"{name} {self.value!r}"


class Database(NamedTuple):
    id: int
    name: str
    #: What a registration for an unknown profile does: record, reject or create.
    policy: str


class Pixel(NamedTuple):
    id: int
    name: str
    #: The database the pixel is bound to (None: any).
    db_id: int | None


class HistoryPage(NamedTuple):
    """One page of a profile's action history (subscribers/history_get)."""

    db_id: int
    profile_id: str
    #: ``since <= event_at < until`` (fixed-width ISO text, so text order is time order).
    since: str | None
    until: str | None
    #: (event_at, id) of the last event of the previous page: older ones only.
    before: tuple[str, int] | None
    limit: int


class LogRow(NamedTuple):
    """A request-log entry as a repeat reads it (pipeline/dedupe.py)."""

    reply: str | None
    reply_format: str | None
    expires_at: str


class LogEntry(NamedTuple):
    """A request-log entry as it is written: the reply a repeat gets back, byte for byte."""

    key: str
    method: str
    created_at: str
    expires_at: str
    reply_format: str
    reply: str


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    all_databases: bool
    db_ids: frozenset[int]

    def may_use(self, db_id: int) -> bool:
        return self.all_databases or db_id in self.db_ids


class Goal(NamedTuple):
    """One goal of a request (a tuple: a request may carry a thousand of them)."""

    name: str | None
    value: float | None


@dataclass(slots=True, kw_only=True)  # not frozen: one per request; frozen init costs 2x
class Registration:
    """A validated ``goals/register`` request: everything needed to store its events."""

    db_id: int
    pixel_id: int
    goals: tuple[Goal, ...]
    matching: str
    match: MatchKey
    event_at: str  # ISO 8601 UTC, fixed width: sorts as text on both stores
    date_raw: str | None
    skip_triggers: bool
    enrich_profile: bool
    is_test: bool
    attrs: dict[str, Any] = field(default_factory=dict)  # the EVENT_ATTRS columns


@dataclass(slots=True)  # one per request: plain slots, as frozen init costs 2x
class EventDraft:
    """A registration's goal events as the store writes them: one event per goal, sharing
    everything else (storage/queries.py turns it into rows)."""

    reg: Registration
    profile_id: str | None
    #: The match key as events record it (a custom value as its field's type spells it).
    key_text: str
    token_id: int
    received_at: str
    #: One payload fingerprint per goal, for events with an external id (else None).
    fingerprints: tuple[str, ...] | None = None


#: Columns of goal_events copied from the request (after normalisation), in schema order.
EVENT_ATTRS: tuple[str, ...] = (
    "vendor",
    "external_type",
    "external_event_id",
    "altcraft_client_id",
    "referer",
    "user_agent",
    "accept_language",
    "language",
    "client_ip",
    "client_ip_v4",
    "client_ip_v6",
    "browser",
    "os",
    "device",
    "lat",
    "lon",
    "country",
    "region",
    "city",
    "address",
    "zip",
    "time_zone",
    "utm_content",
    "utm_medium",
    "utm_source",
    "utm_campaign",
    "utm_term",
    "net_ssid",
    "net_mac_addr",
    "net_gateway_ipv4",
    "net_gateway_ipv6",
    "send_message_id",
    "loyalty_id",
    "promo_id",
    "endpoint_eid",
    "order_eid",
    "product_eid",
    "sku_eid",
    "region_eid",
    "count_items",
    "categories",
    "pixel_data",
    "sources",
)

#: Profile system fields that ``enrich_profile`` writes, and the event attribute each comes from.
PROFILE_ENRICHMENT: tuple[tuple[str, str], ...] = (
    ("_vendor", "vendor"),
    ("_browser", "browser"),
    ("_os", "os"),
    ("_device", "device"),
    ("_ip", "ip"),
    ("_country", "country"),
    ("_region", "region"),
    ("_city", "city"),
    ("_postal_code", "zip"),
    ("_tz", "time_zone"),
    ("_lat", "lat"),
    ("_lon", "lon"),
    ("_language", "language"),
)

#: System fields a profile may carry (Altcraft's profile data object plus enrichment fields).
SYSTEM_FIELDS: frozenset[str] = frozenset(
    {
        "_fname",
        "_lname",
        "_mname",
        "_bdate",
        "_sex",
        "_regdate",
        "_regip",
        "_regcity",
        "_regcountry",
        "_regurl",
        "_status",
        "_is_test",
        *(name for name, _ in PROFILE_ENRICHMENT),
    }
)
