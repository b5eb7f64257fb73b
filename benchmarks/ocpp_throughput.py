"""Throughput and latency of the real server process, over loopback websockets.

Starts ``python -m csms serve`` (SQLite in a temporary folder, or ``--database-url``), opens
``--stations`` OCPP 1.6 connections, boots them, then runs two bounded phases:

1. closed loop: every station sends its next message as soon as the previous is answered
   (the ceiling of one server process), alternating Heartbeat and MeterValues;
2. fixed rate: ``--rate`` messages per second in total, spread over the stations
   (the latency an operator sees at a steady load).

Prints messages per second, latency percentiles, and the server's CPU time per message
(from /proc). Figures, not assertions: tests never time anything.

    python benchmarks/ocpp_throughput.py [--stations 50] [--seconds 8] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parents[1]
METER = {
    "connectorId": 1,
    "transactionId": 1,
    "meterValue": [{
        "timestamp": "2026-11-21T10:00:00Z",
        "sampledValue": [
            {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "16.1", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
        ],
    }],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.counter = 0

    async def call(self, action: str, payload: dict[str, object]) -> float:
        self.counter += 1
        started = time.perf_counter()
        await self.ws.send(json.dumps([2, str(self.counter), action, payload]))
        answer = json.loads(await self.ws.recv())
        if answer[0] != 3:
            raise RuntimeError(f"unexpected answer {answer}")
        return time.perf_counter() - started

    async def next(self) -> float:
        if self.counter % 2:
            return await self.call("MeterValues", METER)
        return await self.call("Heartbeat", {})


async def closed_loop(clients: list[Client], seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def run(client: Client) -> None:
        while time.monotonic() < deadline:
            latencies.append(await client.next())

    await asyncio.gather(*(run(c) for c in clients))
    return latencies


async def fixed_rate(clients: list[Client], rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    per_client = rate / len(clients)
    deadline = time.monotonic() + seconds

    async def run(index: int, client: Client) -> None:
        interval = 1.0 / per_client
        next_at = time.monotonic() + index * interval / len(clients)
        while next_at < deadline:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            latencies.append(await client.next())
            next_at += interval

    await asyncio.gather(*(run(i, c) for i, c in enumerate(clients)))
    return latencies


def report(name: str, latencies: list[float], seconds: float, cpu: float) -> None:
    if not latencies:
        print(f"{name}: no messages")
        return
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = len(latencies) / seconds
    print(f"{name:<12} {rate:>9.0f} msgs/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
          f"mean {statistics.fmean(ordered) * 1000:6.2f} ms   "
          f"server CPU {cpu / len(latencies) * 1e6:6.0f} µs/msg")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        server = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
            [sys.executable, "-m", "csms", "serve", "--host", "127.0.0.1", "--ocpp-port",
             str(port), "--http-port", str(free_port()), "--ftp-port", str(free_port()),
             "--database-url", url,
             "--log-level", "warning"],
            # The closed loop sends as fast as answers come, beyond the per-connection message
            # rate a charger gets ([limits]): that limit is off here, the server's ceiling is
            # measured; all stations come from loopback, so no per-address limit either.
            cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT),
                          "CSMS_LIMITS__OCPP_MESSAGES_PER_SECOND": "0",
                          "CSMS_LIMITS__EXEMPT_NETWORKS": '["127.0.0.1/32"]'},
        )
        try:
            await wait_port(port)
            clients = []
            for i in range(args.stations):
                ws = await connect(f"ws://127.0.0.1:{port}/ocpp/BENCH-{i:05d}",
                                   subprotocols=[Subprotocol("ocpp1.6")], max_queue=None)
                client = Client(ws)
                await client.call("BootNotification",
                                  {"chargePointVendor": "Bench", "chargePointModel": "B1"})
                clients.append(client)
            print(f"server pid {server.pid}, {args.stations} stations, database "
                  f"{url.split(':')[0]}, {args.seconds:.0f} s per phase")
            for name, phase in (
                ("closed loop", closed_loop(clients, args.seconds)),
                (f"at {args.rate:.0f}/s", fixed_rate(clients, args.rate, args.seconds)),
            ):
                cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
                latencies = await phase
                report(name, latencies, time.monotonic() - wall0,
                       cpu_seconds(server.pid) - cpu0)
            for client in clients:
                await client.ws.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
