"""TLS of the simulated stations: ``wss://`` (OCPP security profiles 2 and 3) and HTTPS uploads.

OCPP 2.0.1 Part 2 §A00 and the OCPP 1.6 Security Whitepaper §2: under profile 2 the charger
verifies the CSMS's server certificate and sends Basic auth; under profile 3 it also presents
a client certificate whose subject commonName is its charge point identity.

:class:`TlsOptions` holds the files; ``{id}`` in the certificate and key paths is replaced by
the station id, so that one set of options serves a whole fleet of profile-3 stations
(``--cert 'certs/{id}.crt' --key 'certs/{id}.key'``).
"""

from __future__ import annotations

import argparse
import ssl
from dataclasses import dataclass
from pathlib import Path

ID_PLACEHOLDER = "{id}"
"""Replaced by the station id in :attr:`TlsOptions.cert_file` / :attr:`TlsOptions.key_file`."""


class TlsConfigError(ValueError):
    """The TLS options are incomplete, or a file is missing or unusable."""


@dataclass(frozen=True)
class TlsOptions:
    """What a station uses for ``wss://`` and ``https://``.

    ``ca_file`` is the trust anchor for the CSMS's server certificate (default: the system
    store); ``cert_file`` and ``key_file`` (PEM, unencrypted key) are the client certificate
    of security profile 3.
    """

    ca_file: Path | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise TlsConfigError("a client certificate needs both --cert and --key")

    @property
    def per_station(self) -> bool:
        """Whether the certificate paths differ per station (they contain ``{id}``)."""
        return any(ID_PLACEHOLDER in (path or "") for path in (self.cert_file, self.key_file))

    @property
    def client_certificate(self) -> bool:
        """Whether a client certificate is presented (security profile 3)."""
        return self.cert_file is not None

    def files_for(self, station_id: str) -> tuple[Path, Path] | None:
        """(certificate, key) of ``station_id``, ``None`` without a client certificate."""
        if self.cert_file is None or self.key_file is None:
            return None
        return (Path(self.cert_file.replace(ID_PLACEHOLDER, station_id)),
                Path(self.key_file.replace(ID_PLACEHOLDER, station_id)))

    def context(self, station_id: str) -> ssl.SSLContext:
        """A client context for ``station_id`` (raises :class:`TlsConfigError`)."""
        return client_context(self.ca_file, self.files_for(station_id))


def client_context(ca_file: Path | None = None,
                   certificate: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ client context: verifies the server against ``ca_file`` (else the system
    store) including its host name, and presents ``certificate`` (cert, key) if given."""
    for path in (ca_file, *(certificate or ())):
        if path is not None and not path.is_file():
            raise TlsConfigError(f"TLS file not found: {path}")
    try:
        context = ssl.create_default_context(cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if certificate is not None:
            context.load_cert_chain(*certificate)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise TlsConfigError(f"cannot load TLS files: {exc}") from exc
    return context


def add_tls_arguments(parser: argparse.ArgumentParser, *, uploads: bool = False) -> None:
    """``--ca-file``, ``--cert`` and ``--key`` (see :class:`TlsOptions`), in their own group;
    ``uploads``: the CA file is trusted for HTTPS log uploads too."""
    group = parser.add_argument_group("TLS (wss:// URLs, security profiles 2 and 3)")
    trusted = "server certificate and HTTPS uploads" if uploads else "server certificate"
    group.add_argument("--ca-file", default=None, metavar="PEM",
                       help=f"CA certificate(s) to trust for the CSMS's {trusted} (default: "
                            "the system trust store)")
    group.add_argument("--cert", default=None, metavar="PEM",
                       help="client certificate (profile 3; its CN is the charger id); '{id}' "
                            "in the path is replaced by each charger's id")
    group.add_argument("--key", default=None, metavar="PEM",
                       help="private key of --cert (unencrypted PEM; '{id}' as in --cert)")
