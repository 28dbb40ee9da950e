"""TLS for security profile 2: a server context, and a self-signed CA for a first start."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_CERT = "evcms-ca.pem"
CA_KEY = "evcms-ca.key"
SERVER_CERT = "evcms-server.pem"
SERVER_KEY = "evcms-server.key"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _alt_names(hostnames: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(names)


def generate_self_signed(
    directory: Path, hostnames: list[str], *, days: int = 825
) -> tuple[Path, Path, Path]:
    """Write a CA and a server certificate signed by it; returns (cert, key, ca_cert)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EVCMS Desktop local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(_alt_names(hostnames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / SERVER_CERT, directory / SERVER_KEY, directory / CA_CERT)
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths[1], key)
    paths[2].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / CA_KEY, ca_key)
    return paths


def ensure_server_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """The generated server certificate in `directory`, made on first use."""
    cert, key = directory / SERVER_CERT, directory / SERVER_KEY
    if cert.exists() and key.exists():
        return cert, key
    names = ["localhost", "127.0.0.1", socket.gethostname()]
    if host not in ("0.0.0.0", "::", "") and host not in names:
        names.insert(0, host)
    cert, key, ca = generate_self_signed(directory, names)
    log.warning(
        "No TLS certificate configured: generated a self-signed CA and server certificate."
        " Server certificate: %s. Install the CA certificate %s on the chargers.",
        cert,
        ca,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # the security whitepaper's minimum
    context.load_cert_chain(cert, key)
    return context
