"""Tests for goalline.enrichment.dictionary: the value lists behind /v1.1/dictionary."""

from __future__ import annotations

import zoneinfo

import pytest

from goalline.enrichment import dictionary, useragent
from goalline.enrichment.dictionary import NAMES, canonical, values


def test_names() -> None:
    assert NAMES == ("browsers", "oses", "devices", "tz", "languages")


@pytest.mark.parametrize("name", NAMES)
def test_values_are_non_empty_unique_strings(name: str) -> None:
    got = values(name)
    assert isinstance(got, tuple)
    assert got
    assert all(isinstance(v, str) and v and v == v.strip() for v in got)
    assert len({v.casefold() for v in got}) == len(got)  # case-insensitive lookup is unambiguous


@pytest.mark.parametrize("name", NAMES)
def test_every_value_is_its_own_canonical_form(name: str) -> None:
    for value in values(name):
        assert canonical(name, value) == value
        assert canonical(name, value.upper()) == value
        assert canonical(name, value.lower()) == value


def test_user_agent_dictionaries_are_the_parsers_values() -> None:
    assert values("browsers") == useragent.BROWSERS
    assert values("oses") == useragent.OSES
    assert values("devices") == useragent.DEVICES


def test_time_zones() -> None:
    tz = values("tz")
    assert list(tz) == sorted(tz)
    assert "Europe/Moscow" in tz
    assert "UTC" in tz
    assert "Factory" not in tz
    for name in tz[:: max(1, len(tz) // 50)]:
        zoneinfo.ZoneInfo(name)  # every listed name loads


def test_languages() -> None:
    languages = values("languages")
    assert list(languages) == sorted(languages)
    assert all(len(code) == 2 and code.isascii() and code.islower() for code in languages)
    assert {"ru", "en", "de", "uk", "kk"} <= set(languages)
    assert len(languages) > 150


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("browsers", "Chrome", "Chrome"),
        ("browsers", "chrome", "Chrome"),
        ("browsers", "YANDEX BROWSER", "Yandex Browser"),
        ("oses", "Ubuntu", "Ubuntu"),
        ("oses", "ubuntu", "Ubuntu"),
        ("oses", "MACOS", "macOS"),
        ("oses", "ios", "iOS"),
        ("devices", "Desktop", "Desktop"),
        ("devices", "desktop", "Desktop"),
        ("devices", "tv", "TV"),
        ("tz", "Europe/Moscow", "Europe/Moscow"),
        ("tz", "europe/moscow", "Europe/Moscow"),
        ("tz", "AMERICA/NEW_YORK", "America/New_York"),
        ("languages", "ru", "ru"),
        ("languages", "EN", "en"),
    ],
)
def test_canonical(name: str, value: str, expected: str) -> None:
    assert canonical(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("browsers", "Netscape Navigator 4"),
        ("browsers", ""),
        ("oses", "Mac OS X"),  # uap-core's name; the dictionary says macOS
        ("devices", "Phablet"),
        ("tz", "Mars/Olympus_Mons"),
        ("tz", "Factory"),
        ("languages", "rus"),  # ISO 639-2/3, not 639-1
        ("languages", "xx"),
    ],
)
def test_unknown_value_is_none(name: str, value: str) -> None:
    assert canonical(name, value) is None


def test_seed_example_values_are_present() -> None:
    assert "Chrome" in values("browsers")
    assert "Ubuntu" in values("oses")
    assert "Desktop" in values("devices")
    assert "Europe/Moscow" in values("tz")


def test_unknown_dictionary_raises() -> None:
    with pytest.raises(ValueError, match="unknown dictionary 'colours'"):
        values("colours")
    with pytest.raises(ValueError, match="unknown dictionary"):
        canonical("colours", "red")


def test_indexes_are_built_once() -> None:
    canonical("tz", "UTC")
    assert dictionary._index("tz") is dictionary._index("tz")
    assert values("tz") is values("tz")
