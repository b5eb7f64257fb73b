"""Security profiles per station: what a handshake must show before the upgrade (pure rules).

OCPP 2.0.1 Part 2 §A00 and the OCPP 1.6 Security Whitepaper §2 define three profiles:

- **1** Basic auth over plain ``ws://`` (trusted networks only);
- **2** ``wss://`` (TLS, server certificate) and Basic auth;
- **3** ``wss://`` with a client certificate: the certificate verifies against the CSMS's
  client CA and names the charger (its subject commonName is the charge point identity);
  no Basic auth.

Here **0** and **1** are the same rule, today's behaviour: any transport, and Basic auth only
when the station has a password. A station's own profile (``stations.security_profile``)
wins over ``ocpp.default_security_profile``.

Whatever the required profile, a verified client certificate that names the charger
authenticates it on its own (profile 3 reached: a charger may connect *above* its profile),
and a certificate that names another charger is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from http import HTTPStatus


class SecurityProfile(IntEnum):
    """OCPP security profiles (0: no security at all, this CSMS treats it like 1)."""

    NONE = 0
    BASIC_AUTH = 1
    TLS_BASIC_AUTH = 2
    TLS_CLIENT_CERTIFICATE = 3


@dataclass(frozen=True)
class Transport:
    """What the connection shows below HTTP."""

    tls: bool
    """The handshake arrived over TLS (``wss://``)."""
    certificate_names: frozenset[str] | None = None
    """Names (subject commonName, DNS subjectAltName) of the client certificate the TLS layer
    verified against the client CA; ``None`` when the charger presented none."""


@dataclass(frozen=True)
class Admit:
    """Let the handshake go on."""

    basic_auth: bool
    """Whether Basic auth is still checked (when the station has a password)."""
    reached: SecurityProfile
    """The profile this connection meets."""


@dataclass(frozen=True)
class Refuse:
    """Refuse the handshake with ``status``; ``reason`` is logged, counted and recorded."""

    reason: str
    status: HTTPStatus = HTTPStatus.FORBIDDEN


def required_profile(station_profile: int | None, default: int) -> SecurityProfile:
    """The station's own profile, else the server default."""
    return SecurityProfile(default if station_profile is None else station_profile)


def decide(
    identity: str, required: SecurityProfile, transport: Transport, *, has_password: bool
) -> Admit | Refuse:
    """The rule for one handshake of ``identity`` (before Basic auth is checked).

    Refusal reasons start with ``security profile N:`` (N the required profile).
    """
    names = transport.certificate_names
    if names is not None:
        if identity in names:
            return Admit(basic_auth=False, reached=SecurityProfile.TLS_CLIENT_CERTIFICATE)
        return Refuse(f"security profile {int(required)}: client certificate is for another "
                      "charger")
    if required >= SecurityProfile.TLS_BASIC_AUTH and not transport.tls:
        return Refuse(f"security profile {int(required)}: TLS required (connect with wss://)")
    if required == SecurityProfile.TLS_CLIENT_CERTIFICATE:
        return Refuse(f"security profile {int(required)}: client certificate required")
    if required == SecurityProfile.TLS_BASIC_AUTH:
        if not has_password:
            return Refuse(f"security profile {int(required)}: no password set for the station")
        return Admit(basic_auth=True, reached=SecurityProfile.TLS_BASIC_AUTH)
    if not has_password:
        return Admit(basic_auth=True, reached=SecurityProfile.NONE)
    reached = SecurityProfile.TLS_BASIC_AUTH if transport.tls else SecurityProfile.BASIC_AUTH
    return Admit(basic_auth=True, reached=reached)
