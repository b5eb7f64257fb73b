"""``/api/v1``: every API router, assembled."""

from __future__ import annotations

from fastapi import APIRouter

from csms.api import commands, logs, reports, runs, stations, stream, tickets, webhooks
from csms.api.auth import Authenticator
from csms.api.context import ApiContext

PREFIX = "/api/v1"


def api_router(ctx: ApiContext, auth: Authenticator | None = None) -> APIRouter:
    """The whole REST API, mounted under :data:`PREFIX`."""
    auth = auth or Authenticator(ctx)
    api = APIRouter(prefix=PREFIX)
    for module in (stations, runs, tickets, commands, logs, reports, webhooks, stream):
        api.include_router(module.router(ctx, auth))
    return api
