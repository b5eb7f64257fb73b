"""TLS for the OCPP endpoint (``wss://``, security profiles 2 and 3) and the HTTP side.

Server contexts accept TLS 1.2 and newer only (OCPP 1.6 Security Whitepaper §2, 2.0.1
Part 2 §A00: TLS 1.2 or above). With a client CA (``ocpp.tls_ca``) the OCPP context asks
for a client certificate but does not require one (``CERT_OPTIONAL``), so that profile-2
chargers without a certificate still connect; a certificate that is presented must verify
against that CA only (never the system trust store), else the TLS handshake fails. Which
charger a verified certificate names is read from the connection before the websocket
upgrade (:func:`transport_of`).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from csms.security.profiles import Transport
from csms.settings import HttpSettings, OcppSettings, SettingsError, resolve_path


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``client_ca``, client certificates are asked for
    (optional) and verified against that bundle alone.

    Raises :class:`~csms.settings.SettingsError` when a file is missing or unusable.
    """
    for path in (cert, key, client_ca):
        if path is not None and not resolve_path(path).is_file():
            raise SettingsError(f"TLS file not found: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(resolve_path(cert), resolve_path(key))
        if client_ca is not None:
            context.load_verify_locations(cafile=resolve_path(client_ca))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise SettingsError(f"cannot load TLS files ({cert}, {key}, {client_ca}): {exc}") \
            from exc
    context.verify_mode = ssl.CERT_OPTIONAL if client_ca is not None else ssl.CERT_NONE
    return context


def ocpp_context(settings: OcppSettings) -> ssl.SSLContext | None:
    """The ``wss://`` context of the OCPP endpoint, ``None`` without ``ocpp.tls_cert``."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return server_context(settings.tls_cert, settings.tls_key, settings.tls_ca)


def http_context(settings: HttpSettings) -> ssl.SSLContext | None:
    """The HTTPS context of the HTTP server, ``None`` without ``http.tls_cert``."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = server_context(settings.tls_cert, settings.tls_key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def certificate_names(peercert: dict[str, Any] | None) -> frozenset[str] | None:
    """Subject commonNames and DNS subjectAltNames of a verified peer certificate (as
    :meth:`ssl.SSLSocket.getpeercert` decodes it); ``None`` when there is none."""
    if not peercert:
        return None
    names: set[str] = set()
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.add(value)
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "DNS":
            names.add(value)
    return frozenset(names)


def transport_of(transport: Any) -> Transport:
    """TLS or not, and the names of the verified client certificate, of an asyncio transport
    (a websockets ``ServerConnection.transport``)."""
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return Transport(tls=False)
    return Transport(tls=True, certificate_names=certificate_names(ssl_object.getpeercert()))
