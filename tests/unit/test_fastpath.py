"""The bulk-import fast paths give exactly what match.py's full normalisers give, or decline.

Each test compares the two over generated inputs (seeded, so every run checks the same ones):
whenever the fast path answers, the full normaliser must return the same value.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from goalline.errors import InvalidRequest
from goalline.pipeline import fastpath, match


def full(fn: Callable[..., str], *args: str) -> str | None:
    try:
        return fn(*args)
    except InvalidRequest:
        return None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John@Example.COM", "john@example.com"),
        ("  a.b+tag@mail.example.co.uk ", "a.b+tag@mail.example.co.uk"),
        ("a_b-c@x-y.io", "a_b-c@x-y.io"),
        ("a..b@x.com", None),  # invalid: the full validator says why
        ("a@x.test", None),  # special-use name
        ("a@xn--p1ai.ru", None),  # Punycode
        ("a@ab--cd.com", None),
        ("a@localhost", None),
        ("a@x.c", None),  # one-letter TLD: left to the full validator
        ("ä@x.com", None),
        ("a@" + "x" * 130 + ".com", None),
    ],
)
def test_email_cases(raw: str, expected: str | None) -> None:
    assert fastpath.email(raw) == expected
    if expected is not None:
        assert match.normalise_email.__wrapped__(raw) == expected


def test_email_agrees_with_the_validator() -> None:
    rnd = random.Random(4)
    atext = "abcxyzABC0189_+-"
    odd = "!#$%&'*/=?^`{|}~.\"(),:;<>@[] é"
    tlds = ["com", "io", "RU", "test", "local", "onion", "c", "x1", "123", "xn--p1ai", "museum"]
    answered = 0
    for _ in range(20_000):
        local = "".join(
            rnd.choice(atext if rnd.random() < 0.9 else odd) for _ in range(rnd.randint(1, 20))
        )
        labels = [
            "".join(rnd.choice("abz09-") for _ in range(rnd.randint(1, 12)))
            for _ in range(rnd.randint(1, 3))
        ]
        text = f"{local}@{'.'.join(labels)}.{rnd.choice(tlds)}"
        if rnd.random() < 0.1:
            text = f" {text.upper()} "
        fast = fastpath.email(text)
        if fast is not None:
            answered += 1
            assert fast == full(match.normalise_email.__wrapped__, text), text
    assert answered > 1000  # the fast path covers the common shape


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+79001234567", "", "+79001234567"),
        ("79001234567", "", "+79001234567"),
        (" +998900000001 ", "", "+998900000001"),
        ("79001234567", "RU", None),  # national form in a region: parsed the full way
        ("+7 900 123-45-67", "", None),  # spaces and dashes: the full way
        ("+390612345678", "", None),  # Italian leading zero
        ("+74951234567", "", "+74951234567"),
        ("+78001234567", "", None),  # 8 is Russia's national prefix: the full way
        ("+12", "", None),
    ],
)
def test_phone_cases(raw: str, region: str, expected: str | None) -> None:
    assert fastpath.phone(raw, region) == expected
    if expected is not None:
        assert match.normalise_phone.__wrapped__(raw, region) == expected


@pytest.mark.parametrize("region", ["", "RU", "US", "DE", "GB"])
def test_phone_agrees_with_phonenumbers(region: str) -> None:
    rnd = random.Random(7)
    answered = 0
    for country_code in COUNTRY_CODE_TO_REGION_CODE:
        for _ in range(25):
            national = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(3, 13)))
            for text in (f"+{country_code}{national}", f"{country_code}{national}"):
                fast = fastpath.phone(text, region)
                if fast is not None:
                    answered += 1
                    assert fast == full(match.normalise_phone.__wrapped__, text, region), text
    assert answered > 1000
