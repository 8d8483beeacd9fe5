"""HTTPS for the server: a certificate and key given in the settings, or a self-signed one the
server creates in the workspace home (``<home>/tls/``) with a SAN for every name and address it
serves under.

Clients trust the self-signed certificate through ``<home>/tls/ca-bundle.pem``: certifi's
public roots with this certificate appended, so one ``REQUESTS_CA_BUNDLE`` serves both this
server and public Azure.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sluiceway.clock import utcnow
from sluiceway.home import WorkspaceHome

#: A self-signed certificate is made anew when it has less than this left.
RENEW_BEFORE = timedelta(days=30)
LIFETIME = timedelta(days=825)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerCertificate:
    """The files uvicorn serves with, and the bundle clients trust."""

    cert: Path
    key: Path
    ca_bundle: Path | None  # None for a certificate the operator gave (its CA is theirs)


def tls_dir(home: WorkspaceHome) -> Path:
    return home.tls_dir


def ca_bundle_path(home: WorkspaceHome) -> Path:
    return home.ca_bundle


def subject_names(host: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The names a self-signed certificate covers: loopback, this machine's name, the host the
    server listens on (unless a wildcard address) and ``extra``."""
    names = [*_LOOPBACK, socket.gethostname()]
    if host not in ("", "0.0.0.0", "::"):
        names.append(host)
    names.extend(extra)
    seen: list[str] = []
    for name in names:
        name = name.strip().strip("[]")
        if name and name not in seen:
            seen.append(name)
    return seen


def self_signed(home: WorkspaceHome, names: list[str]) -> ServerCertificate:
    """The home's self-signed certificate, made (or made anew) so that it covers ``names`` and
    is not about to expire; the key is written with mode 0600."""
    folder = tls_dir(home)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _covers(current, names) and current.not_valid_after_utc - utcnow() > RENEW_BEFORE:
            _write_bundle(home, cert_path)
            return ServerCertificate(cert_path, key_path, ca_bundle_path(home))
    cert, key = _make(names)
    folder.mkdir(parents=True, exist_ok=True)
    home.write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_bundle(home, cert_path)
    return ServerCertificate(cert_path, key_path, ca_bundle_path(home))


def _covers(cert: x509.Certificate, names: list[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(name in have for name in names)


def _make(names: list[str]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Sluiceway {names[0]}")])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = utcnow()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _write_bundle(home: WorkspaceHome, cert: Path) -> None:
    import certifi

    roots = Path(certifi.where()).read_text()
    bundle = f"{roots.rstrip()}\n# Sluiceway server certificate\n{cert.read_text()}"
    path = ca_bundle_path(home)
    if not path.exists() or path.read_text() != bundle:
        path.write_text(bundle)
