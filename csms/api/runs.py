"""Placeholder."""

from __future__ import annotations

from fastapi import APIRouter

from csms.api.auth import Authenticator
from csms.api.context import ApiContext


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """The runs endpoints under ``/api/v1``."""
    return APIRouter()
