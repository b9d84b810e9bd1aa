"""Value lists behind ``/v1.1/dictionary`` and the validation of explicit enrichment fields.

``browsers``, ``oses`` and ``devices`` are exactly the values :func:`goalline.enrichment.useragent.
parse` can produce; ``tz`` is every IANA time zone name the installed tz database knows (what
:mod:`zoneinfo` can load, minus the placeholder ``Factory``); ``languages`` is every ISO 639-1
two-letter code known to ``pycountry``. Lookups by :func:`canonical` are case-insensitive and
return the dictionary's own spelling, so ``"chrome"`` is stored as ``"Chrome"`` and
``"europe/moscow"`` as ``"Europe/Moscow"``.
"""

from __future__ import annotations

import functools
import zoneinfo

from goalline.enrichment import useragent

__all__ = ["NAMES", "canonical", "values"]

NAMES: tuple[str, ...] = ("browsers", "oses", "devices", "tz", "languages")
"""Dictionary names accepted by :func:`values` and :func:`canonical`."""

#: zoneinfo keys that are not time zones a client can be in.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


def _time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones() - _NOT_ZONES))


def _languages() -> tuple[str, ...]:
    import pycountry  # ~50 ms of JSON loading; only when the dictionary is first used

    return tuple(
        sorted({lang.alpha_2 for lang in pycountry.languages if getattr(lang, "alpha_2", None)})
    )


@functools.cache
def values(name: str) -> tuple[str, ...]:
    """Return the valid values of one dictionary.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.

    Returns
    -------
    tuple of str
        The values in their canonical spelling: browsers, OSes and devices in the order of
        :mod:`goalline.enrichment.useragent` ("Other" last), time zones and language codes
        sorted.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`NAMES`.
    """
    if name == "browsers":
        return useragent.BROWSERS
    if name == "oses":
        return useragent.OSES
    if name == "devices":
        return useragent.DEVICES
    if name == "tz":
        return _time_zones()
    if name == "languages":
        return _languages()
    raise ValueError(f"unknown dictionary {name!r}; expected one of {', '.join(NAMES)}")


@functools.cache
def _index(name: str) -> dict[str, str]:
    return {value.casefold(): value for value in values(name)}


def canonical(name: str, value: str) -> str | None:
    """Look a value up in a dictionary, ignoring case.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.
    value : str
        The value as a client sent it.

    Returns
    -------
    str or None
        The dictionary's spelling of ``value`` (``"CHROME"`` → ``"Chrome"``), or ``None`` when
        the dictionary has no such value.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`NAMES`.

    Notes
    -----
    O(1): each dictionary's case-folded index is built once, on first use.
    """
    return _index(name).get(value.casefold())
