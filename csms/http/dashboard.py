"""Placeholder: filled in by the dashboard work."""

from __future__ import annotations

from fastapi import APIRouter

from csms.api.context import ApiContext


def dashboard_router(ctx: ApiContext) -> APIRouter:
    """The operations dashboard at ``/``."""
    return APIRouter()
