"""The ASGI application: FastAPI with OpenAPI, one router per concern.

``create_app`` takes the components it exposes (so tests and the central system build it the
same way); routers for the REST API and the dashboard will be added here by later work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from csms.http.uploads import uploads_router
from csms.uploads.service import Uploads

if TYPE_CHECKING:
    from csms.api.context import ApiContext

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


def create_app(
    *,
    uploads: Uploads | None = None,
    context: ApiContext | None = None,
    routers: Sequence[APIRouter] = (),
    lifespan: Lifespan | None = None,
    title: str = "CSMS",
    version: str = "0.1.0",
) -> FastAPI:
    """The HTTP app; with ``uploads``, the ``/uploads`` endpoints chargers upload logs to;
    with ``context``, the REST API under ``/api/v1`` and the dashboard at ``/``, and the
    request limits of ``/api`` and ``/uploads`` (:mod:`csms.http.limits`); ``routers`` are added
    as they are (``/metrics``...)."""
    app = FastAPI(
        title=title,
        version=version,
        description=(
            "OCPP central system with automated diagnostics: stations, diagnostics runs, "
            "tickets, operator commands, driver fault reports, diagnostics logs. "
            "Authenticate with `Authorization: Bearer <token>` (tokens from `csms token "
            "create`); roles viewer < operator < admin."
        ),
        lifespan=lifespan,
    )

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> Health:
        return Health()

    if uploads is not None:
        app.include_router(uploads_router(uploads))
    if context is not None:
        from csms.api.routes import api_router
        from csms.http.dashboard import dashboard_router

        app.include_router(api_router(context))
        app.include_router(dashboard_router(context))
    for router in routers:
        app.include_router(router)
    if context is not None:
        _install_limits(app, context)
    return app


def _install_limits(app: FastAPI, context: ApiContext) -> None:
    """The ``[limits]`` of ``/api`` and ``/uploads``; refusals counted in the central system's
    limit meter (``context.extras``, put there by :mod:`csms.metrics`) when there is one."""
    from csms.http.limits import RequestLimits
    from csms.metrics.limits import LIMITS_KEY, LimitMeter

    def meter() -> LimitMeter | None:
        found = context.extras.get(LIMITS_KEY)
        return found if isinstance(found, LimitMeter) else None

    app.add_middleware(RequestLimits, settings=context.settings, meter=meter)
