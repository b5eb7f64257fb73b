"""uvicorn in-process, in the running event loop, next to the OCPP server.

We bind the socket ourselves (so a busy port is an ``OSError`` here, not uvicorn's
``sys.exit``), leave signal handling to the central system (uvicorn's own handlers would
replace it), and keep uvicorn's logging config off (our structlog setup renders its lines).
Access logs are off: upload URLs carry one-time tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl as _ssl
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

from csms.logs import get_logger
from csms.tasks import cancel_and_wait

log = get_logger("csms.http")


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """Serves an ASGI app on ``host:port`` (0: any free port, see :attr:`port`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backlog: int = 2048,
        timeout_keep_alive: int = 5,
        timeout_graceful_shutdown: float = 5.0,
        limit_concurrency: int | None = None,
        h11_max_incomplete_event_size: int = 64 * 1024,
        reuse_port: bool = False,
        extra_port: int | None = None,
        ssl: _ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.reuse_port = reuse_port
        self.extra_port = extra_port
        """A second listener of its own (``None``: none), its bound port once started."""
        self.backlog = backlog
        self.ssl = ssl
        """HTTPS on every listener with this context (``None``: plain HTTP)."""
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            http="h11",
            ws="none",
            backlog=backlog,
            timeout_keep_alive=timeout_keep_alive,
            timeout_graceful_shutdown=int(timeout_graceful_shutdown),
            limit_concurrency=limit_concurrency,
            h11_max_incomplete_event_size=h11_max_incomplete_event_size,
            server_header=False,
            proxy_headers=False,
            # uvicorn applies ``config.ssl`` to the sockets we hand it as well.
            ssl_context_factory=(lambda _config, _default: ssl) if ssl is not None else None,
        )
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the configured one before)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL on loopback, for tests and local tools."""
        scheme = "https" if self.ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Bind, run the app's startup (lifespan), start serving; errors are raised here."""
        if self._task is not None:
            raise RuntimeError("already started")
        sock = await self._bind(self._port, self.reuse_port)
        self._port = sock.getsockname()[1]
        sockets = [sock]
        if self.extra_port is not None:
            extra = await self._bind(self.extra_port, False)
            self.extra_port = extra.getsockname()[1]
            sockets.append(extra)
        server = _EmbeddedServer(self.config)
        self._server = server
        task = asyncio.create_task(self._serve(server, sockets), name="http-server")
        self._task = task
        while not server.started:
            if task.done():
                self._server = self._task = None
                task.result()  # raises the startup error
                raise RuntimeError("HTTP server stopped during startup")
            await asyncio.sleep(0.01)
        log.info("http_listening", host=self.host, port=self._port, tls=self.ssl is not None)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), run the app's shutdown."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._server = self._task = None
        server.should_exit = True
        try:
            await asyncio.wait_for(
                asyncio.shield(task), (self.config.timeout_graceful_shutdown or 0) + 5.0
            )
        except TimeoutError:
            server.force_exit = True
            await cancel_and_wait(task)

    async def _bind(self, port: int, reuse_port: bool) -> socket.socket:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self.host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(self.backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    async def _serve(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        try:
            await server.serve(sockets=sockets)
        except SystemExit as exc:  # uvicorn exits on a failed lifespan startup
            raise RuntimeError("HTTP app startup failed") from exc
        finally:
            for sock in sockets:
                sock.close()
