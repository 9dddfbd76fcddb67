"""Certificates in the form cert-manager writes a Secret (`tls.crt`, `tls.key`, `ca.crt`),
laid out as the kubelet mounts a Secret volume: the files are links through `..data` to a
timestamped directory, and an update swaps `..data` atomically (so a rotation is one
rename, as on a node)."""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kazoo.client import KazooClient

_VALIDITY = datetime.timedelta(days=2)
_counter = itertools.count()


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Issued:
    cert_pem: bytes
    key_pem: bytes
    serial: int


@dataclass
class TlsCa:
    """A CA that issues server and client certificates."""

    name: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        hosts: tuple[str, ...] = (),
        client: bool = False,
        peer: bool = False,
    ) -> Issued:
        """A leaf for `hosts` (DNS names or IP addresses), a client certificate, or (`peer`)
        one for both ends, as ZooKeeper's quorum members are to each other."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
        if peer:
            usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), serial)


def write_secret_volume(mount: Path, files: dict[str, bytes]) -> None:
    """Write (or replace) a Secret volume's files the way the kubelet does: a new
    timestamped directory, then `..data` renamed onto a link to it; the files are links
    `name -> ..data/name`."""
    mount.mkdir(parents=True, exist_ok=True)
    stamp = mount / f"..{datetime.datetime.now(datetime.UTC):%Y_%m_%d_%H_%M_%S}.{next(_counter)}"
    stamp.mkdir()
    for name, content in files.items():
        (stamp / name).write_bytes(content)
        (stamp / name).chmod(0o600)
    tmp_link = mount / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp.name)
    os.replace(tmp_link, mount / "..data")
    for name in files:
        link = mount / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


def tls_secret(ca: TlsCa, issued: Issued) -> dict[str, bytes]:
    """The keys of a cert-manager Secret."""
    return {"tls.crt": issued.cert_pem, "tls.key": issued.key_pem, "ca.crt": ca.pem}


def tls_kazoo(hosts: str, ca: Path, client: Path | None = None, timeout: float = 10) -> KazooClient:
    """A kazoo client (the operator's and the sync engine's ZooKeeper client) for the TLS
    port at `hosts`: trusting only `ca`, presenting `client`'s tls.crt and tls.key (a
    directory in cert-manager's form) when given."""
    certificate: dict[str, str] = {}
    if client is not None:
        certificate = {"certfile": str(client / "tls.crt"), "keyfile": str(client / "tls.key")}
    return KazooClient(
        hosts=hosts, use_ssl=True, verify_certs=True, ca=str(ca), timeout=timeout, **certificate
    )
