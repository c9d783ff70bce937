"""A throwaway certificate authority for TLS tests: a CA, server and client certificates, and a rogue one.

Server certificates name ``localhost`` and ``127.0.0.1`` so clients can dial either; every key is a
P-256 EC key and every certificate lives an hour.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.tls import TlsSettings


@dataclass(frozen=True)
class Pki:
    """PEM files of one test CA and the certificates it (or a rogue CA) issued."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path

    def server(self, *, require_client_cert: bool = True) -> TlsSettings:
        """Server settings: the server certificate, client certificates checked against the CA."""
        return TlsSettings(
            cert_file=self.server_cert,
            key_file=self.server_key,
            ca_file=self.ca,
            require_client_cert=require_client_cert,
        )

    def client(self) -> TlsSettings:
        """Client settings: trust the CA, present the client certificate."""
        return TlsSettings(cert_file=self.client_cert, key_file=self.client_key, ca_file=self.ca)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def make_pki(directory: Path) -> Pki:
    """A CA, a server and a client certificate it signs, and a client certificate from another CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("ew test CA", ca_key, _name("ew test CA"), ca_key, ca=True)
    ca_path, _ = _write(directory, "ca", ca_cert, ca_key)

    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _issue("ew-service", server_key, ca_cert.subject, ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    server_cert, server_key_path = _write(directory, "server", server, server_key)

    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _issue("ew-sync", client_key, ca_cert.subject, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    client_cert, client_key_path = _write(directory, "client", client, client_key)

    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _issue(
        "intruder", rogue_key, _name("rogue CA"), rogue_ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    rogue_cert, rogue_key_path = _write(directory, "rogue", rogue, rogue_key)
    return Pki(
        ca_path, server_cert, server_key_path, client_cert, client_key_path, rogue_cert, rogue_key_path
    )
