"""Security profiles 2 and 3 at the websocket handshake, with real TLS (OCPP 2.0.1 Part 2 §A00,
OCPP 1.6 Security Whitepaper §2): the real central system, a throwaway PKI, both databases."""

from __future__ import annotations

import ssl

import pytest
from websockets.exceptions import InvalidHandshake, InvalidStatus

from csms.app import CentralSystem
from csms.metrics.labels import refusal
from csms.security.passwords import hash_password
from tests.conftest import MakeCentral
from tests.e2e.rawclient import BOOT_16, BOOT_201, basic_auth, call
from tests.metrics.helpers import scrape
from tests.security.clients import open_charger, wss_url
from tests.security.conftest import tls_options
from tests.security.pki import Pki

PASSWORD = "correct horse battery"
REFUSED = "csms_ocpp_connections_refused_total"


async def _station(central: CentralSystem, station_id: str, profile: int | None,
                   password: str | None = PASSWORD) -> None:
    await central.store.ensure_station(station_id)
    if password is not None:
        await central.store.set_password_hash(station_id, hash_password(password))
    assert await central.store.set_security_profile(station_id, profile)


async def _refusals(central: CentralSystem, station_id: str) -> list[str | None]:
    return [e.detail for e in await central.store.connection_log(station_id)
            if e.kind == "refused"]


async def _refused_status(url: str, station_id: str, **options: object) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        await open_charger(url, station_id, **options)  # type: ignore[arg-type]
    return refused.value


async def test_profile_2_accepts_wss_with_the_right_password(
    tls_central: CentralSystem, pki: Pki
) -> None:
    await _station(tls_central, "SP2-OK", 2)
    ws = await open_charger(wss_url(tls_central), "SP2-OK", context=pki.client_context(),
                            headers=basic_auth("SP2-OK", PASSWORD))
    try:
        answer = await call(ws, "BootNotification", BOOT_16)
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"
    finally:
        await ws.close()
    station = await tls_central.store.get_station("SP2-OK")
    assert station is not None and station.vendor == "RawVendor"
    assert await _refusals(tls_central, "SP2-OK") == []


async def test_profile_2_refuses_a_wrong_password_over_wss_with_401(
    tls_central: CentralSystem, pki: Pki
) -> None:
    await _station(tls_central, "SP2-PW", 2)
    refused = await _refused_status(wss_url(tls_central), "SP2-PW",
                                    context=pki.client_context(),
                                    headers=basic_auth("SP2-PW", "not the password"))
    assert refused.response.status_code == 401
    assert await _refusals(tls_central, "SP2-PW") == ["wrong password"]


async def test_profile_2_over_plain_ws_is_refused_logged_and_counted(
    tls_central: CentralSystem,
) -> None:
    await _station(tls_central, "SP2-PLAIN", 2)
    before = (await scrape(tls_central)).value(REFUSED, reason=refusal(
        "security profile 2: TLS required (connect with wss://)"))
    # The right password does not help: it went over the network in the clear.
    refused = await _refused_status(tls_central.ocpp_url, "SP2-PLAIN",
                                    headers=basic_auth("SP2-PLAIN", PASSWORD))
    assert refused.response.status_code == 403
    assert b"TLS required" in refused.response.body
    reasons = await _refusals(tls_central, "SP2-PLAIN")
    assert reasons == ["security profile 2: TLS required (connect with wss://)"]
    after = (await scrape(tls_central)).value(REFUSED, reason=refusal(reasons[0]))
    assert after == before + 1
    assert "SP2-PLAIN" not in tls_central.registry.ids()


async def test_profile_2_without_a_password_is_refused(
    tls_central: CentralSystem, pki: Pki
) -> None:
    await _station(tls_central, "SP2-NOPW", 2, password=None)
    refused = await _refused_status(wss_url(tls_central), "SP2-NOPW",
                                    context=pki.client_context())
    assert refused.response.status_code == 403
    assert await _refusals(tls_central, "SP2-NOPW") == [
        "security profile 2: no password set for the station"]


async def test_profile_3_client_certificate_is_enough_to_boot(
    tls_central: CentralSystem, pki: Pki
) -> None:
    await _station(tls_central, "SP3-OK", 3)  # has a password: not asked for under profile 3
    ws = await open_charger(wss_url(tls_central), "SP3-OK", subprotocol="ocpp2.0.1",
                            context=pki.client_context(pki.charger("SP3-OK")))
    try:
        answer = await call(ws, "BootNotification", BOOT_201)
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"
        assert "SP3-OK" in tls_central.registry.ids()
    finally:
        await ws.close()
    station = await tls_central.store.get_station("SP3-OK")
    assert station is not None and station.protocol == "2.0.1" and station.boot_count == 1


async def test_profile_3_accepts_the_identity_in_a_dns_subject_alt_name(
    tls_central: CentralSystem, pki: Pki
) -> None:
    await _station(tls_central, "SP3-SAN", 3, password=None)
    ws = await open_charger(wss_url(tls_central), "SP3-SAN",
                            context=pki.client_context(pki.charger("SP3-SAN", san_only=True)))
    try:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
    finally:
        await ws.close()


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        (None, "security profile 3: client certificate required"),
        ("SP3-SOMEONE-ELSE", "security profile 3: client certificate is for another charger"),
    ],
)
async def test_profile_3_refuses_no_certificate_or_another_chargers(
    tls_central: CentralSystem, pki: Pki, certificate: str | None, reason: str
) -> None:
    await _station(tls_central, "SP3-NO", 3)
    context = pki.client_context(pki.charger(certificate) if certificate else None)
    # Even with the right Basic auth password: profile 3 wants the certificate.
    refused = await _refused_status(wss_url(tls_central), "SP3-NO", context=context,
                                    headers=basic_auth("SP3-NO", PASSWORD))
    assert refused.response.status_code == 403
    assert await _refusals(tls_central, "SP3-NO") == [reason]
    assert "SP3-NO" not in tls_central.registry.ids()


async def test_profile_3_over_plain_ws_is_refused(tls_central: CentralSystem) -> None:
    await _station(tls_central, "SP3-PLAIN", 3)
    refused = await _refused_status(tls_central.ocpp_url, "SP3-PLAIN")
    assert refused.response.status_code == 403
    assert await _refusals(tls_central, "SP3-PLAIN") == [
        "security profile 3: TLS required (connect with wss://)"]


async def test_certificate_from_an_unknown_ca_fails_the_tls_handshake(
    tls_central: CentralSystem, pki: Pki
) -> None:
    await _station(tls_central, "SP3-ROGUE", 3)
    context = pki.client_context(pki.charger("SP3-ROGUE", rogue=True))
    with pytest.raises((ssl.SSLError, OSError, InvalidHandshake)):
        ws = await open_charger(wss_url(tls_central), "SP3-ROGUE", context=context)
        await ws.close()  # pragma: no cover - only reached if the server let it in
    assert "SP3-ROGUE" not in tls_central.registry.ids()
    station = await tls_central.store.get_station("SP3-ROGUE")
    assert station is not None and station.last_seen_at is None


async def test_a_certificate_for_another_charger_is_refused_under_profile_1(
    tls_central: CentralSystem, pki: Pki
) -> None:
    await _station(tls_central, "SP1-CERT", 1, password=None)
    context = pki.client_context(pki.charger("SP1-IMPOSTOR"))
    refused = await _refused_status(wss_url(tls_central), "SP1-CERT", context=context)
    assert refused.response.status_code == 403
    assert await _refusals(tls_central, "SP1-CERT") == [
        "security profile 1: client certificate is for another charger"]


async def test_profile_1_station_still_works_on_plain_ws(tls_central: CentralSystem) -> None:
    await _station(tls_central, "SP1-WS", 1)
    with pytest.raises(InvalidStatus) as refused:
        await open_charger(tls_central.ocpp_url, "SP1-WS")
    assert refused.value.response.status_code == 401  # Basic auth as before
    ws = await open_charger(tls_central.ocpp_url, "SP1-WS",
                            headers=basic_auth("SP1-WS", PASSWORD))
    try:
        assert (await call(ws, "BootNotification", BOOT_16))[2]["status"] == "Accepted"
    finally:
        await ws.close()
    # A station without a profile of its own follows the default (1): unknown ones too.
    ws = await open_charger(tls_central.ocpp_url, "NEW-PLAIN")
    try:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
    finally:
        await ws.close()


async def test_default_profile_applies_to_stations_without_their_own(
    make_central: MakeCentral, pki: Pki
) -> None:
    central = await make_central(**tls_options(pki, default_security_profile=2))
    refused = await _refused_status(central.ocpp_url, "NEW-DEFAULT")
    assert refused.response.status_code == 403
    await _station(central, "SP-OWN-1", 1, password=None)
    ws = await open_charger(central.ocpp_url, "SP-OWN-1")
    await ws.close()
    await _station(central, "SP-BACK-TO-DEFAULT", None)
    refused = await _refused_status(central.ocpp_url, "SP-BACK-TO-DEFAULT",
                                    headers=basic_auth("SP-BACK-TO-DEFAULT", PASSWORD))
    assert refused.response.status_code == 403


async def test_tls_on_the_main_port_only(make_central: MakeCentral, pki: Pki) -> None:
    central = await make_central(**tls_options(pki, tls_port=None))
    assert central.ocpp.tls_port == central.ocpp.port
    await _station(central, "SP2-MAIN", 2)
    base = f"wss://127.0.0.1:{central.ocpp.port}/ocpp"
    assert central.ocpp_url == base
    ws = await open_charger(base, "SP2-MAIN", context=pki.client_context(),
                            headers=basic_auth("SP2-MAIN", PASSWORD))
    try:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
    finally:
        await ws.close()
    with pytest.raises((InvalidHandshake, OSError)):  # plain HTTP to a TLS port
        ws = await open_charger(base.replace("wss://", "ws://"), "SP2-MAIN")
        await ws.close()  # pragma: no cover
