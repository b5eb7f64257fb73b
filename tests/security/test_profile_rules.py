"""The per-station security profile rules and the TLS helpers, without sockets."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest
from pydantic import ValidationError

from csms.security.profiles import (
    Admit,
    Refuse,
    SecurityProfile,
    Transport,
    decide,
    required_profile,
)
from csms.security.tls import certificate_names, http_context, ocpp_context, server_context
from csms.settings import HttpSettings, OcppSettings, SettingsError
from tests.security.pki import Pki

PLAIN = Transport(tls=False)
TLS = Transport(tls=True)
CERT = Transport(tls=True, certificate_names=frozenset({"CP1"}))
OTHER_CERT = Transport(tls=True, certificate_names=frozenset({"CP2"}))


@pytest.mark.parametrize(
    ("required", "transport", "has_password", "expected"),
    [
        # 0 and 1: today's behaviour, any transport, Basic auth when there is a password.
        (0, PLAIN, False, Admit(basic_auth=True, reached=SecurityProfile.NONE)),
        (1, PLAIN, True, Admit(basic_auth=True, reached=SecurityProfile.BASIC_AUTH)),
        (1, TLS, True, Admit(basic_auth=True, reached=SecurityProfile.TLS_BASIC_AUTH)),
        # 2: TLS and a password.
        (2, PLAIN, True, Refuse("security profile 2: TLS required (connect with wss://)")),
        (2, TLS, False, Refuse("security profile 2: no password set for the station")),
        (2, TLS, True, Admit(basic_auth=True, reached=SecurityProfile.TLS_BASIC_AUTH)),
        # 3: a certificate naming the charger, no Basic auth.
        (3, PLAIN, True, Refuse("security profile 3: TLS required (connect with wss://)")),
        (3, TLS, True, Refuse("security profile 3: client certificate required")),
        (3, CERT, False, Admit(basic_auth=False,
                               reached=SecurityProfile.TLS_CLIENT_CERTIFICATE)),
        (3, OTHER_CERT, True,
         Refuse("security profile 3: client certificate is for another charger")),
        # A certificate naming the charger is enough whatever the profile; another's never.
        (1, CERT, True, Admit(basic_auth=False, reached=SecurityProfile.TLS_CLIENT_CERTIFICATE)),
        (2, CERT, False, Admit(basic_auth=False,
                               reached=SecurityProfile.TLS_CLIENT_CERTIFICATE)),
        (0, OTHER_CERT, False,
         Refuse("security profile 0: client certificate is for another charger")),
    ],
)
def test_decide(required: int, transport: Transport, has_password: bool,
                expected: Admit | Refuse) -> None:
    assert decide("CP1", SecurityProfile(required), transport,
                  has_password=has_password) == expected


def test_refusals_are_403() -> None:
    verdict = decide("CP1", SecurityProfile.TLS_BASIC_AUTH, PLAIN, has_password=True)
    assert isinstance(verdict, Refuse) and verdict.status == HTTPStatus.FORBIDDEN


def test_the_station_profile_wins_over_the_default() -> None:
    assert required_profile(None, 2) is SecurityProfile.TLS_BASIC_AUTH
    assert required_profile(0, 3) is SecurityProfile.NONE
    assert required_profile(3, 1) is SecurityProfile.TLS_CLIENT_CERTIFICATE


def test_certificate_names_reads_common_names_and_dns_alt_names() -> None:
    peercert = {
        "subject": ((("countryName", "NL"),), (("commonName", "CP-1"),)),
        "subjectAltName": (("DNS", "cp-1.example"), ("IP Address", "10.0.0.1"),
                           ("URI", "urn:x")),
    }
    assert certificate_names(peercert) == {"CP-1", "cp-1.example"}
    assert certificate_names(None) is None
    assert certificate_names({}) is None  # presented but not verified (CERT_NONE)


def test_tls_settings_go_in_pairs() -> None:
    with pytest.raises(ValidationError, match=r"tls_cert and ocpp\.tls_key"):
        OcppSettings(tls_key=Path("k.pem"))
    with pytest.raises(ValidationError, match=r"need ocpp\.tls_cert"):
        OcppSettings(tls_port=9443)
    with pytest.raises(ValidationError, match=r"need ocpp\.tls_cert"):
        OcppSettings(tls_ca=Path("ca.pem"))
    with pytest.raises(ValidationError, match=r"http\.tls_cert and http\.tls_key"):
        HttpSettings(tls_cert=Path("c.pem"))
    with pytest.raises(ValidationError):
        OcppSettings(default_security_profile=4)
    assert not OcppSettings().tls and OcppSettings().default_security_profile == 1


def test_contexts(pki: Pki) -> None:
    assert ocpp_context(OcppSettings()) is None and http_context(HttpSettings()) is None
    mutual = ocpp_context(OcppSettings(tls_cert=pki.server.cert, tls_key=pki.server.key,
                                       tls_ca=pki.ca))
    assert mutual is not None and mutual.verify_mode.name == "CERT_OPTIONAL"
    assert mutual.minimum_version.name == "TLSv1_2"
    assert mutual.cert_store_stats()["x509_ca"] == 1  # the client CA alone, no system store
    plain = ocpp_context(OcppSettings(tls_cert=pki.server.cert, tls_key=pki.server.key))
    assert plain is not None and plain.verify_mode.name == "CERT_NONE"
    with pytest.raises(SettingsError, match="cannot load TLS files"):
        server_context(pki.ca, pki.server.key)  # key does not match the certificate
    with pytest.raises(SettingsError, match="not found"):
        server_context(Path("/nonexistent/cert.pem"), pki.server.key)
