"""Every setting, declared once: name, type, default, help.

The ``SETTINGS`` table is the only place a setting's name, type, default, environment variable
and help live. It drives the ``serve`` flags (and ``--database`` of the other commands), the
``GOALLINE_*`` environment variables, ``goalline settings`` and docs/configuration.md (a test
keeps the doc in step). ``Settings`` repeats only each name and type, for the type checker; its
defaults are read from the table when a ``Settings`` is made, and an import-time check refuses
a ``Settings`` whose fields drift from the table. Precedence: flag > environment > default.
Nothing here reads the environment at import time.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    secret: bool = False

    @property
    def env(self) -> str:
        return "GOALLINE_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        name="database",
        type=str,
        default="goalline.db",
        help="Where events are stored: a SQLite file path (or sqlite:///path) or a "
        "postgresql://user@host/db URL.",
        secret=True,
    ),
    Setting(name="host", type=str, default="127.0.0.1", help="Interface the HTTP server binds."),
    Setting(name="port", type=int, default=8080, help="TCP port the HTTP server listens on."),
    Setting(
        name="workers",
        type=int,
        default=1,
        help="HTTP worker processes. SQLite serialises writes, so more than one helps only "
        "with PostgreSQL or read-heavy loads.",
    ),
    Setting(
        name="forwarded_allow_ips",
        type=str,
        default="127.0.0.1,::1",
        help="Proxies trusted to name the client: comma-separated addresses or networks (or "
        "*) whose X-Forwarded-For and X-Forwarded-Proto headers set the client's address and "
        "scheme (docs/operations.md). Empty: none; the address is the connection's.",
    ),
    Setting(
        name="error_status",
        type=str,
        default="mirror",
        choices=("mirror", "200"),
        help="HTTP status of error replies: 'mirror' copies the envelope's error code "
        "(400, 401, ...); '200' answers every reply with HTTP 200 for legacy clients that "
        "only read the body.",
    ),
    Setting(
        name="max_body_bytes",
        type=int,
        default=10 * 1024 * 1024,
        help="Largest request body accepted; larger bodies get error 413.",
    ),
    Setting(
        name="max_in_flight",
        type=int,
        default=512,
        help="API requests handled at once per process; beyond it requests get error 503 with "
        "Retry-After instead of queueing without bound.",
    ),
    Setting(
        name="rate_limit",
        type=float,
        default=0.0,
        help="Requests per second allowed per API token and process (bursts up to twice "
        "that); beyond it error 429 with Retry-After. 0 turns the limit off.",
    ),
    Setting(
        name="dedup_window",
        type=int,
        default=86400,
        help="Seconds a data-changing request is remembered: a repeat (same Request-ID header "
        "and token, or same content) gets the original reply and changes nothing. 0 turns "
        "request deduplication off.",
    ),
    Setting(
        name="dedup_cleanup_seconds",
        type=int,
        default=1800,
        help="How often expired request keys are deleted, in small batches.",
    ),
    Setting(
        name="max_future_seconds",
        type=int,
        default=3600,
        help="How far past the server clock an event `date` may lie before it is refused "
        "(allows for client clock skew).",
    ),
    Setting(
        name="geoip_database",
        type=str,
        default="",
        help="A GeoLite2-City or DB-IP City .mmdb file to locate client IPs with. Empty: the "
        "packaged DB-IP City Lite database (CC BY 4.0, see README).",
    ),
    Setting(
        name="default_phone_region",
        type=str,
        default="",
        help="ISO country whose national format is assumed for phone numbers written without "
        "'+' (e.g. RU). Empty: such numbers are read as international digits.",
    ),
    Setting(
        name="sqlite_synchronous",
        type=str,
        default="FULL",
        choices=("FULL", "NORMAL"),
        help="SQLite durability. FULL: an acknowledged event survives power loss. NORMAL: "
        "survives a process crash, may lose the last transactions on power loss.",
    ),
    Setting(
        name="write_batch",
        type=int,
        default=256,
        help="Most units of work (requests) committed in one transaction by group commit.",
    ),
    Setting(
        name="write_queue",
        type=int,
        default=4096,
        help="Most units of work waiting for a writer per process; beyond it writes get error "
        "503 with Retry-After.",
    ),
    Setting(
        name="pg_pool_size",
        type=int,
        default=8,
        help="Most PostgreSQL connections per process: the writers' and the readers'.",
    ),
    Setting(
        name="pg_writers",
        type=int,
        default=3,
        help="PostgreSQL writer threads per process, each committing one group of requests at "
        "a time on its own connection (the rest of the pool serves reads). More help only "
        "when the database is far away; on one host 3 balanced 1-goal and 100-goal requests "
        "best (docs/performance.md).",
    ),
    Setting(
        name="log_level",
        type=str,
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="Least severe log level written.",
    ),
    Setting(
        name="pg_connect_timeout",
        type=int,
        default=3,
        help="Seconds a PostgreSQL connection may take to open, and a request may wait for "
        "one, before it gets error 503 (libpq counts anything below 2 as 2).",
    ),
    Setting(
        name="storage_probe_seconds",
        type=float,
        default=1.0,
        help="While storage is unreachable, how often one connection attempt checks whether "
        "it is back. Meanwhile every request gets error 503 at once, with a Retry-After of "
        "this many seconds, rounded up.",
    ),
    Setting(
        name="max_goals",
        type=int,
        default=1000,
        help="Most goals one goals/register request may name (`goal` and the items of "
        "`goals[]` together); more is error 400.",
    ),
    Setting(
        name="max_batch_items",
        type=int,
        default=10000,
        help="Most items one profiles/import_batch request may carry; more is error 400.",
    ),
    Setting(
        name="max_json_depth",
        type=int,
        default=32,
        help="Deepest nesting of objects and arrays in a JSON body, the top-level object being "
        "level 1, ignored keys included; deeper is error 400.",
    ),
    Setting(
        name="max_xml_depth",
        type=int,
        default=32,
        help="Deepest nesting of elements in an XML body, `<xml>` being level 1; deeper is "
        "error 400.",
    ),
    Setting(
        name="max_register_body_bytes",
        type=int,
        default=2 * 1024 * 1024,
        help="Largest goals/register body (1,000 goals with long names fit in under 1 MiB); "
        "larger bodies get error 413, before they are read when Content-Length says so. "
        "max_body_bytes caps it.",
    ),
    Setting(
        name="max_other_body_bytes",
        type=int,
        default=256 * 1024,
        help="Largest body of the methods that carry one profile or a query (all but "
        "goals/register and profiles/import_batch, which take max_body_bytes); larger "
        "bodies get error 413.",
    ),
    Setting(
        name="body_buffer_bytes",
        type=int,
        default=128 * 1024 * 1024,
        help="Most bytes of request bodies one process holds at once, being read or handled; "
        "a body that would pass it gets error 503 with Retry-After.",
    ),
    Setting(
        name="offload_body_bytes",
        type=int,
        default=256 * 1024,
        help="Bodies larger than this are decoded on a worker thread instead of the event "
        "loop, so a large request does not stall small ones.",
    ),
    Setting(
        name="offload_threads",
        type=int,
        default=1,
        help="Most large bodies decoded at once per process (each holds its decoded request "
        "in memory); the others wait their turn. 0 decodes every body on the event loop.",
    ),
    Setting(
        name="max_header_bytes",
        type=int,
        default=16 * 1024,
        help="Largest request line plus headers; beyond it error 400 and the connection is "
        "closed. Counted before parsing, so a larger head costs no memory.",
    ),
    Setting(
        name="max_headers",
        type=int,
        default=100,
        help="Most header lines in a request; beyond it error 400 and the connection is closed.",
    ),
    Setting(
        name="header_timeout",
        type=float,
        default=10.0,
        help="Seconds a request's line and headers may take from its first byte; then error "
        "400 and the connection is closed. 0 turns the deadline off.",
    ),
    Setting(
        name="body_timeout",
        type=float,
        default=30.0,
        help="Seconds a request's body may take to arrive after its headers; then error 400 "
        "and the connection is closed, so slow clients hold no server resources for longer. "
        "0 turns the deadline off.",
    ),
    Setting(
        name="keep_alive_timeout",
        type=float,
        default=5.0,
        help="Seconds a connection may stay idle: a new one before its first request, or "
        "one between requests; then it is closed.",
    ),
    Setting(
        name="token_warning_seconds",
        type=int,
        default=3600,
        help="The deprecation warning for a ?token= query parameter is logged once per token "
        "per this many seconds (for at most 1,024 tokens at a time).",
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def _default(name: str) -> Any:
    """A ``Settings`` field defaulting to the table's ``name`` row, read each time a Settings is
    made (so a changed table default is the one used)."""
    return dataclasses.field(
        default_factory=lambda: BY_NAME[name].default, metadata={"setting": name}
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The effective settings. Fields: one per row of ``SETTINGS``, in its order, with its type;
    ``check_fields`` (run at import) keeps them so."""

    database: str = _default("database")
    host: str = _default("host")
    port: int = _default("port")
    workers: int = _default("workers")
    forwarded_allow_ips: str = _default("forwarded_allow_ips")
    error_status: str = _default("error_status")
    max_body_bytes: int = _default("max_body_bytes")
    max_in_flight: int = _default("max_in_flight")
    rate_limit: float = _default("rate_limit")
    dedup_window: int = _default("dedup_window")
    dedup_cleanup_seconds: int = _default("dedup_cleanup_seconds")
    max_future_seconds: int = _default("max_future_seconds")
    geoip_database: str = _default("geoip_database")
    default_phone_region: str = _default("default_phone_region")
    sqlite_synchronous: str = _default("sqlite_synchronous")
    write_batch: int = _default("write_batch")
    write_queue: int = _default("write_queue")
    pg_pool_size: int = _default("pg_pool_size")
    pg_writers: int = _default("pg_writers")
    log_level: str = _default("log_level")
    pg_connect_timeout: int = _default("pg_connect_timeout")
    storage_probe_seconds: float = _default("storage_probe_seconds")
    max_goals: int = _default("max_goals")
    max_batch_items: int = _default("max_batch_items")
    max_json_depth: int = _default("max_json_depth")
    max_xml_depth: int = _default("max_xml_depth")
    max_register_body_bytes: int = _default("max_register_body_bytes")
    max_other_body_bytes: int = _default("max_other_body_bytes")
    body_buffer_bytes: int = _default("body_buffer_bytes")
    offload_body_bytes: int = _default("offload_body_bytes")
    offload_threads: int = _default("offload_threads")
    max_header_bytes: int = _default("max_header_bytes")
    max_headers: int = _default("max_headers")
    header_timeout: float = _default("header_timeout")
    body_timeout: float = _default("body_timeout")
    keep_alive_timeout: float = _default("keep_alive_timeout")
    token_warning_seconds: int = _default("token_warning_seconds")

    def __repr__(self) -> str:  # the database URL may carry a password
        shown = {
            f.name: ("***" if BY_NAME[f.name].secret else getattr(self, f.name))
            for f in dataclasses.fields(self)
        }
        return f"Settings({shown})"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def as_env(self) -> dict[str, str]:
        """The settings as GOALLINE_* variables, for worker processes started by uvicorn."""
        return {BY_NAME[f.name].env: str(getattr(self, f.name)) for f in dataclasses.fields(self)}


class SettingError(ValueError):
    """A setting's value cannot be used; the message names the setting and the value."""


def convert(setting: Setting, raw: Any) -> Any:
    """Cast ``raw`` to the setting's type, naming key and value when it cannot."""
    try:
        value = setting.type(raw)
    except (TypeError, ValueError):
        raise SettingError(f"{setting.env}={raw!r}: expected {setting.type.__name__}") from None
    if setting.choices:
        match = {c.lower(): c for c in setting.choices}.get(str(value).lower())
        if match is None:
            raise SettingError(
                f"{setting.env}={raw!r}: expected one of {', '.join(setting.choices)}"
            )
        value = match
    if setting.type in (int, float) and value < 0:
        raise SettingError(f"{setting.env}={raw!r}: must not be negative")
    return value


def load(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings: ``overrides`` (flags; None values ignored) > ``environ`` > defaults."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if overrides.get(setting.name) is not None:
            values[setting.name] = convert(setting, overrides[setting.name])
        elif setting.env in environ:
            values[setting.name] = convert(setting, environ[setting.env])
        else:
            values[setting.name] = setting.default
    return Settings(**values)


def markdown_table() -> str:
    """The settings table of docs/configuration.md (scripts/sync-docs rewrites it from here)."""
    rows = ["| flag | environment variable | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        choices = f" One of: {', '.join(s.choices)}." if s.choices else ""
        rows.append(f"| `{s.flag}` | `{s.env}` | `{s.default}` | {s.help}{choices} |")
    return "\n".join(rows)


def check_fields(cls: type[Any] = Settings) -> None:
    """Raise TypeError unless ``cls`` (a dataclass) has exactly the table's settings: the same
    names in the same order, each annotated with its row's type and defaulting to its row
    through ``_default``; and unless every row's default is a valid value of its setting."""
    for s in SETTINGS:
        try:
            valid = convert(s, s.default) == s.default and type(s.default) is s.type
        except SettingError:
            valid = False
        if not valid:
            one_of = f" (one of {', '.join(s.choices)})" if s.choices else ""
            raise TypeError(
                f"SETTINGS: {s.name}'s default {s.default!r} is not a valid "
                f"{s.type.__name__}{one_of}"
            )
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    table = [s.name for s in SETTINGS]
    if names != table:
        missing = [n for n in table if n not in names]
        extra = [n for n in names if n not in table]
        differences = [f"missing {missing}"] if missing else []
        differences += [f"not in the table {extra}"] if extra else []
        raise TypeError(
            f"{cls.__name__} fields differ from SETTINGS: "
            + ("; ".join(differences) or "the same names in another order")
        )
    hints = typing.get_type_hints(cls)
    for f in fields:
        s = BY_NAME[f.name]
        if hints[f.name] is not s.type:
            raise TypeError(
                f"{cls.__name__}.{f.name} is annotated {hints[f.name]!r}; SETTINGS says "
                f"{s.type.__name__}"
            )
        if f.metadata.get("setting") != f.name:
            raise TypeError(
                f"{cls.__name__}.{f.name} must default to the table: "
                f"{f.name}: {s.type.__name__} = _default({f.name!r})"
            )


check_fields()
