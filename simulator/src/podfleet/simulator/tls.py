"""HTTPS for the simulator: a throwaway certificate authority and a server certificate.

A real API server is reached over TLS with a CA from the kubeconfig and a bearer token, and
clients' TLS code paths (the official client's urllib3 pool, aiohttp's SSL context, kubectl)
are where configuration mistakes hide. Each simulator generates its own CA and a server
certificate for the addresses it listens on; the kubeconfig carries the CA as
`certificate-authority-data`. ECDSA P-256 keys keep generation to milliseconds.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass

#: Names every simulator certificate is valid for, besides the address it listens on.
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
_VALIDITY = datetime.timedelta(days=365)


@dataclass
class TlsConfig:
    """Whether the simulator serves HTTPS, and the PEM material it serves with.

    Empty PEM fields are filled by `with_generated_material` when the simulator starts, so a
    config shipped to a child process carries the same CA the parent hands its clients.
    """

    enabled: bool = True
    ca_pem: str = ""
    cert_pem: str = ""
    key_pem: str = ""

    @property
    def ready(self) -> bool:
        return bool(self.ca_pem and self.cert_pem and self.key_pem)

    def ca_data(self) -> str:
        """The CA as kubeconfig's `certificate-authority-data` (base64 of the PEM)."""
        return base64.b64encode(self.ca_pem.encode()).decode()


def generate_material(hosts: tuple[str, ...] = ()) -> TlsConfig:
    """A new CA and a server certificate it signed, valid for loopback and `hosts`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)  # tolerate clock skew between processes
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "podfleet-simulator-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + _VALIDITY)
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*LOOPBACK_NAMES, *hosts]):
        if not host or host in ("0.0.0.0", "::"):
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "podfleet-simulator")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TlsConfig(
        enabled=True,
        ca_pem=ca_cert.public_bytes(pem).decode(),
        cert_pem=server_cert.public_bytes(pem).decode(),
        key_pem=server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


def with_generated_material(tls: TlsConfig, host: str) -> TlsConfig:
    """`tls` itself when it is off or complete, else the same with freshly generated PEMs."""
    if not tls.enabled or tls.ready:
        return tls
    return generate_material((host,))


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """The SSLContext the server listens with (TLS 1.2+, the generated certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The ssl module loads a certificate chain only from files: a private, short-lived pair.
    with tempfile.TemporaryDirectory(prefix="podfleet-sim-tls-") as directory:
        cert_path = os.path.join(directory, "server.crt")
        key_path = os.path.join(directory, "server.key")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(tls.key_pem)
        with open(cert_path, "w") as handle:
            handle.write(tls.cert_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


def client_context(ca_pem: str) -> ssl.SSLContext:
    """An SSLContext that trusts only the simulator's CA (for raw HTTP clients and tests)."""
    return ssl.create_default_context(cadata=ca_pem)
