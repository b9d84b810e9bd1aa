"""Composition root: ``build(settings)`` wires the store, the pipeline and the transports."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import gc
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from goalline import settings as settings_mod
from goalline.pipeline import dedupe
from goalline.pipeline.context import Deps
from goalline.pipeline.enrich import enricher
from goalline.pipeline.ratelimit import RateLimiter
from goalline.settings import Settings
from goalline.storage.ports import UnitOfWork
from goalline.storage.store import Store, open_store
from goalline.transport.http import GoallineHTTP
from goalline.transport.ops import build_ops

log = logging.getLogger("goalline")


Job = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class App:
    """One Goalline process: its ports (``deps``), its background jobs and its transports.

    The process lifecycle lives here, the same for every command that serves (``serve``
    today; the AMQP worker and the webhook dispatcher run the same way): ``async with
    app.running():`` starts the background jobs, and on the way out stops them and closes the
    store if the App opened it. The HTTP server enters it from its lifespan.
    """

    deps: Deps
    #: The store behind ``deps.store``: the App may close it (the pipeline sees only the port).
    store: Store
    jobs: list[Job] = field(default_factory=list)
    #: Whether ``running`` closes the store on the way out (False for a store passed in).
    owns_store: bool = True
    asgi: GoallineHTTP = field(init=False)

    def __post_init__(self) -> None:
        self.asgi = GoallineHTTP(self.deps, build_ops(self.deps, self.running))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for job in self.jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.owns_store:
                await self.store.drain()  # units still in a SQLite group commit first
                self.store.close()


def open_migrated(settings: Settings) -> Store:
    store = open_store(settings.database, settings)
    applied = store.migrate()
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    if store.call(lambda uow: uow.autovacuum_off(), write=False):
        log.warning(
            "PostgreSQL autovacuum is off: Goalline keeps its tables' planner statistics "
            "itself, but the dead rows that updates leave behind are only reclaimed by VACUUM "
            "(see docs/operations.md)"
        )
    return store


def build(
    settings: Settings,
    store: Store | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
) -> App:
    """The whole service for ``settings``. A ``store`` passed in stays the caller's to close;
    one opened here is closed when the server shuts down."""
    owned = store is None
    store = store or open_migrated(settings)
    limiter = None
    if settings.rate_limit > 0:
        limiter = RateLimiter(settings.rate_limit, burst=math.ceil(2 * settings.rate_limit))
    deps = Deps(
        store=store, settings=settings, enricher=enricher(settings.geoip_database), limiter=limiter
    )
    if clock is not None:
        deps = dataclasses.replace(deps, clock=clock)
    deps.metrics.storage_unavailable = lambda: float(store.unavailable)
    jobs: list[Job] = []
    if store.dialect.name == "postgres":  # SQLite plans by its indexes: no statistics to keep
        jobs.append(lambda: keep_statistics(deps))
    if settings.dedup_window > 0:
        jobs.append(lambda: forget_expired_requests(deps))
    return App(deps, store, jobs, owns_store=owned)


def create_app() -> GoallineHTTP:
    """uvicorn factory (``goalline.app:create_app``): settings from GOALLINE_* variables."""
    app = build(settings_mod.load())
    settle_heap()
    return app.asgi


def settle_heap() -> None:
    """Take what start-up allocated (modules, User-Agent rules, dictionaries) out of the garbage
    collector's sight with ``gc.freeze()``, once a server is built.

    Full collections then traverse only what requests leave behind (the bounded caches), so
    they stall the event loop for less: measured under load, the longest full collection
    went from 72 ms to 24 ms, and they ran a third as often.
    """
    gc.collect()
    gc.freeze()


#: How often keep_statistics looks for stale tables (a cheap read of pg_stat_user_tables);
#: autovacuum looks once a minute, which leaves a freshly imported database slow that long.
STATISTICS_SECONDS = 10.0


async def keep_statistics(deps: Deps, period: float = STATISTICS_SECONDS) -> None:
    """On PostgreSQL, ANALYZE the tables whose planner statistics have gone stale, every
    ``period`` seconds, as autovacuum would: the lookups of the hot path depend on them, and
    autovacuum may be off or behind a bulk load (queries.stale_tables). ANALYZE changes no
    rows, so it runs on a reader connection and no writer waits for it."""
    while True:
        try:
            stale = await deps.store.read(lambda uow: uow.stale_tables())
            if stale:
                started = time.monotonic()
                await deps.store.read(functools.partial(_analyze, tables=stale))
                log.info(
                    "analyzed %s (statistics were stale) in %.2f s",
                    ", ".join(stale),
                    time.monotonic() - started,
                )
        except Exception:  # storage down: try again next period
            log.warning("refreshing table statistics failed; retrying later", exc_info=True)
        await asyncio.sleep(period)


async def forget_expired_requests(deps: Deps) -> None:
    """Delete expired request-log keys every ``dedup_cleanup_seconds``, a batch per transaction,
    so the cleanup never holds the write lock for long (issue 5)."""
    while True:
        await asyncio.sleep(deps.settings.dedup_cleanup_seconds)
        try:
            while await deps.store.write(lambda uow: dedupe.forget_expired(uow, deps.clock())):
                await asyncio.sleep(0)
        except Exception:  # storage down: try again next period
            log.warning("request-log cleanup failed; retrying later", exc_info=True)


def _analyze(uow: UnitOfWork, tables: list[str]) -> None:
    uow.analyze(tables)
