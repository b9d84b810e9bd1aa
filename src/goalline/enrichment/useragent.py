"""User agent → browser, os and device type, mapped onto a curated dictionary.

Parsing uses ua-parser 1.x with the uap-core rules from ``ua-parser-builtins`` and the native
``ua-parser-rs`` accelerator (about 12 µs a miss; the pure-Python regexes take 0.5 to 15 ms). The
accelerator is required and imported explicitly: without it this module fails to import rather
than silently getting a hundred times slower. Strings are truncated to :data:`MAX_LENGTH`
characters before parsing, and :func:`parse` keeps an LRU cache of 8,192 results in front
(about 0.1 µs a hit).

ua-parser reports browser and OS *families* (an open set, some filled from the UA text) and a
device family/brand/model but no device *type*. This module maps them onto closed value lists,
which are exactly what ``/v1.1/dictionary`` returns for ``browsers``, ``oses`` and ``devices``:

Browsers (:data:`BROWSERS`)
    One value per product, **not** per form factor: "Chrome Mobile" and "Chrome Mobile iOS"
    (CriOS) are "Chrome", "Mobile Safari" is "Safari", "Firefox Mobile"/"Firefox iOS" are
    "Firefox", "Edge Mobile" is "Edge", "Opera Mobile"/"Opera GX"/"Opera Touch" are "Opera",
    "IE"/"IE Mobile" are "Internet Explorer". The device field already says phone or tablet and
    the os field says iOS or Android. Products that really differ keep their own value: "Opera
    Mini" (proxy browser), "Samsung Internet", "Yandex Browser", "Android Browser" (the old AOSP
    browser), "Android WebView" ("Chrome Mobile WebView", and any Android UA carrying the ``; wv``
    WebView marker, such as the seed's truncated ``SM-G935S … wv`` string), "iOS WebView"
    (WKWebView in apps), in-app browsers (Facebook, Instagram, …), mail clients (Thunderbird,
    Outlook, Apple Mail, Gmail Image Proxy) and well-known crawlers and HTTP tools (Googlebot,
    YandexBot, curl, Python Requests, …). Any other family ua-parser recognises is "Other".
OSes (:data:`OSES`)
    "Windows" (all versions), "macOS" (uap-core says "Mac OS X"), "iOS" (iPadOS included),
    "Android", "Linux" plus the distributions the UA names ("Ubuntu", "Debian", "Fedora", …),
    "Chrome OS", TV and device platforms ("Tizen", "webOS", "tvOS", "watchOS", "Roku OS"), and
    console platforms ("PlayStation", "Xbox", "Nintendo"; an Xbox says Windows but is reported
    as "Xbox"). Any other family is "Other".
Devices (:data:`DEVICES`)
    Derived by rules over the UA text and the parsed families, first match wins:

    1. "Bot": ua-parser's device family "Spider" (crawlers), or a scripted HTTP client or
       headless browser (curl, Wget, Python Requests, Go HTTP Client, Headless Chrome, …);
    2. "Console": ``xbox``, ``playstation``, ``nintendo``; then Windows and macOS are
       "Desktop" (an iPad asking for the desktop site is indistinguishable from a Mac) and iOS
       is "Tablet" with ``ipad``, else "Smartphone";
    3. "TV": TV tokens (``smart-tv``, ``smarttv``, ``hbbtv``, ``web0s``, ``crkey``, ``apple tv``,
       ``roku``, ``bravia``, ``android tv``, Fire TV models ``AFTxx``, …) or OS tvOS;
    4. "Wearable": Apple Watch / Wear OS, and VR headsets (Oculus/Meta Quest);
    5. "Tablet": ``ipad``, ``tablet`` (not ``Tablet PC``), ``kindle``, ``silk/``, ``playbook``,
       Samsung ``SM-T/X/P`` and Fire ``KFxx`` models, or an Android WebKit UA without
       ``mobile`` (Chrome's convention for tablets; the seed's truncated WebView string has no
       ``AppleWebKit`` and stays a phone);
    6. "Smartphone": ``mobile``, ``iphone``, ``ipod``, ``; wv)``, or a mobile OS (iOS, Android,
       Windows Phone, KaiOS, …);
    7. "Desktop": a desktop OS (Windows, macOS, Linux and distributions, Chrome OS, BSDs);
    8. "Other": ua-parser recognised something but none of the above applies; also mail image
       proxies (Gmail, Yahoo), whose UA names a fake OS (their os is ``None``).

A value is ``None`` only when nothing is known: for the empty string and for text in which
ua-parser recognises no browser, OS or device (garbage), all three are ``None``; a browser-less
UA of a known device (an Apple TV media player, a PlayStation 4) has browser ``None``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ua_parser import load_lazy_builtins
from ua_parser.regex import Resolver as _RegexResolver  # imports ua_parser_rs: fail, don't crawl

__all__ = ["BROWSERS", "DEVICES", "MAX_LENGTH", "OSES", "UserAgentInfo", "parse", "warm_up"]

#: UAs are cut to this many characters before parsing (a guard against pathological input).
MAX_LENGTH = 512


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """Browser, OS and device type derived from one user agent string.

    Attributes
    ----------
    browser : str or None
        A member of :data:`BROWSERS`, or ``None`` when no browser was recognised.
    os : str or None
        A member of :data:`OSES`, or ``None`` when no OS was recognised.
    device : str or None
        A member of :data:`DEVICES`, or ``None`` when nothing at all was recognised.
    """

    browser: str | None
    os: str | None
    device: str | None


#: ua-parser browser family (lower case) → dictionary value.
_BROWSER_MAP: dict[str, str] = {
    # Chromium family
    "chrome": "Chrome",
    "chrome mobile": "Chrome",
    "chrome mobile ios": "Chrome",
    "chromium": "Chromium",
    "headlesschrome": "Headless Chrome",
    "edge": "Edge",
    "edge mobile": "Edge",
    "opera": "Opera",
    "opera mobile": "Opera",
    "opera gx": "Opera",
    "opera touch": "Opera",
    "opera coast": "Opera",
    "opera neon": "Opera",
    "opera mini": "Opera Mini",
    "yandex browser": "Yandex Browser",
    "samsung internet": "Samsung Internet",
    "brave": "Brave",
    "vivaldi": "Vivaldi",
    "whale": "Whale",
    "coc coc": "Coc Coc",
    "atom browser": "Atom",
    "sber browser": "Sber Browser",
    "mail.ru chromium browser": "Mail.ru Browser",
    "uc browser": "UC Browser",
    "miuibrowser": "Mi Browser",
    "mint browser": "Mi Browser",
    "huawei browser": "Huawei Browser",
    "honor browser": "Huawei Browser",
    "heytap browser": "HeyTap Browser",
    "qq browser": "QQ Browser",
    "qq browser mobile": "QQ Browser",
    "qq browser mini": "QQ Browser",
    "baidu browser": "Baidu Browser",
    "baidu explorer": "Baidu Browser",
    "sogou explorer": "Sogou Explorer",
    "360 secure browser": "360 Secure Browser",
    "duckduckgo": "DuckDuckGo",
    "duckduckgo mobile": "DuckDuckGo",
    "amazon silk": "Amazon Silk",
    "oculus browser": "Oculus Browser",
    "maxthon": "Maxthon",
    "seznam prohlížeč": "Seznam Browser",
    "electron": "Electron",
    # Firefox family
    "firefox": "Firefox",
    "firefox mobile": "Firefox",
    "firefox ios": "Firefox",
    "firefox beta": "Firefox",
    "firefox alpha": "Firefox",
    "firefox (nightly)": "Firefox",
    "firefox (minefield)": "Firefox",
    "firefox (shiretoko)": "Firefox",
    "firefox (namoroka)": "Firefox",
    "pale moon": "Pale Moon",
    "waterfox": "Waterfox",
    # WebKit / others
    "safari": "Safari",
    "mobile safari": "Safari",
    "mobile safari ui/wkwebview": "iOS WebView",
    "chrome mobile webview": "Android WebView",
    "android": "Android Browser",
    "epiphany": "Epiphany",
    "konqueror": "Konqueror",
    "ie": "Internet Explorer",
    "ie mobile": "Internet Explorer",
    "ie large screen": "Internet Explorer",
    "tizen browser": "Tizen Browser",
    # in-app browsers
    "facebook": "Facebook",
    "facebook messenger": "Facebook",
    "instagram": "Instagram",
    "telegram": "Telegram",
    "wechat browser": "WeChat",
    "line": "LINE",
    "tiktok": "TikTok",
    "twitter": "Twitter",
    # mail clients and image proxies (pixel opens)
    "thunderbird": "Thunderbird",
    "outlook": "Outlook",
    "apple mail": "Apple Mail",
    "windows live mail": "Outlook",
    "gmailimageproxy": "Gmail Image Proxy",
    "yahoomailproxy": "Yahoo Mail Proxy",
    # crawlers
    "googlebot": "Googlebot",
    "bingbot": "Bingbot",
    "yandexbot": "YandexBot",
    "applebot": "Applebot",
    "baiduspider": "Baiduspider",
    "duckduckbot": "DuckDuckBot",
    "facebookbot": "FacebookBot",
    "gptbot": "GPTBot",
    # scripted HTTP clients
    "curl": "curl",
    "wget": "Wget",
    "python requests": "Python Requests",
    "python aiohttp": "Python aiohttp",
    "go-http-client": "Go HTTP Client",
    "okhttp": "OkHttp",
}

#: Browser values whose device is "Bot": automation, not a person at a screen.
_AUTOMATION = frozenset(
    {"Headless Chrome", "curl", "Wget", "Python Requests", "Python aiohttp", "Go HTTP Client"}
)

#: Browser values fetching on a person's behalf from a server: OS unknown, device "Other".
_PROXIES = frozenset({"Gmail Image Proxy", "Yahoo Mail Proxy"})

#: ua-parser OS family (lower case) → dictionary value.
_OS_MAP: dict[str, str] = {
    "windows": "Windows",
    "mac os x": "macOS",
    "mac os": "macOS",
    "ios": "iOS",
    "android": "Android",
    "linux": "Linux",
    "ubuntu": "Ubuntu",
    "kubuntu": "Ubuntu",
    "lubuntu": "Ubuntu",
    "debian": "Debian",
    "fedora": "Fedora",
    "red hat": "Red Hat",
    "centos": "CentOS",
    "opensuse": "openSUSE",
    "suse": "openSUSE",
    "arch linux": "Arch Linux",
    "linux mint": "Linux Mint",
    "gentoo": "Gentoo",
    "slackware": "Linux",
    "mandriva": "Linux",
    "mageia": "Linux",
    "pclinuxos": "Linux",
    "puppy": "Linux",
    "backtrack": "Linux",
    "chrome os": "Chrome OS",
    "freebsd": "FreeBSD",
    "openbsd": "OpenBSD",
    "netbsd": "NetBSD",
    "bsd": "FreeBSD",
    "solaris": "Solaris",
    "windows phone": "Windows Phone",
    "windows mobile": "Windows Phone",
    "blackberry os": "BlackBerry OS",
    "blackberry tablet os": "BlackBerry OS",
    "symbian os": "Symbian",
    "symbian^3": "Symbian",
    "symbian^3 anna": "Symbian",
    "symbian^3 belle": "Symbian",
    "kaios": "KaiOS",
    "firefox os": "Firefox OS",
    "sailfish": "Sailfish OS",
    "harmonyos": "HarmonyOS",
    "tizen": "Tizen",
    "webos": "webOS",
    "web0s": "webOS",
    "atv os x": "tvOS",
    "tvos": "tvOS",
    "watchos": "watchOS",
    "roku": "Roku OS",
    "chromecast android": "Android",
    "chromecast linux": "Linux",
    "chromecast fuchsia": "Fuchsia",
    "googletv": "Android",
}

#: OS values set from console tokens (an Xbox UA says Windows, a PlayStation names no OS).
_CONSOLE_OSES = frozenset({"Xbox", "PlayStation", "Nintendo"})

BROWSERS: tuple[str, ...] = (
    *sorted(set(_BROWSER_MAP.values()), key=str.casefold),
    "Other",
)
"""Every browser value :func:`parse` can return, alphabetical, "Other" last."""

OSES: tuple[str, ...] = (
    *sorted(set(_OS_MAP.values()) | _CONSOLE_OSES, key=str.casefold),
    "Other",
)
"""Every OS value :func:`parse` can return, alphabetical, "Other" last."""

DEVICES: tuple[str, ...] = (
    "Desktop",
    "Smartphone",
    "Tablet",
    "TV",
    "Console",
    "Wearable",
    "Bot",
    "Other",
)
"""Every device value :func:`parse` can return."""

_MOBILE_OSES = frozenset(
    {
        "iOS",
        "Android",
        "Windows Phone",
        "BlackBerry OS",
        "Symbian",
        "KaiOS",
        "Firefox OS",
        "Sailfish OS",
        "HarmonyOS",
    }
)
_DESKTOP_OSES = frozenset(
    {
        "Windows",
        "macOS",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "CentOS",
        "openSUSE",
        "Arch Linux",
        "Linux Mint",
        "Gentoo",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)

# Device rules run on the lower-cased, truncated UA. Python's ``re`` scans an alternation at
# every position (100 µs on 512 bytes of garbage), so tokens are plain substring tests and the
# few real patterns only run when a cheap substring gate is present.
_CONSOLE_TOKENS = (("xbox", "Xbox"), ("playstation", "PlayStation"), ("nintendo", "Nintendo"))
_TV_TOKENS = (
    "smart-tv",
    "smarttv",
    "hbbtv",
    "web0s",
    "netcast",
    "crkey",
    "appletv",
    "apple tv",
    "roku",
    "bravia",
    "googletv",
    "google tv",
    "androidtv",
    "android tv",
    " tv safari",
    "viera/",
    "aquos",
    "philipstv",
    "nettv/",
    "inettv",
)
_TV_PATTERNS = (("aft", re.compile(r";\s*aft[a-z]{1,4}\b")),)  # Amazon Fire TV models
_WEARABLE_TOKENS = ("apple watch", "watchos", "wear os", "wearos", "oculusbrowser")
_WEARABLE_PATTERNS = (("quest", re.compile(r"\bquest (?:[1-9]|pro)\b")),)
_TABLET_TOKENS = ("ipad", "kindle", "silk/", "playbook")
_TABLET_PATTERNS = (
    ("tablet", re.compile(r"tablet(?! pc)")),  # not old IE's "Tablet PC 2.0" on desktops
    ("sm-", re.compile(r"\bsm-[tpx]\d")),  # Samsung Galaxy Tab models
    ("kf", re.compile(r"\bkf[a-z]{2,5}\b")),  # Amazon Fire tablet models
)
_PHONE_TOKENS = ("mobile", "iphone", "ipod", "; wv)")
_OS_TOKENS = (
    (("tizen",), "Tizen"),
    (("openharmony", "harmonyos"), "HarmonyOS"),
    (("watchos", "apple watch"), "watchOS"),
)


def _has(ua: str, tokens: tuple[str, ...]) -> bool:
    for token in tokens:  # noqa: SIM110 - a plain loop is ~30% faster than any(<genexpr>)
        if token in ua:
            return True
    return False


def _matches(ua: str, patterns: tuple[tuple[str, re.Pattern[str]], ...]) -> bool:
    for gate, pattern in patterns:  # noqa: SIM110 - see _has
        if gate in ua and pattern.search(ua):
            return True
    return False


def _console(ua: str) -> str | None:
    for token, name in _CONSOLE_TOKENS:
        if token in ua:
            return name
    return None


@functools.cache
def _resolver() -> _RegexResolver:
    """Build the ua-parser-rs extractors over the uap-core rules, once.

    :func:`_classify` calls the resolver's three native extractors (``.ua``, ``.os``, ``.de``)
    directly: going through ``Resolver.__call__`` adds ~9 µs of ``enum.Flag`` tests and result
    objects per miss, doubling its cost.
    """
    return _RegexResolver(load_lazy_builtins())


def _device(
    ua: str, browser: str | None, os: str | None, family: str | None, known: bool
) -> str | None:
    if family == "Spider" or browser in _AUTOMATION:
        return "Bot"
    if browser in _PROXIES:
        return "Other"
    if os in _CONSOLE_OSES:
        return "Console"
    if os == "Windows" or os == "macOS":  # fast path for most traffic: no TV/tablet forms
        return "Desktop"
    if os == "iOS":
        return "Tablet" if "ipad" in ua else "Smartphone"
    if os == "tvOS" or _has(ua, _TV_TOKENS) or _matches(ua, _TV_PATTERNS):
        return "TV"
    if os == "watchOS" or _has(ua, _WEARABLE_TOKENS) or _matches(ua, _WEARABLE_PATTERNS):
        return "Wearable"
    if (
        _has(ua, _TABLET_TOKENS)
        or _matches(ua, _TABLET_PATTERNS)
        or (os == "Android" and "mobile" not in ua and "applewebkit" in ua)
    ):
        return "Tablet"
    if os in _MOBILE_OSES or _has(ua, _PHONE_TOKENS):
        return "Smartphone"
    if os in _DESKTOP_OSES:
        return "Desktop"
    return "Other" if known else None


def _classify(user_agent: str) -> UserAgentInfo:
    ua = user_agent[:MAX_LENGTH]
    if not ua.strip():
        return UserAgentInfo(None, None, None)
    resolver = _resolver()
    lower = ua.lower()
    try:
        ua_match = resolver.ua.extract(ua)
    except UnicodeEncodeError:  # lone surrogates (JSON "\ud800") cannot cross into Rust
        return _classify(ua.encode("utf-8", "replace").decode("utf-8"))
    os_match = resolver.os.extract(ua)
    device_match = resolver.de.extract(ua)
    ua_family: str | None = ua_match.family if ua_match else None
    os_family: str | None = os_match.family if os_match else None
    device_family: str | None = device_match.family if device_match else None

    browser: str | None = None
    if ua_family:
        browser = _BROWSER_MAP.get(ua_family.lower(), "Other")
        if browser == "Android Browser" and "; wv" in lower:
            browser = "Android WebView"

    os: str | None = None
    if os_family:
        os = _OS_MAP.get(os_family.lower(), "Other")
    if browser in _PROXIES:
        os = None  # the proxy's UA claims an OS it does not run on
    elif console := _console(lower):
        os = console
    elif os is None or os == "Other":
        for tokens, name in _OS_TOKENS:
            if _has(lower, tokens):
                os = name
                break

    known = bool(ua_family or os_family or device_family)
    return UserAgentInfo(browser, os, _device(lower, browser, os, device_family, known))


def warm_up() -> None:
    """Compile the uap-core rules now (~0.3 s) instead of on the first :func:`parse` miss."""
    _resolver()


@functools.lru_cache(maxsize=8192)
def parse(user_agent: str) -> UserAgentInfo:
    """Derive browser, OS and device type from a ``User-Agent`` string.

    Parameters
    ----------
    user_agent : str
        The raw header value; only its first :data:`MAX_LENGTH` characters are parsed.

    Returns
    -------
    UserAgentInfo
        Values from :data:`BROWSERS`, :data:`OSES` and :data:`DEVICES`, each ``None`` when
        nothing is known (empty or unrecognisable input gives all three ``None``).

    Notes
    -----
    Results are cached (``functools.lru_cache``, 8,192 entries, about 2.5 MiB; a site's
    traffic comes from far fewer distinct User-Agents; ``parse.cache_info()``).
    Never raises for a ``str`` argument: an unexpected parser failure yields all ``None``.
    """
    try:
        return _classify(user_agent)
    except Exception:  # the parser is third-party native code; a bad UA must not fail a request
        return UserAgentInfo(None, None, None)
