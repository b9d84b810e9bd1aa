"""Fast paths in front of match.py's email and phone normalisers, for bulk imports (issue 4).

``email_validator`` and ``phonenumbers.parse`` cost about 70 and 40 µs a call: most of the time
a batch import spends outside the database. The common shapes (a plain ASCII address; a number
already written as international digits) are recognised here with a regular expression and a
metadata lookup, and give exactly what the full normalisers give (tests/unit/test_fastpath.py
compares the two over many generated inputs). Anything else returns None and goes the slow way,
which also produces the error text.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumber

from goalline.pipeline.validate import MAX_STRING

_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]{1,64})*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)
_DIGITS = re.compile(r"\+?[1-9][0-9]{6,14}")


def email(raw: str) -> str | None:
    """``match.normalise_email(raw)`` for a plain ASCII address, else None."""
    if len(raw) > MAX_STRING:
        return None
    text = raw.strip()
    found = _EMAIL.fullmatch(text)
    if found is None or len(found["local"]) > 64:
        return None
    domain = found["domain"]
    if "--" in domain or domain.rsplit(".", 1)[1].lower() in _SPECIAL:
        return None  # Punycode and reserved names: the full validator decides
    return text.lower()


def phone(raw: str, region: str = "") -> str | None:
    """``match.normalise_phone(raw, region)`` for international digits, else None.

    ``+79001234567`` (or ``79001234567`` when no default region is set) is already E.164 when
    its country code is known, its national part cannot start with a national prefix that
    parsing would strip (nor a leading zero), and the length is possible for the country.
    """
    text = raw.strip()
    if _DIGITS.fullmatch(text) is None or (not text.startswith("+") and region):
        return None
    digits = text.lstrip("+")
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    known, prefix = _national_prefix(country_code)
    if not known or not national or national[0] == "0":
        return None
    if prefix is not None and prefix.match(national):
        return None
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    if not phonenumbers.is_possible_number(number):
        return None
    return "+" + digits


@lru_cache(maxsize=512)
def _national_prefix(country_code: int) -> tuple[bool, re.Pattern[str] | None]:
    """(metadata known, the national prefix parsing would strip, if the country has one)."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return False, None
    pattern = metadata.national_prefix_for_parsing
    return True, re.compile(pattern) if pattern else None
