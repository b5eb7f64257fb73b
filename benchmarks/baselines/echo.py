"""The ceiling baseline: a bare websockets server that echoes every frame.

No OCPP, no JSON, no database: what one Python process moving websocket frames costs. Uses
uvloop when it is importable (it is not a dependency of the project). The load generator's
``--echo`` mode takes an echoed CALL as its answer.

Run: ``python benchmarks/baselines/echo.py --port 9100`` (Ctrl-C or SIGTERM stops it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from simulators.loadgen.runner import loop_factory

SUBPROTOCOLS = [Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")]


def raise_fd_limit() -> None:
    """Soft open-files limit up to the hard one (one socket per charger)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))




async def echo(connection: ServerConnection) -> None:
    """Send every message back as it came."""
    with contextlib.suppress(ConnectionClosed):
        async for message in connection:
            await connection.send(message)


async def serve_until_stopped(host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(echo, host, port, subprotocols=SUBPROTOCOLS, backlog=4096):
        print(f"echo listening on ws://{host}:{port} ({type(asyncio.get_running_loop())})",
              flush=True)
        await stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--no-uvloop", action="store_true", help="plain asyncio")
    args = parser.parse_args(argv)
    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory(not args.no_uvloop)) as runner:
        runner.run(serve_until_stopped(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
