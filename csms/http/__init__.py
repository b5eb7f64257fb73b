"""The HTTP side of the CSMS: one ASGI app (FastAPI) served in-process by uvicorn.

Today it carries the diagnostics upload endpoints and ``/healthz``; the REST API and the
dashboard will be added as further routers in :func:`csms.http.app.create_app`.
"""

from csms.http.app import create_app
from csms.http.server import HttpServer

__all__ = ["HttpServer", "create_app"]
