"""Enrichment of a goal event (SPEC §2 "Enrichment"; issue 3), with the lookups injected.

Precedence is the seed page's: values derived from ``user_agent`` override explicit
``browser``/``os``/``device``; values derived from the client IP (``client_ip``, else
``client_ip_v4``, else ``client_ip_v6``) override explicit ``country``/``region``/``city``/
``zip``/``time_zone``; ``lat``/``lon`` come from the IP only when the request gave none; explicit
values stand where nothing is derived. ``accept_language`` gives ``language``. The event keeps
where each value came from in ``sources``: ``request``, ``user_agent``, ``geoip`` or
``accept_language``, and ``geoip_database`` names the database and its build date.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec

from goalline.enrichment import useragent
from goalline.enrichment.geoip import GeoInfo, GeoIP
from goalline.model import PROFILE_ENRICHMENT

#: Event attributes that enrichment may fill, each with its default source.
ENRICHED: tuple[str, ...] = (
    "browser", "os", "device", "country", "region", "city", "zip", "time_zone", "lat", "lon",
    "language",
)  # fmt: skip
_UA_FIELDS = ("browser", "os", "device")
_GEO_FIELDS = ("country", "region", "city", "zip", "time_zone")


@dataclass(frozen=True)
class Enricher:
    """The lookups: a user-agent parser and a GeoIP database (both cached, both offline)."""

    parse_user_agent: Callable[[str], useragent.UserAgentInfo]
    geoip: GeoIP

    @property
    def geoip_database(self) -> str:
        return f"{self.geoip.name} {self.geoip.build_date}"

    def apply(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Fill derived values into ``attrs`` (validated event attributes) and record sources."""
        sources = {name: "request" for name in ENRICHED if attrs.get(name) is not None}
        if attrs.get("accept_language") and attrs.get("language") is not None:
            sources["language"] = "accept_language"
        ua = attrs.get("user_agent")
        if ua:
            parsed = self.parse_user_agent(ua)
            for name in _UA_FIELDS:
                value = getattr(parsed, name)
                if value is not None:
                    attrs[name] = value
                    sources[name] = "user_agent"
        ip = attrs.get("client_ip") or attrs.get("client_ip_v4") or attrs.get("client_ip_v6")
        geo = self.geoip.lookup(ip) if ip else None
        if geo is not None:
            _apply_geo(attrs, sources, geo)
            sources["geoip_database"] = self.geoip_database
        attrs["sources"] = sources or None
        return attrs


def _apply_geo(attrs: dict[str, Any], sources: dict[str, str], geo: GeoInfo) -> None:
    for name in _GEO_FIELDS:
        value = getattr(geo, name)
        if value is not None:
            attrs[name] = value
            sources[name] = "geoip"
    if attrs.get("lat") is None and geo.lat is not None and geo.lon is not None:
        attrs["lat"], attrs["lon"] = geo.lat, geo.lon
        sources["lat"] = sources["lon"] = "geoip"


@cache
def enricher(geoip_database: str = "") -> Enricher:
    """The process-wide Enricher for a GeoIP path ("" = the packaged DB-IP City Lite), warmed
    up so the first request does not pay for loading rules and indexes."""
    geoip = GeoIP(geoip_database or None)
    geoip.warm_up()
    useragent.warm_up()
    return Enricher(useragent.parse, geoip)


def profile_values(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(system field, JSON value) that an event's values write onto its profile with
    ``enrich_profile`` (SPEC §2): at registration (``register``) and when stitching replays a
    recorded event (``stitch``), so both write exactly the same."""
    ip = event["client_ip"] or event["client_ip_v4"] or event["client_ip_v6"]
    out = []
    for name, source in PROFILE_ENRICHMENT:
        value = ip if source == "ip" else event.get(source)
        if value is not None:
            out.append((name, msgspec.json.encode(value).decode()))
    return out
