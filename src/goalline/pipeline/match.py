"""Match keys and the normalisers behind them (pure; SPEC §2 "Matching").

Emails compare case-insensitively (trimmed, lower-cased); phones compare in E.164; custom field
values compare as the text form of their field's type, and a tags value ``"tag-1, tag-2"``
means "holds every listed tag".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from goalline.errors import InvalidRequest
from goalline.model import MatchKey
from goalline.pipeline.requests import INT64_MAX, INT64_MIN, MatchFields

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


def match_key(
    req: MatchFields,
    *,
    phone_region: str = "",
    data: Mapping[str, Any] | None = None,
    clean: bool = False,
) -> MatchKey:
    """The normalised key a request matches by; 400 when its mode or identifier is missing.

    The one match-key function of every method (goals/register, profiles/import and
    import_batch, profiles/get, subscribers/history_get). With ``data`` (a profile's data, as
    profiles/import and import_batch carry it), an identifier that is not given is read from
    it: the email, the first of ``phones``, the custom field — real clients send both shapes
    (shared/research/clients.md C, D). ``clean``: ``data`` is already checked and normalised
    (import_batch cleans its items first), so an email or phone read from it is used as it is.
    """
    mode = req.matching or "email"
    if mode not in MATCHING_MODES:
        raise InvalidRequest.field("matching", f"must be one of {', '.join(MATCHING_MODES)}")
    if mode in ("email", "email_profile"):
        email = req.email if req.email is not None else _text_from_data(data, "email")
        if email is None:
            raise InvalidRequest.field("email", f"required when matching is {mode}")
        if clean and req.email is None:
            return MatchKey("email", "email", email)
        return MatchKey("email", "email", normalise_email(email))
    if mode == "phone":
        phone = req.phone if req.phone is not None else _text_from_data(data, "phones")
        if phone is None:
            raise InvalidRequest.field("phone", "required when matching is phone")
        if clean and req.phone is None:
            return MatchKey("phone", "phones", phone)
        return MatchKey("phone", "phones", normalise_phone(phone, phone_region))
    if mode == "profile_id":
        if req.profile_id is None:
            raise InvalidRequest.field("profile_id", "required when matching is profile_id")
        return MatchKey("profile_id", None, req.profile_id.strip())
    if req.field_name is None:
        raise InvalidRequest.field("field_name", "required when matching is custom")
    name = req.field_name.strip()
    value = req.field_value if req.field_value is not None else _from_data(data, name)
    if value is None:
        raise InvalidRequest.field("field_value", "required when matching is custom")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidRequest.field("field_value", "must be a string or a number")
    text = value if isinstance(value, str) else _number_text(value)
    return MatchKey("custom", name, text)


def _from_data(data: Mapping[str, Any] | None, name: str) -> Any:
    """An identifier read from profile data: a list gives its first phone, or its tags as
    ``"tag-1, tag-2"``; a value of another type is refused by the caller's checks."""
    value = None if data is None else data.get(name)
    if isinstance(value, list):
        if name == "phones":
            return value[0] if value else None
        return ", ".join(str(v) for v in value) if value else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _text_from_data(data: Mapping[str, Any] | None, name: str) -> str | None:
    value = _from_data(data, name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest.field(f"data.{name}", "must be a string")
    return value


def key_texts_for(key: MatchKey, fields: Mapping[str, str], db_id: int) -> list[str]:
    """The text keys ``key`` searches, once the database's ``fields`` are known: the key
    itself, or a custom value as its field's type indexes it (one per tag for tags)."""
    if key.kind != "custom":
        return [key.value]
    assert key.field is not None
    field_type = fields.get(key.field)
    if field_type is None:
        raise InvalidRequest.field("field_name", f"database {db_id} has no field {key.field!r}")
    texts = key_texts(field_type, typed_value(field_type, key.value, "field_value"))
    if not texts:
        raise InvalidRequest.field("field_value", "holds no tag to match by")
    return texts


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
        if isinstance(raw, float) and not math.isfinite(raw):
            raise InvalidRequest.field(path, "must be a string or a finite number")
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
    """An int field's value: what a signed 64-bit column holds, like every integer of a request
    (pipeline/requests.py), so its JSON text and its index key are always writable."""
    value: int | None = None
    if isinstance(raw, bool):
        pass
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and len(raw) <= 128:  # no longer text is a 64-bit integer
        with contextlib.suppress(ValueError):
            value = int(raw.strip())
    if value is None:
        raise InvalidRequest.field(path, "must be an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidRequest.field(path, f"must be between {INT64_MIN} and {INT64_MAX}")
    return value


def _to_float(raw: Any, path: str) -> float:
    if not isinstance(raw, bool):
        try:
            value = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int past 1e308
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
