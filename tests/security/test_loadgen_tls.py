"""The load generator over TLS (``wss://``) against the real central system: a fleet of
security profile 2 (Basic auth over TLS, OCPP 1.6 Security Whitepaper §2, 2.0.1 Part 2
§A00) and one of profile 3 with a client certificate per charger boot and talk; a server
certificate the fleet does not trust is a connection error, not a boot; bad TLS options
are refused before anything connects."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from csms.app import CentralSystem
from csms.security.passwords import hash_password
from simulators.loadgen import LoadConfig, LoadFleet
from simulators.loadgen.cli import main as load_main
from simulators.loadgen.fleet import tls_contexts
from simulators.tls import TlsConfigError
from tests.security.clients import wss_url
from tests.security.pki import Pki

SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
PASSWORD = "load-secret-12345"


async def _register(central: CentralSystem, ids: list[str], profile: int,
                    password: str | None = None) -> None:
    for station_id in ids:
        await central.store.ensure_station(station_id)
        if password is not None:
            await central.store.set_password_hash(station_id, hash_password(password))
        assert await central.store.set_security_profile(station_id, profile)


def _fleet(central: CentralSystem, count: int, prefix: str, **options: Any) -> LoadConfig:
    settings: dict[str, Any] = {"mix": 0.5, "connectors": 1, "id_width": 3,
                                "reconnect_delay": 0.1, "boot_timeout": 20.0, **options}
    return LoadConfig(url=wss_url(central), count=count, id_prefix=prefix, **settings)


@SQLITE_ONLY
async def test_profile_2_fleet_boots_and_talks_over_wss(
    tls_central: CentralSystem, pki: Pki
) -> None:
    config = _fleet(tls_central, 20, "LT2-", password=PASSWORD, ca_file=str(pki.ca),
                    rate=100.0, duration=1.5, sessions=True)
    await _register(tls_central, [config.charger_id(n) for n in range(1, 21)], 2, PASSWORD)
    stats = await LoadFleet(config).run()
    assert stats.ever_booted == 20 and stats.refused == {} and stats.connect_errors == 0
    assert stats.results >= 100 and stats.call_errors == 0 and stats.timeouts == 0
    station = await tls_central.store.get_station(config.charger_id(7))
    assert station is not None and station.boot_count == 1


@SQLITE_ONLY
async def test_profile_3_fleet_with_a_certificate_per_charger(
    tls_central: CentralSystem, pki: Pki, tmp_path: Path
) -> None:
    config = _fleet(tls_central, 3, "LT3-", ca_file=str(pki.ca), duration=0.3,
                    cert_file=str(tmp_path / "{id}.crt"), key_file=str(tmp_path / "{id}.key"))
    ids = [config.charger_id(n) for n in range(1, 4)]
    for station_id in ids:
        issued = pki.charger(station_id)
        shutil.copy(issued.cert, tmp_path / f"{station_id}.crt")
        shutil.copy(issued.key, tmp_path / f"{station_id}.key")
    await _register(tls_central, ids, 3)
    stats = await LoadFleet(config).run()
    assert stats.ever_booted == 3 and stats.refused == {} and stats.connect_errors == 0
    for station_id in ids:  # each was let in on its own certificate (its CN is its id)
        station = await tls_central.store.get_station(station_id)
        assert station is not None and station.boot_count == 1


@SQLITE_ONLY
async def test_an_untrusted_server_certificate_is_a_connection_error(
    tls_central: CentralSystem, pki: Pki, tmp_path: Path
) -> None:
    (tmp_path / "other").mkdir()
    other = Pki(tmp_path / "other")  # a CA that did not sign the server's certificate
    config = _fleet(tls_central, 2, "LTX-", password=PASSWORD, ca_file=str(other.ca),
                    duration=0.2, boot_timeout=1.0)
    await _register(tls_central, [config.charger_id(1), config.charger_id(2)], 2, PASSWORD)
    stats = await LoadFleet(config).run()
    assert stats.ever_booted == 0 and stats.connect_errors >= 2


def test_bad_tls_options_are_refused_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="only used with a wss:// url"):
        LoadConfig(url="ws://127.0.0.1:9000/ocpp", ca_file="ca.pem")
    with pytest.raises(ValueError, match="needs both cert_file and key_file"):
        LoadConfig(url="wss://127.0.0.1:9000/ocpp", cert_file="c.pem")
    missing = str(tmp_path / "missing-ca.pem")
    with pytest.raises(TlsConfigError, match="not found"):
        tls_contexts(LoadConfig(url="wss://127.0.0.1:9000/ocpp", ca_file=missing))
    assert tls_contexts(LoadConfig(url="ws://127.0.0.1:9000/ocpp")) is None
    assert load_main(["--url", "wss://127.0.0.1:9/ocpp", "--ca-file", missing,
                      "--count", "1", "--no-progress"]) == 2
    assert "TLS file not found" in capsys.readouterr().err


@SQLITE_ONLY
async def test_a_charger_whose_certificate_is_missing_counts_a_connection_error(
    tls_central: CentralSystem, pki: Pki, tmp_path: Path
) -> None:
    config = _fleet(tls_central, 2, "LTM-", ca_file=str(pki.ca), duration=0.2,
                    boot_timeout=1.5, cert_file=str(tmp_path / "{id}.crt"),
                    key_file=str(tmp_path / "{id}.key"))
    first, second = config.charger_id(1), config.charger_id(2)
    issued = pki.charger(first)  # the second charger has no certificate files
    shutil.copy(issued.cert, tmp_path / f"{first}.crt")
    shutil.copy(issued.key, tmp_path / f"{first}.key")
    await _register(tls_central, [first, second], 3)
    stats = await LoadFleet(config).run()
    assert stats.ever_booted == 1 and stats.connect_errors >= 1
