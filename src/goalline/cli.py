"""The ``goalline`` command: serve (the default), demo, migrate, settings, admin commands,
import, prune and backup."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import logging
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import msgspec

from goalline import __version__, demo
from goalline.model import FIELD_TYPES, POLICIES, iso_utc
from goalline.pipeline import admin
from goalline.progress import count_bar
from goalline.settings import BY_NAME, SETTINGS, Setting, SettingError, Settings, load
from goalline.storage.store import Store

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = """\b
Examples:
  goalline serve --demo                  try it: demo data in ./{demo}
  goalline serve                         serve the API on ./{database}
  goalline db create Shop                create database "Shop"
  goalline pixel create Site --db 1      a pixel bound to database 1
  goalline token create backend --db 1   a token for database 1 (shown once)

Every setting is also read from a GOALLINE_* variable: see `goalline settings`.
"""


def _now() -> str:
    return iso_utc(dt.datetime.now(dt.UTC))


def _settings(**overrides: Any) -> Settings:
    try:
        return load(overrides)
    except SettingError as exc:
        raise click.UsageError(str(exc)) from None


def _open(settings: Settings) -> Store:
    from goalline.app import open_migrated

    try:
        return open_migrated(settings)
    except Exception as exc:  # the message names the database; a traceback would not help
        raise click.ClickException(f"cannot open database {settings.database!r}: {exc}") from None


class SettingOption(click.Option):
    """A flag declared by a row of the settings table: its name, type, choices and help come
    from the row. Its default is None (not given), so ``load`` can fall back to the environment
    and then to the table; the help is read from the row each time it is shown."""

    def __init__(self, param_decls: Sequence[str], *, setting: Setting, **kwargs: Any) -> None:
        self.setting = setting
        kind: Any = (
            click.Choice(setting.choices, case_sensitive=False)
            if setting.choices
            else {int: click.INT, float: click.FLOAT}.get(setting.type, click.STRING)
        )
        super().__init__(param_decls, type=kind, default=None, **kwargs)

    @property
    def help(self) -> str:
        s = self.setting
        return f"{s.help} [env {s.env}; default {s.default}]"

    @help.setter
    def help(self, value: str | None) -> None:  # click's __init__ assigns it; the row wins
        pass


def setting_option(name: str, **kwargs: Any) -> Callable[[F], F]:
    """The flag of setting ``name`` (``--port``, ...), its value passed as ``name``."""
    setting = BY_NAME[name]
    return click.option(setting.flag, setting.name, cls=SettingOption, setting=setting, **kwargs)


def database_option(fn: F) -> F:
    return setting_option("database", metavar="URL")(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(fn)


def _emit(as_json: bool, obj: dict[str, Any], text: str) -> None:
    click.echo(msgspec.json.encode(obj).decode() if as_json else text)


def _admin(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an admin unit of work on the configured store, turning AdminError into a clean exit."""

    @functools.wraps(fn)
    def wrapper(database: str | None, **kwargs: Any) -> Any:
        store = _open(_settings(database=database))
        try:
            return fn(store, **kwargs)
        except admin.AdminError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            store.close()

    return wrapper


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from goalline.enrichment.geoip import GeoIP

    path = os.environ.get(BY_NAME["geoip_database"].env) or None
    try:
        geoip = GeoIP(path)
        geo = f"{geoip.name}, built {geoip.build_date} ({geoip.path})"
    except ValueError as exc:
        geo = str(exc)
    click.echo(f"goalline {__version__}\nGeoIP database: {geo}")
    ctx.exit()


def _summary(help_text: str | None) -> str:
    """A command's line in its group's list: the first paragraph of its help, whole."""
    first = inspect.cleandoc(help_text or "").split("\n\n", 1)[0]
    return " ".join(first.split())


class _Command(click.Command):
    """A command whose summary in ``--help`` lists is its help's whole first paragraph (click
    would cut it at the terminal's width, mid-sentence: "...and print a...")."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _summary(self.help)


class _Group(click.Group):
    """A group of _Command and _Group, summarised the same way."""

    command_class = _Command
    group_class: type[click.Group] | type[type] | None = type  # subgroups: _Group too

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _summary(self.help)


class _Main(_Group):
    """The top-level group; its epilog names the table's current default database."""

    group_class = _Group

    @property
    def epilog(self) -> str:
        return EPILOG.format(database=BY_NAME["database"].default, demo=demo.DEMO_DATABASE)

    @epilog.setter
    def epilog(self, value: str | None) -> None:  # click's __init__ assigns it
        pass


@click.group(cls=_Main, invoke_without_command=True)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and the GeoIP database, then exit.",
)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Goalline records goal achievements and goal values for customer profiles.

    It speaks the Altcraft Platform API v1.1 (POST /api/v1.1/goals/register, JSON and XML).
    Without a command it runs `goalline serve`.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


def _setting_options(fn: F) -> F:
    for setting in reversed(SETTINGS):
        fn = setting_option(setting.name)(fn)
    return fn


@main.command()
@_setting_options
@click.option(
    "--demo",
    "with_demo",
    is_flag=True,
    help=f"Seed demo data and print a working curl. The demo's store is ./{demo.DEMO_DATABASE} "
    "unless --database or GOALLINE_DATABASE names another.",
)
def serve(with_demo: bool = False, **overrides: Any) -> None:
    """Run the HTTP API server (the default command)."""
    import uvicorn

    if with_demo:
        overrides["database"] = _demo_database(overrides.get("database"))
    from goalline.transport.server import serve_options

    settings = _settings(**overrides)
    _configure_logging(settings.log_level)
    store = _open(settings)
    if with_demo:
        _print_demo(_seed_demo(store, settings), settings)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "server_header": False,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_graceful_shutdown": 10,
        **serve_options(settings),  # the HTTP edge's limits (docs/operations.md)
    }
    if settings.workers > 1:
        store.close()
        os.environ.update(settings.as_env())
        uvicorn.run("goalline.app:create_app", factory=True, workers=settings.workers, **common)
        return
    from goalline.app import build, settle_heap

    try:
        app = build(settings, store)
        settle_heap()
        uvicorn.run(app.asgi, **common)
    finally:
        store.close()


def _demo_database(database: str | None) -> str | None:
    """The store the demo seeds: the one given (flag, else GOALLINE_DATABASE: None lets the
    settings read it), else the demo's own file, so the real default stays empty."""
    if database is None and BY_NAME["database"].env not in os.environ:
        return demo.DEMO_DATABASE
    return database


def _sqlite_path(database: str) -> str | None:
    """The file of a SQLite ``--database`` value; None for PostgreSQL."""
    from goalline.storage.dialect import SQLITE, locate

    location = locate(database)
    return location.target if location.dialect is SQLITE else None


def _store_name(database: str) -> str:
    """How messages name a store: a SQLite file's path, never a URL (it may hold a password)."""
    return _sqlite_path(database) or "the PostgreSQL database"


def _seed_demo(store: Store, settings: Settings) -> demo.Demo:
    """Seed the demo; a refused store is closed and the refusal is one clean line."""
    try:
        return demo.seed(store, _store_name(settings.database))
    except admin.AdminError as exc:
        store.close()
        raise click.ClickException(str(exc)) from None


def _print_demo(seeded: demo.Demo, settings: Settings) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{host}:{settings.port}"
    click.echo(
        f"Demo data {'created' if seeded.created else 'already present'} in "
        f"{_store_name(settings.database)}: database "
        f"{seeded.db_id}, pixel {seeded.pixel_id}, token {seeded.token}\n"
        f"Profiles: {', '.join(f'{e} ({p})' for e, p in seeded.profiles.items())}\n"
        f"Register a goal:\n\n  {demo.curl(seeded, base)}\n"
    )


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@main.command("demo")
@database_option
@json_option
def demo_command(database: str | None, as_json: bool) -> None:
    """Seed demo data and print a working curl.

    Creates a demo database, pixel, token and two profiles in ./goalline-demo.db (or the
    store --database names, if it holds nothing else), once; running it again reuses them.
    """
    settings = _settings(database=_demo_database(database))
    store = _open(settings)
    try:
        seeded = _seed_demo(store, settings)
    finally:
        store.close()
    if as_json:
        _emit(
            True,
            {
                "db_id": seeded.db_id,
                "pixel_id": seeded.pixel_id,
                "token": seeded.token,
                "profiles": seeded.profiles,
                "curl": demo.curl(seeded, f"http://127.0.0.1:{settings.port}"),
            },
            "",
        )
    else:
        _print_demo(seeded, settings)
        given = ""
        if database is not None:
            path = _sqlite_path(database)
            given = " --database " + (shlex.quote(path) if path else "URL")
        click.echo(f"Start the server with: goalline serve --demo{given}")


@main.command()
@database_option
def migrate(database: str | None) -> None:
    """Apply pending schema migrations.

    serve does this on start too.
    """
    settings = _settings(database=database)
    from goalline.storage.store import open_store

    store = open_store(settings.database, settings)
    try:
        applied = store.migrate()
    finally:
        store.close()
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@main.command("settings")
@json_option
def settings_command(as_json: bool) -> None:
    """List every setting and its current value.

    Each with its flag, environment variable, default and help.
    """
    current = _settings()
    rows = [
        {
            "name": s.name,
            "flag": s.flag,
            "env": s.env,
            "default": s.default,
            "value": "***"
            if s.secret and getattr(current, s.name) != s.default
            else getattr(current, s.name),
            "help": s.help,
        }
        for s in SETTINGS
    ]
    if as_json:
        _emit(True, {"settings": rows}, "")
        return
    for row in rows:
        click.echo(
            f"{row['flag']:<24} {row['env']:<32} default {row['default']!s:<12} "
            f"now {row['value']}\n    {row['help']}"
        )


# -- administration ----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Databases (profile collections) and their fields."""


@db.command("create")
@click.argument("name")
@click.option(
    "--unknown-profile",
    type=click.Choice(POLICIES),
    default="record",
    show_default=True,
    help="What goals/register does when no profile matches: record the event without "
    "a profile, reject it (404), or create the profile.",
)
@click.option("--id", "db_id", type=click.IntRange(min=1), help="Keep an Altcraft database id.")
@database_option
@json_option
@_admin
def db_create(
    store: Store, name: str, unknown_profile: str, db_id: int | None, as_json: bool
) -> None:
    """Create a database."""
    new_id = store.call(
        lambda uow: admin.create_database(
            uow, name=name, policy=unknown_profile, db_id=db_id, now=_now()
        )
    )
    _emit(
        as_json,
        {"id": new_id, "name": name, "unknown_profile": unknown_profile},
        f"database {new_id} {name!r} created (unknown profiles: {unknown_profile})",
    )


@db.command("list")
@database_option
@json_option
@_admin
def db_list(store: Store, as_json: bool) -> None:
    """List databases with their fields."""
    rows = store.call(admin.describe_databases, write=False)
    text = (
        "\n".join(
            f"{r['id']:>5}  {r['name']}  (unknown profiles: {r['unknown_profile']}; fields: "
            f"{', '.join(f'{k}:{v}' for k, v in r['fields'].items()) or 'none'})"
            for r in rows
        )
        or "no databases yet: goalline db create NAME"
    )
    _emit(as_json, {"databases": rows}, text)


@db.command("policy")
@click.argument("db_id", type=int)
@click.argument("policy", type=click.Choice(POLICIES))
@database_option
@json_option
@_admin
def db_policy(store: Store, db_id: int, policy: str, as_json: bool) -> None:
    """Set what goals/register does when no profile matches."""
    store.call(lambda uow: admin.set_policy(uow, db_id=db_id, policy=policy))
    _emit(
        as_json,
        {"id": db_id, "unknown_profile": policy},
        f"database {db_id}: unknown profiles are now {policy}ed"
        if policy != "create"
        else f"database {db_id}: unknown profiles are now created",
    )


@db.group("field")
def db_field() -> None:
    """Custom profile fields of a database."""


@db_field.command("add")
@click.argument("db_id", type=int)
@click.argument("name")
@click.option(
    "--type",
    "type_",
    type=click.Choice(FIELD_TYPES),
    required=True,
    help="Values are checked and compared as this type; tags hold a set of strings.",
)
@database_option
@json_option
@_admin
def db_field_add(store: Store, db_id: int, name: str, type_: str, as_json: bool) -> None:
    """Add a custom field to a database."""
    store.call(lambda uow: admin.add_field(uow, db_id=db_id, name=name, type_=type_, now=_now()))
    _emit(
        as_json,
        {"id": name, "db_id": db_id, "name": name, "type": type_},
        f"database {db_id}: field {name} ({type_}) added",
    )


@main.group()
def pixel() -> None:
    """Pixels: the event sources goals are registered under."""


@pixel.command("create")
@click.argument("name")
@click.option("--db", "db_id", type=int, help="Bind the pixel to this database only.")
@click.option("--id", "pixel_id", type=click.IntRange(min=1), help="Keep an Altcraft pixel id.")
@database_option
@json_option
@_admin
def pixel_create(
    store: Store, name: str, db_id: int | None, pixel_id: int | None, as_json: bool
) -> None:
    """Create a pixel."""
    new_id = store.call(
        lambda uow: admin.create_pixel(uow, name=name, db_id=db_id, pixel_id=pixel_id, now=_now())
    )
    _emit(
        as_json,
        {"id": new_id, "name": name, "db_id": db_id},
        f"pixel {new_id} {name!r} created" + (f" for database {db_id}" if db_id else ""),
    )


@main.group()
def token() -> None:
    """API tokens (stored hashed; the value is shown once)."""


@token.command("create")
@click.argument("name")
@click.option(
    "--db",
    "db_ids",
    type=int,
    multiple=True,
    help="A database the token may use (repeat for several; none: every database).",
)
@click.option("--value", help="Keep an existing Altcraft token value instead of generating one.")
@database_option
@json_option
@_admin
def token_create(
    store: Store, name: str, db_ids: tuple[int, ...], value: str | None, as_json: bool
) -> None:
    """Create an API token and print it once."""
    new = store.call(
        lambda uow: admin.create_token(uow, name=name, db_ids=db_ids, value=value, now=_now())
    )
    scope = ", ".join(map(str, new.db_ids)) or "every database"
    _emit(
        as_json,
        {"id": new.id, "name": name, "token": new.token, "db_ids": list(new.db_ids)},
        f"token {new.id} {name!r} for {scope}:\n\n  {new.token}\n\n"
        "Store it now: it is kept only as a hash and cannot be shown again.",
    )


# -- bulk import (issue 4) ---------------------------------------------------------------------


@main.group("import")
def import_group() -> None:
    """Bulk loads from files."""


@import_group.command("profiles")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--db", "db_id", type=click.IntRange(min=1), required=True, help="Database id.")
@click.option(
    "--matching",
    type=click.Choice(["email", "phone", "custom", "profile_id"]),
    default="email",
    show_default=True,
    help="How a row finds its profile: its email, its first phone, a custom field, or a "
    "profile_id column (update only).",
)
@click.option("--field", "field_name", metavar="NAME", help="The field for --matching custom.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: from the extension."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=1000,
    show_default=True,
    help="Rows per transaction.",
)
@click.option(
    "--rejects",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Where failed rows go, with the reason [default: FILE.rejects.csv or .jsonl].",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@database_option
@json_option
def import_profiles(
    file: str,
    db_id: int,
    matching: str,
    field_name: str | None,
    fmt: str | None,
    batch_size: int,
    rejects: str | None,
    quiet: bool,
    database: str | None,
    as_json: bool,
) -> None:
    """Create or update profiles from a CSV or JSON Lines FILE.

    \b
    CSV: a header row of field names (email, phones, _fname, ..., custom fields);
         phones separated by ; or ,  tags separated by ;  empty cells are absent.
    JSON Lines: one object of profile fields per line.

    Rows are matched like profiles/import, so running the same file twice creates nothing
    new. Exit status: 0 all rows imported, 1 some rows failed (see the rejects file),
    2 usage error.
    """
    from pathlib import Path

    from goalline import importer
    from goalline.errors import ApiError

    path = Path(file)
    settings = _settings(database=database)
    try:
        job = importer.Job(
            path=path,
            db_id=db_id,
            format=importer.file_format(path, fmt),
            matching=matching,
            field_name=field_name,
            batch_size=batch_size,
            rejects=Path(rejects) if rejects else None,
            phone_region=settings.default_phone_region,
        )
    except importer.ImportUsageError as exc:
        raise click.UsageError(str(exc)) from None
    store = _open(settings)
    try:
        importer.check(store, job)
        size = path.stat().st_size
        with importer.progress_bar(size, path.name, enabled=not quiet) as progress:
            summary = importer.run(store, job, progress)
    except importer.ImportUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except ApiError as exc:  # storage unavailable: batches committed so far stay imported
        raise click.ClickException(f"import stopped: {exc.text}") from None
    finally:
        store.close()
    text = (
        f"{summary.rows:,} rows in {summary.seconds:.1f} s ({summary.rows_per_second:,.0f} "
        f"rows/s): created {summary.created:,}, updated {summary.updated:,}, "
        f"failed {summary.failed:,}"
    )
    if summary.rejects is not None:
        text += f"\n{summary.failed:,} rows failed: they are in {summary.rejects} with the reason"
    _emit(as_json, summary.as_dict(), text)
    if summary.failed:
        sys.exit(1)


# -- retention and backups ---------------------------------------------------------------------


def _before(value: str) -> str:
    """``--before``: a date (midnight UTC) or a time with its offset, in the past, as stored
    times spell it."""
    try:
        when = (
            dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
            if len(value) == 10
            else dt.datetime.fromisoformat(value)
        )
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise click.BadParameter(
            f"{value!r}: expected a date (2026-01-31, midnight UTC) or a time with its offset "
            "(2026-01-31T12:00:00+03:00)",
            param_hint="--before",
        )
    if when > dt.datetime.now(dt.UTC):
        raise click.BadParameter(
            f"{value!r} is in the future: prune deletes only events of the past",
            param_hint="--before",
        )
    return iso_utc(when)


@main.command("prune")
@click.option(
    "--before",
    "before_text",
    metavar="DATE",
    required=True,
    help="Delete the goal events that happened before this date (2026-01-31: midnight UTC) "
    "or time (RFC 3339 with offset).",
)
@click.option(
    "--db", "db_id", type=click.IntRange(min=1), help="Only this database's events [default: all]."
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@database_option
@json_option
def prune_command(
    before_text: str,
    db_id: int | None,
    dry_run: bool,
    quiet: bool,
    database: str | None,
    as_json: bool,
) -> None:
    """Delete goal events older than a date.

    \b
    Deletes the goal events whose date (the event's `date`, by which history and reports
    order them) lies before DATE, 1,000 per transaction, so a server using the same store is
    held up for milliseconds at a time; then the request-log entries whose dedup window has
    ended. Profiles stay. Interrupted, it keeps what it deleted; run it again for the rest.
    """
    before = _before(before_text)
    settings = _settings(database=database)
    store = _open(settings)
    started = dt.datetime.now(dt.UTC)
    try:
        found = store.call(
            lambda uow: admin.prunable(uow, before=before, db_id=db_id, now=iso_utc(started))
        )
        done = found
        if not dry_run:
            with count_bar(found.events, "goal events", enabled=not quiet) as progress:
                done = admin.prune(
                    store, before=before, db_id=db_id, now=iso_utc(started), progress=progress
                )
    except admin.AdminError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    scope = f"database {db_id}" if db_id else "every database"
    verb = "would delete" if dry_run else "deleted"
    _emit(
        as_json,
        {
            "before": before,
            "db_id": db_id,
            "dry_run": dry_run,
            "goal_events": done.events,
            "request_log": done.requests,
            "seconds": round(seconds, 3),
        },
        f"{verb} {done.events:,} goal events of {scope} before {before} and "
        f"{done.requests:,} expired request-log entries ({seconds:.1f} s)",
    )


@main.command("backup")
@click.argument("destination", type=click.Path(dir_okay=False))
@database_option
@json_option
def backup_command(destination: str, database: str | None, as_json: bool) -> None:
    """Copy a SQLite store to a new file, while it serves.

    SQLite's online backup API copies the store as it was at one moment, while servers keep
    writing to it (they are not held up). The copy is written next to DESTINATION and renamed
    into place once it is complete and checked, so DESTINATION is never a partial copy; it
    must not exist yet. PostgreSQL: use pg_dump or base backups (docs/operations.md).
    """
    from pathlib import Path

    from goalline.storage import backup

    settings = _settings(database=database)
    try:
        copied = backup.sqlite_backup(settings.database, Path(destination))
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    _emit(
        as_json,
        {"destination": str(copied.path), "bytes": copied.bytes, "seconds": copied.seconds},
        f"backed up {_store_name(settings.database)} to {copied.path} "
        f"({copied.bytes:,} bytes in {copied.seconds:.1f} s)",
    )
