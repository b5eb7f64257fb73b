"""The ASGI application: FastAPI with OpenAPI, one router per concern.

``create_app`` takes the components it exposes (so tests and the central system build it the
same way); routers for the REST API and the dashboard will be added here by later work.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel

from csms.http.uploads import uploads_router
from csms.uploads.service import Uploads

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


def create_app(
    *,
    uploads: Uploads | None = None,
    lifespan: Lifespan | None = None,
    title: str = "CSMS",
    version: str = "0.1.0",
) -> FastAPI:
    """The HTTP app; with ``uploads``, the ``/uploads`` endpoints chargers upload logs to."""
    app = FastAPI(
        title=title,
        version=version,
        description="OCPP central system: diagnostics log uploads, health (API to come).",
        lifespan=lifespan,
    )

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> Health:
        return Health()

    if uploads is not None:
        app.include_router(uploads_router(uploads))
    return app
