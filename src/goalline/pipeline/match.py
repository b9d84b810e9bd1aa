"""Match keys and the normalisers behind them (pure; SPEC §2 "Matching").

Emails compare case-insensitively (trimmed, lower-cased); phones compare in E.164; custom field
values compare as the text form of their field's type, and a tags value ``"tag-1, tag-2"``
means "holds every listed tag".
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from goalline.errors import InvalidRequest
from goalline.model import MatchKey
from goalline.pipeline.requests import MatchFields

MATCHING_MODES: tuple[str, ...] = ("email", "email_profile", "phone", "profile_id", "custom")


@lru_cache(maxsize=8192)
def normalise_email(raw: str, path: str = "email") -> str:
    """``" John@Example.COM "`` → ``"john@example.com"``; 400 naming ``path`` when invalid."""
    text = raw.strip()
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidRequest.field(path, f"not a valid email address ({exc})") from None
    return checked.normalized.lower()


@lru_cache(maxsize=8192)
def normalise_phone(raw: str, region: str = "", path: str = "phone") -> str:
    """Any common phone spelling → E.164 (``"+7 (900) 000-00-00"`` → ``"+79000000000"``).

    Without a leading ``+`` the number is read in ``region``'s national format when a region is
    configured, else as international digits (``79000000000``), the form Altcraft clients send.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and not region:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        raise InvalidRequest.field(path, "not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidRequest.field(path, "not a possible phone number for its country code")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def match_key(req: MatchFields, *, phone_region: str = "") -> MatchKey:
    """The normalised key a request matches by; 400 when its mode or identifier is missing."""
    mode = req.matching or "email"
    if mode not in MATCHING_MODES:
        raise InvalidRequest.field("matching", f"must be one of {', '.join(MATCHING_MODES)}")
    if mode in ("email", "email_profile"):
        if req.email is None:
            raise InvalidRequest.field("email", f"required when matching is {mode}")
        return MatchKey("email", "email", normalise_email(req.email))
    if mode == "phone":
        if req.phone is None:
            raise InvalidRequest.field("phone", "required when matching is phone")
        return MatchKey("phone", "phones", normalise_phone(req.phone, phone_region))
    if mode == "profile_id":
        if req.profile_id is None:
            raise InvalidRequest.field("profile_id", "required when matching is profile_id")
        return MatchKey("profile_id", None, req.profile_id.strip())
    if req.field_name is None:
        raise InvalidRequest.field("field_name", "required when matching is custom")
    if req.field_value is None:
        raise InvalidRequest.field("field_value", "required when matching is custom")
    if isinstance(req.field_value, bool):
        raise InvalidRequest.field("field_value", "must be a string or a number")
    value = req.field_value if isinstance(req.field_value, str) else _number_text(req.field_value)
    return MatchKey("custom", req.field_name.strip(), value)


def _number_text(number: int | float) -> str:
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def tags(raw: Any, path: str) -> list[str]:
    """A tags value: a list of strings, or one string of comma-separated tags."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise InvalidRequest.field(path, "tags must be a string or a list of strings")
    out = [t.strip() for t in items if t.strip()]
    for tag in out:
        if len(tag) > 128:
            raise InvalidRequest.field(path, "a tag is longer than 128 characters")
    return sorted(set(out))


def typed_value(field_type: str, raw: Any, path: str) -> Any:
    """A custom field value converted to its field's type (the form stored in the profile)."""
    if field_type == "tags":
        return tags(raw, path)
    if field_type == "string":
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise InvalidRequest.field(path, "must be a string")
        text = raw if isinstance(raw, str) else _number_text(raw)
        if len(text) > 128:
            raise InvalidRequest.field(path, "longer than 128 characters")
        return text
    if field_type == "int":
        return _to_int(raw, path)
    if field_type == "float":
        return _to_float(raw, path)
    if field_type == "bool":
        return _to_bool(raw, path)
    if field_type == "date":
        return _to_date(raw, path)
    raise AssertionError(f"unknown field type {field_type}")


def key_texts(field_type: str, value: Any) -> list[str]:
    """The text keys a typed value is indexed and matched under (one per tag for tags)."""
    if field_type == "tags":
        return list(value)
    if field_type == "bool":
        return ["true" if value else "false"]
    if field_type in ("int", "float"):
        return [_number_text(value)]
    return [str(value)]


def _to_int(raw: Any, path: str) -> int:
    if isinstance(raw, bool):
        raise InvalidRequest.field(path, "must be an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise InvalidRequest.field(path, "must be an integer")


def _to_float(raw: Any, path: str) -> float:
    if not isinstance(raw, bool):
        try:
            value = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            value = math.nan
        if math.isfinite(value):
            return value
    raise InvalidRequest.field(path, "must be a finite number")


def _to_bool(raw: Any, path: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidRequest.field(path, "must be true or false")


def _to_date(raw: Any, path: str) -> str:
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise InvalidRequest.field(path, "must be a date YYYY-MM-DD")
