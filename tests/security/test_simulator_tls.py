"""The charger simulators over TLS against the real central system (security profiles 2 and 3,
OCPP 2.0.1 Part 2 §A00, OCPP 1.6 Security Whitepaper §2): stations from the simulator API and
from ``csms-sim`` boot over ``wss://`` and are recorded in the database; a station below its
profile is refused, and the simulator says why instead of retrying silently."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from csms.app import CentralSystem
from csms.security.passwords import hash_password
from diagnostics.commands import RequestLog
from simulators import BootTimeout, Station16, Station201, StationBase
from simulators import cli as sim_cli
from simulators.fleet import Fleet
from simulators.tls import TlsConfigError
from tests.conftest import MakeCentral
from tests.security.clients import wss_url
from tests.security.conftest import https_settings, tls_options
from tests.security.pki import Pki

PASSWORD = "simulated-secret-1"
STATIONS: dict[str, type[StationBase]] = {"1.6": Station16, "2.0.1": Station201}
PROTOCOLS = sorted(STATIONS)
TLS_REQUIRED = "HTTP 403 Forbidden: security profile 2: TLS required (connect with wss://)"


async def run_cli_until_booted(args: argparse.Namespace,
                               capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Run ``csms-sim`` in process until its summary line shows every station booted, then
    stop it as Ctrl-C would; assert exit code 0 and return its (stdout, stderr)."""
    stop = asyncio.Event()
    running = asyncio.create_task(sim_cli.run(args, stop=stop))
    out = err = ""
    async with asyncio.timeout(60):
        while f"ever_booted={args.count} " not in out:
            await asyncio.sleep(0.05)
            captured = capsys.readouterr()
            out, err = out + captured.out, err + captured.err
            assert not running.done(), (out, err)
        stop.set()
        assert await running == 0, (out, err)
    captured = capsys.readouterr()
    return out + captured.out, err + captured.err


async def _register(central: CentralSystem, station_id: str, profile: int | None,
                    password: str | None = None) -> None:
    await central.store.ensure_station(station_id)
    if password is not None:
        await central.store.set_password_hash(station_id, hash_password(password))
    assert await central.store.set_security_profile(station_id, profile)


async def _assert_booted_in_db(central: CentralSystem, station_id: str, protocol: str) -> None:
    station = await central.store.get_station(station_id)
    assert station is not None, station_id
    assert station.boot_count >= 1 and station.protocol == protocol
    assert station.vendor == "SimVendor"
    refused = [e for e in await central.store.connection_log(station_id)
               if e.kind == "refused"]
    assert refused == []


def _reported_profile(station: StationBase) -> str | None:
    if isinstance(station, Station16):
        return station.config.get("SecurityProfile")
    assert isinstance(station, Station201)
    return station.variables.get("SecurityCtrlr", "SecurityProfile")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_profile_2_station_boots_over_wss_with_its_password(
    tls_central: CentralSystem, pki: Pki, protocol: str
) -> None:
    station_id = f"SIM-P2-{protocol}"
    await _register(tls_central, station_id, 2, PASSWORD)
    station = STATIONS[protocol](station_id, wss_url(tls_central), password=PASSWORD,
                                 ca_file=pki.ca, reconnect_delay=0.05)
    assert station.security_profile == 2 and _reported_profile(station) == "2"
    async with station:
        assert station.booted.is_set() and station.connect_problem is None
        await station.heartbeat()
    await _assert_booted_in_db(tls_central, station_id, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_profile_3_station_boots_with_its_client_certificate(
    tls_central: CentralSystem, pki: Pki, protocol: str
) -> None:
    station_id = f"SIM-P3-{protocol}"
    await _register(tls_central, station_id, 3)  # no password: the certificate is the login
    issued = pki.charger(station_id)
    station = STATIONS[protocol](station_id, wss_url(tls_central), ca_file=pki.ca,
                                 cert_file=issued.cert, key_file=issued.key,
                                 reconnect_delay=0.05)
    assert station.security_profile == 3 and _reported_profile(station) == "3"
    async with station:
        assert station.booted.is_set()
        assert station_id in tls_central.registry.ids()
    await _assert_booted_in_db(tls_central, station_id, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_plain_ws_below_the_stations_profile_is_refused_and_explained(
    tls_central: CentralSystem, protocol: str
) -> None:
    station_id = f"SIM-LOW-{protocol}"
    await _register(tls_central, station_id, 2, PASSWORD)
    station = STATIONS[protocol](station_id, tls_central.ocpp_url, password=PASSWORD,
                                 max_connect_attempts=2, reconnect_delay=0.01)
    with pytest.raises(BootTimeout) as refused:
        await station.start(timeout=30)
    assert station.gave_up and station.connect_failures == 2
    assert station.last_http_status == 403
    assert station.last_refusal == station.connect_problem == TLS_REQUIRED
    assert f"(gave up connecting): {TLS_REQUIRED}" in str(refused.value)
    assert not station.connected and station.boot_count == 0
    db = await tls_central.store.get_station(station_id)
    assert db is not None and db.boot_count == 0
    refusals = [e.detail for e in await tls_central.store.connection_log(station_id)
                if e.kind == "refused"]
    assert refusals == ["security profile 2: TLS required (connect with wss://)"] * 2


async def test_a_retrying_station_reports_the_refusal_at_once(
    tls_central: CentralSystem,
) -> None:
    """Without ``max_connect_attempts`` the station retries like a charger, and its problem
    listeners hear the reason of the very first refusal."""
    await _register(tls_central, "SIM-RETRY", 2, PASSWORD)
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    station = Station16("SIM-RETRY", tls_central.ocpp_url, password=PASSWORD,
                        reconnect_delay=0.05)
    station.problem_listeners.append(lambda st, problem: heard.put_nowait(
        (st.station_id, problem)))
    await station.start(wait=False)
    try:
        async with asyncio.timeout(10):
            assert await heard.get() == ("SIM-RETRY", TLS_REQUIRED)
        assert not station.gave_up and station.boot_count == 0
    finally:
        await station.stop()


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("no-ca", "TLS: server certificate not accepted: "),
        ("no-certificate", "HTTP 403 Forbidden: security profile 3: client certificate "
                           "required"),
        ("other-certificate", "HTTP 403 Forbidden: security profile 3: client certificate is "
                              "for another charger"),
    ],
)
async def test_tls_problems_are_described(
    tls_central: CentralSystem, pki: Pki, how: str, expected: str
) -> None:
    await _register(tls_central, "SIM-P3-BAD", 3, PASSWORD)
    other = pki.charger("SIM-SOMEONE-ELSE")
    choices: dict[str, dict[str, Any]] = {
        "no-ca": {"password": PASSWORD},  # the test CA is not in the system store
        "no-certificate": {"ca_file": pki.ca, "password": PASSWORD},
        "other-certificate": {"ca_file": pki.ca, "cert_file": other.cert,
                              "key_file": other.key},
    }
    station = Station201("SIM-P3-BAD", wss_url(tls_central), max_connect_attempts=1,
                         **choices[how])
    with pytest.raises(BootTimeout, match="gave up connecting"):
        await station.start(timeout=30)
    assert station.connect_problem is not None
    assert station.connect_problem.startswith(expected), station.connect_problem
    assert (station.last_refusal is not None) == expected.startswith("HTTP 403")
    assert station.boot_count == 0


def test_tls_files_are_checked_when_the_station_is_made(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match="not found"):
        Station16("X", "wss://127.0.0.1:1/ocpp", ca_file=tmp_path / "missing.pem")
    with pytest.raises(TlsConfigError, match="both --cert and --key"):
        Station16("X", "wss://127.0.0.1:1/ocpp", cert_file=pki.charger("X").cert)
    with pytest.raises(TlsConfigError, match="cannot load"):
        Station16("X", "wss://127.0.0.1:1/ocpp", cert_file=pki.ca, key_file=pki.ca)


def _per_station_certificates(pki: Pki, folder: Path, ids: list[str]) -> tuple[str, str]:
    """One certificate per charger as ``folder/<id>.crt`` / ``.key``; the ``{id}`` paths."""
    folder.mkdir()
    for station_id in ids:
        issued = pki.charger(station_id)
        shutil.copy(issued.cert, folder / f"{station_id}.crt")
        shutil.copy(issued.key, folder / f"{station_id}.key")
    return str(folder / "{id}.crt"), str(folder / "{id}.key")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fleet_of_profile_3_stations_with_one_certificate_each(
    tls_central: CentralSystem, pki: Pki, tmp_path: Path, protocol: str
) -> None:
    ids = ["FL3-001", "FL3-002", "FL3-003"]
    for station_id in ids:
        await _register(tls_central, station_id, 3)
    cert, key = _per_station_certificates(pki, tmp_path / "certs", ids)
    fleet = Fleet(protocol, 3, wss_url(tls_central), id_prefix="FL3-", ca_file=pki.ca,
                  cert_file=cert, key_file=key, reconnect_delay=0.05, start_timeout=20)
    try:
        assert await fleet.start() == 3
        assert fleet.problems == {}
        assert [st.security_profile for st in fleet.stations] == [3, 3, 3]
    finally:
        await fleet.stop()
    for station_id in ids:
        await _assert_booted_in_db(tls_central, station_id, protocol)


async def test_fleet_shares_one_context_without_id_placeholder(
    tls_central: CentralSystem, pki: Pki
) -> None:
    for n in (1, 2):
        await _register(tls_central, f"FL2-00{n}", 2, PASSWORD)
    fleet = Fleet("1.6", 2, wss_url(tls_central), id_prefix="FL2-", password=PASSWORD,
                  ca_file=pki.ca, reconnect_delay=0.05, start_timeout=20)
    try:
        first, second = fleet.stations
        assert first.tls_context() is second.tls_context()
        assert await fleet.start() == 2
    finally:
        await fleet.stop()


async def test_cli_profile_2_fleet_boots_over_wss(
    tls_central: CentralSystem, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in (1, 2):
        await _register(tls_central, f"CLI2-00{n}", 2, PASSWORD)
    args = sim_cli.build_parser().parse_args([
        "--protocol", "2.0.1", "--count", "2", "--id-prefix", "CLI2-",
        "--url", wss_url(tls_central), "--password", PASSWORD, "--ca-file", str(pki.ca),
        "--summary-interval", "0.1", "--start-timeout", "30",
    ])
    out, err = await run_cli_until_booted(args, capsys)
    assert "done: 2/2 stations booted" in out
    assert "cannot connect" not in err
    for n in (1, 2):
        await _assert_booted_in_db(tls_central, f"CLI2-00{n}", "2.0.1")


async def test_cli_refusal_is_printed_and_the_run_ends(
    tls_central: CentralSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ``--duration``: the run would last until Ctrl-C, but every station gives up after
    ``--max-connect-attempts`` refusals, so it ends with exit 1 and the reason on stderr."""
    await _register(tls_central, "CLI-LOW-001", 2, PASSWORD)
    args = sim_cli.build_parser().parse_args([
        "--count", "1", "--id-prefix", "CLI-LOW-", "--url", tls_central.ocpp_url,
        "--password", PASSWORD, "--max-connect-attempts", "3", "--summary-interval", "60",
    ])
    async with asyncio.timeout(60):  # a hang fails here
        assert await sim_cli.run(args) == 1
    captured = capsys.readouterr()
    assert captured.err.count(
        f"csms-sim: CLI-LOW-001: cannot connect to {tls_central.ocpp_url}/CLI-LOW-001: "
        f"{TLS_REQUIRED}") == 1  # printed once, not per retry
    assert f"connection problem (3x): {TLS_REQUIRED}" in captured.err
    assert "done: 0/1 stations booted (FAILED)" in captured.out
    assert "gave_up=1" in captured.out and "1 station(s) gave up" in captured.out


async def test_csms_sim_command_profile_3_with_certificate_template(
    tls_central: CentralSystem, pki: Pki, tmp_path: Path
) -> None:
    """``python -m simulators`` as a CI job runs it: 1.6 stations with ``{id}`` certificates."""
    ids = ["CMD3-001", "CMD3-002"]
    for station_id in ids:
        await _register(tls_central, station_id, 3)
    cert, key = _per_station_certificates(pki, tmp_path / "certs", ids)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "--protocol", "1.6", "--count", "2",
        "--id-prefix", "CMD3-", "--url", wss_url(tls_central), "--ca-file", str(pki.ca),
        "--cert", cert, "--key", key, "--summary-interval", "0.1", "--start-timeout", "30",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            while b"ever_booted=2" not in (line := await proc.stdout.readline()):
                assert line, "csms-sim ended before both stations booted"
            proc.send_signal(signal.SIGTERM)  # what Ctrl-C / a CI job's end does
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (out, err)
    assert b"done: 2/2 stations booted" in out
    for station_id in ids:
        await _assert_booted_in_db(tls_central, station_id, "1.6")


def test_cli_rejects_bad_tls_options(pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--url", "wss://127.0.0.1:1/ocpp", "--duration", "0.1"]
    assert sim_cli.main([*url, "--cert", str(pki.ca)]) == 2
    assert "needs both --cert and --key" in capsys.readouterr().err
    assert sim_cli.main([*url, "--ca-file", "/nonexistent/ca.pem"]) == 2
    assert "TLS file not found: /nonexistent/ca.pem" in capsys.readouterr().err
    assert sim_cli.main([*url, "--max-connect-attempts", "0"]) == 2


async def test_https_upload_trusts_the_stations_ca_file(
    make_central: MakeCentral, pki: Pki
) -> None:
    """GetDiagnostics over wss:// with the upload to the HTTPS side: the station verifies the
    upload server against the same ``ca_file`` (the test CA is not in the system store)."""
    central = await make_central(settings=https_settings(pki), **tls_options(pki))
    station_id = "SIM-HTTPS-UP"
    await _register(central, station_id, 2, PASSWORD)
    slot = central.uploads.open(station_id, 21)
    assert slot.location("http").startswith("https://")
    async with Station16(station_id, wss_url(central), password=PASSWORD, ca_file=pki.ca,
                         scenario="log-upload-http"):
        outcome = await central.execute(
            station_id, RequestLog(location=slot.location("http"), request_id=21))
        assert outcome.ok, outcome
        uploaded = await asyncio.wait_for(central.uploads.registry.completed(slot), 10)
    content = uploaded.path.read_bytes()
    assert hashlib.sha256(content).hexdigest() == uploaded.sha256 and content


async def test_https_upload_without_the_ca_file_fails(make_central: MakeCentral,
                                                      pki: Pki) -> None:
    central = await make_central(settings=https_settings(pki))
    slot = central.uploads.open("SIM-NO-CA", 22)
    station = Station16("SIM-NO-CA", central.ocpp_url)
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        await station.uploader(slot.location("http"), b"log line\n")
    trusted = Station16("SIM-CA", central.ocpp_url, ca_file=pki.ca)
    assert await trusted.uploader(slot.location("http"), b"log line\n")
