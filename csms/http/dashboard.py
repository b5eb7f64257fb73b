"""The operations dashboard: ``/`` (the page) and ``/static/...`` (its scripts and styles).

The page is static: it asks for an API token (viewer is enough), reads the REST API under
``/api/v1`` with it and follows ``/api/v1/stream`` for live updates (see
README.md, "Operations dashboard"). Nothing station-supplied is rendered on the server. Only the
files shipped in ``csms/http/static`` are served (a fixed list, no path from the URL reaches
the file system), with a strict Content-Security-Policy: scripts and styles from this origin
only, no inline code, no framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException, Response, status

from csms.api.context import ApiContext

STATIC_PACKAGE = "csms.http"
STATIC_DIR = "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One shipped file."""

    resource: Traversable
    media_type: str


def static_assets() -> dict[str, Asset]:
    """Every servable file under ``csms/http/static``, by its path relative to it."""
    assets: dict[str, Asset] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
                continue
            suffix = entry.name[entry.name.rfind("."):] if "." in entry.name else ""
            if suffix in MEDIA_TYPES:
                assets[prefix + entry.name] = Asset(entry, MEDIA_TYPES[suffix])

    walk(files(STATIC_PACKAGE) / STATIC_DIR, "")
    return assets


def _serve(asset: Asset) -> Response:
    return Response(asset.resource.read_bytes(), media_type=asset.media_type,
                    headers=SECURITY_HEADERS)


def dashboard_router(ctx: ApiContext) -> APIRouter:
    """The operations dashboard at ``/`` (its data comes from the API of ``ctx``, read by the
    browser with the user's token)."""
    assets = static_assets()
    page = assets.pop("index.html")
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def dashboard() -> Response:
        return _serve(page)

    @router.get("/static/{name:path}")
    async def static(name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not found")
        return _serve(asset)

    return router
