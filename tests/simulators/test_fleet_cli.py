"""Fleet counters and the csms-sim command line."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest

from simulators import cli
from simulators.fleet import Fleet
from tests.simulators.conftest import MiniCsms


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_fleet_with_sessions(csms: MiniCsms) -> None:
    fleet = Fleet("2.0.1", 3, csms.url, id_prefix="F-", concurrency=2, reconnect_delay=0.05,
                  session_every=0.05, session_duration=0.1, meter_interval=0.05)
    try:
        assert await fleet.start() == 3
        assert fleet.connected == fleet.booted == fleet.ever_booted == fleet.boots == 3
        assert sorted(csms.chargers) == ["F-001", "F-002", "F-003"]
        await csms.wait(lambda: fleet.sessions_completed >= 3, timeout=5)
        assert fleet.messages_sent > 3 * 5 and fleet.messages_received > 0
        assert "connected=3 booted=3" in fleet.summary()
    finally:
        await fleet.stop()
    assert fleet.connected == 0 and fleet.session_errors == 0


def test_fleet_arguments() -> None:
    with pytest.raises(ValueError):
        Fleet("1.5", 1, "ws://127.0.0.1:1/ocpp")
    fleet = Fleet("1.6", 1200, "ws://127.0.0.1:1/ocpp")
    assert fleet.stations[0].station_id == "SIM-0001"
    assert fleet.stations[-1].station_id == "SIM-1200"


def test_parser_defaults() -> None:
    args = cli.build_parser().parse_args(["--protocol", "2.0.1", "--count", "3", "--sessions"])
    assert (args.protocol, args.count, args.url) == ("2.0.1", 3, "ws://127.0.0.1:9000/ocpp")
    assert args.id_prefix == "SIM-" and args.duration is None and args.sessions
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--protocol", "3.0"])


async def test_cli_runs_two_stations(csms: MiniCsms, capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser().parse_args([
        "--protocol", "1.6", "--count", "2", "--url", csms.url, "--duration", "1",
        "--summary-interval", "0.4", "--sessions", "--session-every", "0.2",
        "--session-duration", "0.2", "--meter-interval", "0.1", "--heartbeat-interval", "0.3",
    ])
    assert await cli.run(args) == 0
    out = capsys.readouterr().out
    assert "connected=2 booted=2" in out and "done: 2/2 stations booted" in out
    assert sorted(csms.chargers) == ["SIM-001", "SIM-002"]
    assert csms.chargers["SIM-001"].payloads("StartTransaction")


async def test_cli_fails_when_not_booted(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/ocpp"
    args = cli.build_parser().parse_args(
        ["--count", "2", "--url", url, "--duration", "0.3", "--start-timeout", "0.2"])
    assert await cli.run(args) == 1
    assert "done: 0/2 stations booted (FAILED)" in capsys.readouterr().out


async def test_python_m_simulators(csms: MiniCsms) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "--protocol", "2.0.1", "--count", "2",
        "--url", csms.url, "--duration", "0.5",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert b"done: 2/2 stations booted" in out
