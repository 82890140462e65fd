"""The installation's own certificate authority, so that TLS works out of the box.

Devices reach the platform over TLS (the ACS over HTTPS, the USP WebSocket
MTP, MQTT), and USP agents prove their Endpoint ID with an X.509 client
certificate. An operator with a PKI of their own sets OKTOSCRIPTS_TLS_CERT,
OKTOSCRIPTS_TLS_KEY and OKTOSCRIPTS_TLS_CA; everyone else gets a private CA
generated on first need under ``<data dir>/pki``:

    ca.pem / ca.key          the CA (its key readable by the owner only)
    server.pem / server.key  the certificate the platform's TLS ports present,
                             for localhost, this host's names and
                             OKTOSCRIPTS_TLS_HOSTNAMES

Device certificates are issued from the same CA (``manage.py devicecert``).
A USP agent's certificate carries its Endpoint ID as a subjectAltName URI
``urn:bbf:usp:id:<endpoint id>``, the form TR-369 gives for it.

Every process may be the first to need the files (``up`` starts several at
once, and each also runs alone): creation happens under an exclusive lock on
the directory and files are replaced atomically, so all agree on one CA.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from oktoscripts import config

USP_ID_URI_PREFIX = "urn:bbf:usp:id:"
CA_LIFETIME = dt.timedelta(days=3650)
SERVER_LIFETIME = dt.timedelta(days=825)
DEVICE_LIFETIME = dt.timedelta(days=3650)
# A server certificate this close to its end is issued again at the next start.
RENEW_BEFORE = dt.timedelta(days=30)
# Clocks of devices and hosts differ: certificates are valid from a day ago.
BACKDATE = dt.timedelta(days=1)


@dataclass(frozen=True)
class TLSFiles:
    """What the platform's TLS ports use: their certificate (with its chain)
    and key, and the CA bundle that device certificates must chain to."""

    cert: Path
    key: Path
    ca: Path

    def server_context(self, client_certs: ssl.VerifyMode = ssl.CERT_NONE) -> ssl.SSLContext:
        """A server-side context: CERT_OPTIONAL asks clients for a certificate
        (checked against `ca` when one is sent), CERT_REQUIRED insists."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        if client_certs != ssl.CERT_NONE:
            context.load_verify_locations(cafile=self.ca)
            context.verify_mode = client_certs
        return context


def client_context(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A client-side context trusting `ca` (else the system's CAs), presenting
    `cert`/`key` when given: what simulated devices and tests connect with."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def tls_files() -> TLSFiles:
    """The platform's TLS files: the operator's, when OKTOSCRIPTS_TLS_CERT and
    OKTOSCRIPTS_TLS_KEY are set, else the generated ones (made now if needed)."""
    cert = config.value("OKTOSCRIPTS_TLS_CERT")
    key = config.value("OKTOSCRIPTS_TLS_KEY")
    ca = config.value("OKTOSCRIPTS_TLS_CA")
    if bool(cert) != bool(key):
        missing = "OKTOSCRIPTS_TLS_KEY" if cert else "OKTOSCRIPTS_TLS_CERT"
        raise config.ConfigError(missing, "set both OKTOSCRIPTS_TLS_CERT and OKTOSCRIPTS_TLS_KEY")
    if cert:
        files = TLSFiles(Path(cert), Path(key), Path(ca) if ca else Path(cert))
        for name, path in (("CERT", files.cert), ("KEY", files.key), ("CA", files.ca)):
            if not path.is_file():
                raise config.ConfigError(f"OKTOSCRIPTS_TLS_{name}", f"no such file: {path}")
        return files
    authority = Authority.ensure(pki_dir())
    files = authority.ensure_server_certificate(server_hostnames())
    if ca:
        return TLSFiles(files.cert, files.key, Path(ca))
    return files


def pki_dir() -> Path:
    return config.data_dir() / "pki"


def server_hostnames() -> list[str]:
    """The names the generated server certificate is valid for."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    names += config.value("OKTOSCRIPTS_TLS_HOSTNAMES")
    return list(dict.fromkeys(name for name in names if name))


def usp_endpoint_ids(certificate: x509.Certificate) -> list[str]:
    """The Endpoint IDs a certificate vouches for: its subjectAltName URIs of
    the form urn:bbf:usp:id:<endpoint id>."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return [uri[len(USP_ID_URI_PREFIX) :] for uri in uris if uri.startswith(USP_ID_URI_PREFIX)]


def peer_usp_endpoint_ids(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> list[str]:
    """The Endpoint IDs of the verified client certificate of a TLS connection
    (none when the client sent no certificate)."""
    if ssl_object is None:
        return []
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return []
    return usp_endpoint_ids(x509.load_der_x509_certificate(der))


class Authority:
    """The private CA kept in one directory."""

    def __init__(
        self, directory: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ):
        self.directory = directory
        self.certificate = certificate
        self.key = key

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def ensure(cls, directory: Path) -> Authority:
        """The CA of `directory`, created there if it has none."""
        with _locked(directory):
            cert_path, key_path = directory / "ca.pem", directory / "ca.key"
            if cert_path.exists() and key_path.exists():
                return cls(directory, _load_cert(cert_path), _load_key(key_path))
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oktoscripts"),
                    x509.NameAttribute(
                        NameOID.COMMON_NAME, f"oktoscripts CA {socket.gethostname()}"
                    ),
                ]
            )
            now = _now()
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - BACKDATE)
                .not_valid_after(now + CA_LIFETIME)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        key_cert_sign=True,
                        crl_sign=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
                .sign(key, hashes.SHA256())
            )
            _write(key_path, _key_pem(key), private=True)
            _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
            return cls(directory, certificate, key)

    def issue(
        self,
        common_name: str,
        *,
        hostnames: Iterable[str] = (),
        uris: Iterable[str] = (),
        server: bool = False,
        client: bool = False,
        lifetime: dt.timedelta = DEVICE_LIFETIME,
    ) -> tuple[bytes, bytes]:
        """A new key and a certificate for it signed by this CA, both PEM."""
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = [_host_name(name) for name in hostnames]
        alt_names += [x509.UniformResourceIdentifier(uri) for uri in uris]
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] * client
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + lifetime, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        return certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def issue_usp_agent(self, endpoint_id: str) -> tuple[bytes, bytes]:
        """A client certificate for the USP agent `endpoint_id`."""
        return self.issue(endpoint_id, uris=[USP_ID_URI_PREFIX + endpoint_id], client=True)

    def ensure_server_certificate(self, hostnames: list[str]) -> TLSFiles:
        """The server certificate for `hostnames`, issued again when it is
        missing, was not issued by this CA, lacks a name, or ends soon."""
        files = TLSFiles(self.directory / "server.pem", self.directory / "server.key", self.ca_path)
        with _locked(self.directory):
            if files.cert.exists() and files.key.exists() and self._serves(files.cert, hostnames):
                return files
            cert, key = self.issue(
                hostnames[0], hostnames=hostnames, server=True, lifetime=SERVER_LIFETIME
            )
            _write(files.key, key, private=True)
            _write(files.cert, cert)
        return files

    def _serves(self, path: Path, hostnames: list[str]) -> bool:
        certificate = _load_cert(path)
        if certificate.issuer != self.certificate.subject:
            return False
        if certificate.not_valid_after_utc - RENEW_BEFORE < _now():
            return False
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        present = {str(n) for n in san.get_values_for_type(x509.DNSName)}
        present |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        return all(str(_host_name(name).value) in present for name in hostnames)


def _host_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise config.ConfigError("OKTOSCRIPTS_DATA_DIR", f"{path} is not an EC private key")
    return key


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Replace `path` atomically (readers see the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Exclusive among the processes creating or reading the files."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
