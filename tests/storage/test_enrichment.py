"""Enrichment inside goals/register (issue 3): precedence, sources, profile fields, and the
``dictionary`` method, on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from goalline.enrichment import dictionary
from goalline.storage.store import Store

from conftest import Seeded, events, register

SEED_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/51.0.2704.103 Safari/537.36"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
YANDEX_IP = "77.88.55.88"  # DB-IP City Lite 2023-04: RU


def stored(client: TestClient, seeded: Seeded, store: Store, **fields: Any) -> dict[str, Any]:
    before = len(events(store))
    r = register(client, seeded, email="a@example.com", goal=f"g{before}", **fields)
    assert r.json()["error"] == 0, r.text
    return events(store)[-1]


def test_user_agent_overrides_explicit_values(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    event = stored(client, seeded, store, user_agent=IPHONE_UA, browser="Firefox", os="Windows",
                   device="Desktop")  # fmt: skip
    assert (event["browser"], event["os"], event["device"]) == ("Safari", "iOS", "Smartphone")
    assert {k: event["sources"][k] for k in ("browser", "os", "device")} == dict.fromkeys(
        ("browser", "os", "device"), "user_agent"
    )


def test_seed_user_agent(client: TestClient, seeded: Seeded, store: Store) -> None:
    event = stored(client, seeded, store, user_agent=SEED_UA)
    assert (event["browser"], event["os"], event["device"]) == ("Chrome", "Linux", "Desktop")


def test_explicit_values_stand_without_a_user_agent(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    event = stored(client, seeded, store, browser="firefox", os="ubuntu", device="tablet")
    assert (event["browser"], event["os"], event["device"]) == ("Firefox", "Ubuntu", "Tablet")
    assert event["sources"] == {"browser": "request", "os": "request", "device": "request"}


def test_unparsable_user_agent_keeps_explicit_values(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    event = stored(client, seeded, store, user_agent="%%%garbage%%%", browser="Chrome")
    assert event["browser"] == "Chrome" and event["sources"]["browser"] == "request"


def test_ip_overrides_explicit_geo_and_records_the_database(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    event = stored(client, seeded, store, client_ip=YANDEX_IP, country="US", city="Boston",
                   time_zone="America/New_York")  # fmt: skip
    assert event["country"] == "RU"
    assert event["city"] != "Boston" and event["time_zone"] == "Europe/Moscow"
    assert event["lat"] is not None and event["lon"] is not None
    assert event["sources"]["country"] == event["sources"]["lat"] == "geoip"
    assert event["sources"]["geoip_database"] == "DB-IP City Lite 2023-04-01"


def test_ip_keeps_explicit_coordinates(client: TestClient, seeded: Seeded, store: Store) -> None:
    event = stored(client, seeded, store, client_ip=YANDEX_IP, lat=10.5, lon=20.25)
    assert (event["lat"], event["lon"]) == (10.5, 20.25)
    assert event["sources"]["lat"] == "request"


@pytest.mark.parametrize("ip", ["10.20.30.40", "192.168.0.0", "127.0.0.1", "::1", "fe80::1"])
def test_private_addresses_yield_nothing(
    client: TestClient, seeded: Seeded, store: Store, ip: str
) -> None:
    event = stored(client, seeded, store, client_ip=ip, country="RU", city="Ryazan")
    assert (event["country"], event["city"]) == ("RU", "Ryazan")
    assert "geoip_database" not in event["sources"]


@pytest.mark.parametrize(
    ("fields", "country"),
    [
        ({"client_ip": YANDEX_IP, "client_ip_v4": "8.8.8.8"}, "RU"),
        ({"client_ip_v4": "8.8.8.8", "client_ip_v6": "2a02:6b8::1"}, "US"),
        ({"client_ip_v6": "2a02:6b8::1"}, "RU"),
        # the first address given decides, even when it locates nothing
        ({"client_ip": "10.0.0.1", "client_ip_v4": "8.8.8.8"}, None),
    ],
)
def test_address_order(
    client: TestClient, seeded: Seeded, store: Store, fields: dict[str, str], country: str | None
) -> None:
    assert stored(client, seeded, store, **fields)["country"] == country


def test_accept_language_gives_language(client: TestClient, seeded: Seeded, store: Store) -> None:
    event = stored(client, seeded, store, accept_language="ru-RU,ru;q=0.9,en-US;q=0.8")
    assert event["language"] == "ru" and event["sources"]["language"] == "accept_language"


def test_derived_values_reach_the_profile(client: TestClient, seeded: Seeded) -> None:
    r = client.post("/api/v1.1/profiles/import",
                    json={"token": seeded.token, "db_id": 1, "email": "p@example.com"})  # fmt: skip
    pid = r.json()["profile_id"]
    register(client, seeded, email="p@example.com", user_agent=IPHONE_UA, client_ip=YANDEX_IP,
             accept_language="de-DE")  # fmt: skip
    body = {"token": seeded.token, "db_id": 1, "matching": "profile_id", "profile_id": pid}
    profile = client.post("/api/v1.1/profiles/get", json=body).json()["data"]
    assert (profile["_browser"], profile["_os"], profile["_device"]) == (
        "Safari", "iOS", "Smartphone",
    )  # fmt: skip
    assert profile["_country"] == "RU" and profile["_tz"] == "Europe/Moscow"
    assert profile["_ip"] == YANDEX_IP and profile["_language"] == "de"


# -- the dictionary method ---------------------------------------------------------------------


@pytest.mark.parametrize("name", dictionary.NAMES)
def test_dictionary_json(client: TestClient, seeded: Seeded, name: str) -> None:
    r = client.post("/api/v1.1/dictionary", json={"token": seeded.scoped_token, "name": name})
    assert r.status_code == 200
    assert r.json()["data"] == list(dictionary.values(name))
    assert r.json()["name"] == name


@pytest.mark.parametrize("name", dictionary.NAMES)
def test_dictionary_xml(client: TestClient, seeded: Seeded, name: str) -> None:
    body = f"<xml><token>{seeded.token}</token><name>{name}</name></xml>"
    r = client.post("/api/v1.1/dictionary", content=body,
                    headers={"Content-Type": "application/xml"})  # fmt: skip
    values = dictionary.values(name)
    assert r.text.count("<data>") == len(values)
    assert f"<data>{values[0]}</data>" in r.text and "<error>0</error>" in r.text


def test_seed_values_are_in_the_dictionaries() -> None:
    assert "Chrome" in dictionary.values("browsers")
    assert "Ubuntu" in dictionary.values("oses")
    assert "Desktop" in dictionary.values("devices")
    assert "Europe/Moscow" in dictionary.values("tz")
    assert "fr" in dictionary.values("languages")


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"name": "browsers"}, 401, "token: required"),
        ({"token": "nope", "name": "browsers"}, 401, "token: unknown API token"),
        ({"token": "token-all-databases"}, 400, "name: required"),
        ({"token": "token-all-databases", "name": "colours"}, 400, "name: must be one of"),
    ],
)
def test_dictionary_errors(
    client: TestClient, seeded: Seeded, body: dict[str, str], status: int, text: str
) -> None:
    r = client.post("/api/v1.1/dictionary", json=body)
    assert r.status_code == status and r.json()["error_text"].startswith(text)
