"""Operations endpoints: ``/healthz`` (process up), ``/readyz`` (storage reachable), ``/``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from goalline import __version__, observability
from goalline.pipeline.context import Deps
from goalline.transport.openapi import openapi_document


def build_ops(
    deps: Deps,
    on_shutdown: Callable[[], None],
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> Starlette:
    """Ops routes; ``background`` tasks run from start-up to shutdown."""

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> JSONResponse:
        try:
            await asyncio.wait_for(deps.store.read(lambda tx: tx.scalar("SELECT 1")), timeout=5)
        except Exception as exc:
            return JSONResponse(
                {"status": "unavailable", "storage": deps.store.dialect.name, "reason": str(exc)},
                status_code=503,
                headers={"retry-after": "5"},
            )
        geoip = deps.enricher.geoip
        return JSONResponse(
            {
                "status": "ready",
                "storage": deps.store.dialect.name,
                "geoip": {"name": geoip.name, "build_date": geoip.build_date},
            }
        )

    async def metrics(request: Request) -> Response:
        return Response(deps.metrics.render(), media_type=observability.CONTENT_TYPE)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    async def index(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "service": "goalline",
                "version": __version__,
                "api": "POST /api/v1.1/goals/register",
                "docs": "https://github.com/ (see README.md and docs/ in the distribution)",
            }
        )

    async def not_found(request: Request, exc: Any) -> JSONResponse:
        return JSONResponse(
            {"error": 404, "error_text": f"path: {request.url.path} not found"}, status_code=404
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for job in background]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        on_shutdown()

    return Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
        ],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
