"""A throwaway PKI for the TLS tests: CAs, a server certificate, charger certificates.

Everything is generated at test time (EC P-256, one day of validity) into a temporary folder:
no key or certificate is committed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass
class _Authority:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    files: Issued


class Pki:
    """Issues certificates under ``folder``; ``ca`` is the one the CSMS trusts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ca = self._authority("Test Charger CA")
        self._rogue = self._authority("Rogue CA")
        self.ca = self._ca.files.cert
        """The CA bundle: ``ocpp.tls_ca`` and the clients' trust anchor for the server."""
        self.server = self._issue(self._ca, "csms.test", server=True)
        """Server certificate for ``127.0.0.1`` and ``localhost``."""

    def charger(self, identity: str, *, rogue: bool = False, san_only: bool = False) -> Issued:
        """A client certificate naming ``identity`` (subject CN, or only a DNS SAN), issued by
        the trusted CA or by a CA the CSMS does not know."""
        authority = self._rogue if rogue else self._ca
        return self._issue(authority, identity, san_only=san_only)

    def client_context(self, issued: Issued | None = None) -> ssl.SSLContext:
        """What a charger uses: trusts the test CA, presents ``issued`` if given."""
        context = ssl.create_default_context(cafile=self.ca)
        if issued is not None:
            context.load_cert_chain(issued.cert, issued.key)
        return context

    def _authority(self, name: str) -> _Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public = key.public_key()
        cert = (
            _builder(subject, subject, public)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return _Authority(name, key, cert, self._write(name, cert, key))

    def _issue(self, authority: _Authority, name: str, *, server: bool = False,
               san_only: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [] if san_only else [x509.NameAttribute(NameOID.COMMON_NAME, name)]
        )
        if server:
            alt: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                           x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            usage = ExtendedKeyUsageOID.SERVER_AUTH
        else:
            alt = [x509.DNSName(name)] if san_only else []
            usage = ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(subject, authority.cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                authority.key.public_key()), critical=False)
        )
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt),
                                            critical=san_only)
        cert = builder.sign(authority.key, hashes.SHA256())
        return self._write(f"{authority.name}-{name}", cert, key)

    def _write(self, stem: str, cert: x509.Certificate,
               key: ec.EllipticCurvePrivateKey) -> Issued:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        cert_path, key_path = self.folder / f"{safe}.crt", self.folder / f"{safe}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return Issued(cert_path, key_path)


def _builder(subject: x509.Name, issuer: x509.Name,
             public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=not ca, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )
