"""Operations endpoints: ``/healthz`` (process up), ``/readyz`` (storage reachable), ``/``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from goalline import __version__, observability
from goalline.errors import InvalidRequest, NotFound
from goalline.pipeline.context import Deps
from goalline.transport.api import Answer, internal_error, refusal
from goalline.transport.openapi import openapi_document


def build_ops(deps: Deps, lifespan: Callable[[], AbstractAsyncContextManager[None]]) -> Starlette:
    """Ops routes. ``lifespan`` is the process's (goalline.app.App.running): the ASGI server's
    start-up and shutdown run it, so the HTTP server owns no job and no store of its own."""

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> JSONResponse:
        """200 when storage answers a ping within 0.9 s, else 503 with the reason.
        While storage is known unreachable the store refuses the ping at once (its breaker),
        so this answers without waiting; the reason is what the store's probe last met. (Load
        balancers give a readiness check about a second.)"""
        ready_seconds = 0.9
        try:
            await asyncio.wait_for(deps.store.read(lambda uow: uow.ping()), ready_seconds)
        except Exception as exc:
            retry_after = getattr(exc, "retry_after", None) or 1
            if isinstance(exc, TimeoutError):
                reason = f"storage did not answer within {ready_seconds} s"
            else:
                reason = str(exc.__cause__ or exc)
            return JSONResponse(
                {"status": "unavailable", "storage": deps.store.kind, "reason": reason},
                status_code=503,
                headers={"retry-after": str(retry_after)},
            )
        geoip = deps.enricher.geoip
        return JSONResponse(
            {
                "status": "ready",
                "storage": deps.store.kind,
                "geoip": {"name": geoip.name, "build_date": geoip.build_date},
            }
        )

    async def metrics(request: Request) -> Response:
        return Response(deps.metrics.render(), media_type=observability.CONTENT_TYPE)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    async def index(request: Request) -> JSONResponse:
        # Only addresses this server answers, and files Goalline ships: no external URL.
        return JSONResponse(
            {
                "service": "goalline",
                "version": __version__,
                "api": "POST /api/v1.1/<method>, JSON or XML (e.g. /api/v1.1/goals/register)",
                "links": {
                    "openapi": "/openapi.json",
                    "healthz": "/healthz",
                    "readyz": "/readyz",
                    "metrics": "/metrics",
                },
                "docs": "docs/api.md (every method) and docs/operations.md beside README.md in "
                "Goalline's source; `goalline --help` for the commands",
                # The caller as this server sees it: behind a proxy, check that it shows the
                # client's address, not the proxy's (forwarded_allow_ips, docs/operations.md).
                "client": {
                    "address": request.client.host if request.client else None,
                    "scheme": request.url.scheme,
                },
            }
        )

    async def not_found(request: Request, exc: Any) -> Response:
        return _reply(refusal(NotFound(f"path: {request.url.path} not found"), "json"))

    async def method_not_allowed(request: Request, exc: Any) -> Response:
        allow = getattr(exc, "headers", None) or {}
        error = InvalidRequest(f"method: {request.method} is not allowed on {request.url.path}")
        return _reply(refusal(error, "json", status=405, headers=list(allow.items())))

    async def server_error(request: Request, exc: Exception) -> Response:
        return _reply(internal_error(f"serving {request.url.path!r}", "json"))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
        ],
        exception_handlers={404: not_found, 405: method_not_allowed, Exception: server_error},
        lifespan=lambda app: lifespan(),
    )


def _reply(answer: Answer) -> Response:
    return Response(
        answer.body, answer.status, headers=dict(answer.headers), media_type=answer.content_type
    )
