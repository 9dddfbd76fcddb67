"""TLS from a directory in the form cert-manager writes a Secret (`tls.crt`, `tls.key`,
`ca.crt`, as a Secret volume mounts them), picked up again when the files change, without
a restart.

A server listens with `ReloadingTls.listening_context()`: its SNI callback, which OpenSSL
calls on every ClientHello (with or without a server name), stats the three files and, when
one changed (Kubernetes swaps a Secret volume's `..data` link on rotation, so the inode and
mtime change), loads them into a new `SSLContext` and hands the connection to it. Each new
connection therefore gets the current certificate and is verified against the current CA;
established connections keep theirs. Files that do not load (a half-written rotation, a key
that does not match) leave the last good context in use, logged once per change.

A client (the probe) calls `ReloadingTls.current()` for each connection: a context that
verifies the server against `ca.crt` (and only it) with host name checks on, presenting
`tls.crt`/`tls.key` when they are there (mutual TLS).

Pure of any I/O library but `ssl` and `os`; the monitoring app and probe share it.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

CERT = "tls.crt"
KEY = "tls.key"
CA = "ca.crt"

Role = Literal["server", "client"]
ClientAuth = Literal["none", "optional", "required"]
CLIENT_AUTH: tuple[ClientAuth, ...] = ("none", "optional", "required")
_VERIFY_MODE = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}

Signature = tuple[tuple[int, int, int] | None, ...]


class TlsError(ValueError):
    """The TLS files are missing or do not load: one line naming the file."""


@dataclass(frozen=True)
class TlsFiles:
    """Where the PEM files are. `ca` may be None (a server without client verification, a
    client trusting the system's CAs); `cert`/`key` may be None for a client without a
    certificate of its own."""

    cert: Path | None
    key: Path | None
    ca: Path | None

    @classmethod
    def from_directory(cls, directory: Path | str, *, need_cert: bool = True) -> TlsFiles:
        """`tls.crt`, `tls.key` and `ca.crt` of a mounted Secret. `ca.crt` is optional
        (cert-manager writes it for CA issuers, not for all); `tls.crt`/`tls.key` are
        required when `need_cert`."""
        base = Path(directory)
        cert, key, ca = base / CERT, base / KEY, base / CA
        if need_cert:
            for path in (cert, key):
                if not path.is_file():
                    raise TlsError(f"{path} is missing (a Secret of type kubernetes.io/tls)")
        has_cert = cert.is_file() and key.is_file()
        return cls(
            cert if has_cert else None,
            key if has_cert else None,
            ca if ca.is_file() else None,
        )

    def paths(self) -> tuple[Path | None, ...]:
        return (self.cert, self.key, self.ca)

    def signature(self) -> Signature:
        """What changes when a file is replaced: inode, mtime and size of each (following
        links, as Kubernetes' atomic `..data` swap needs)."""
        result: list[tuple[int, int, int] | None] = []
        for path in self.paths():
            if path is None:
                result.append(None)
                continue
            try:
                st = os.stat(path)
            except OSError:
                result.append(None)
                continue
            result.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(result)


def build_context(files: TlsFiles, role: Role, client_auth: ClientAuth = "none") -> ssl.SSLContext:
    """A fresh context from the files; TlsError when they do not load."""
    if role == "server":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.verify_mode = _VERIFY_MODE[client_auth]
        if client_auth != "none" and files.ca is None:
            raise TlsError(f"client certificates ({client_auth}) need {CA} to verify them")
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks host names
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if files.cert is not None and files.key is not None:
            context.load_cert_chain(files.cert, files.key)
        elif role == "server":
            raise TlsError(f"a server needs {CERT} and {KEY}")
        if files.ca is not None and (role == "client" or client_auth != "none"):
            context.load_verify_locations(cafile=str(files.ca))
        elif role == "client":
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except (ssl.SSLError, OSError) as exc:
        which = ", ".join(str(p) for p in files.paths() if p is not None)
        raise TlsError(f"cannot load {which}: {exc.__class__.__name__}: {exc}") from None
    return context


class ReloadingTls:
    """The current context for `files`, rebuilt when a file changes (see the module)."""

    def __init__(self, files: TlsFiles, role: Role, client_auth: ClientAuth = "none") -> None:
        self.files = files
        self.role = role
        self.client_auth = client_auth
        self._signature = files.signature()
        self._context = build_context(files, role, client_auth)  # the first load must work
        self._failed: Signature | None = None
        self.reloads = 0

    def current(self) -> ssl.SSLContext:
        """The context for a new connection: rebuilt first if the files changed since."""
        signature = self.files.signature()
        if signature != self._signature and signature != self._failed:
            try:
                context = build_context(self.files, self.role, self.client_auth)
            except TlsError as exc:
                self._failed = signature
                log.warning("TLS files changed but do not load, keeping the last ones: %s", exc)
            else:
                self._context, self._signature, self._failed = context, signature, None
                self.reloads += 1
                log.info("TLS certificate reloaded from %s", self.files.cert or self.files.ca)
        return self._context

    def listening_context(self) -> ssl.SSLContext:
        """The server's context: each handshake moves to `current()` (see the module)."""
        if self.role != "server":
            raise TlsError("a listening context is for a server")
        listening = build_context(self.files, "server", self.client_auth)

        def on_hello(conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: object) -> None:
            conn.context = self.current()

        listening.sni_callback = on_hello
        return listening


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The app's TLS flags."""
    parser.add_argument(
        "--tls-dir",
        help="serve HTTPS with tls.crt and tls.key from this directory (a mounted Secret of "
        "type kubernetes.io/tls, as cert-manager writes it); reloaded when they change",
    )
    parser.add_argument(
        "--tls-client-auth",
        choices=CLIENT_AUTH,
        default="none",
        help="mutual TLS: ask clients for a certificate signed by the directory's ca.crt "
        "(required: refuse a client without one)",
    )


def server_from_args(args: argparse.Namespace) -> ReloadingTls | None:
    if not args.tls_dir:
        if args.tls_client_auth != "none":
            raise TlsError("--tls-client-auth needs --tls-dir")
        return None
    files = TlsFiles.from_directory(args.tls_dir)
    return ReloadingTls(files, "server", args.tls_client_auth)


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The probe's TLS flags (used when the app URL is https://)."""
    parser.add_argument(
        "--tls-ca",
        help="verify the app's certificate against this CA file (ca.crt of the app's Secret) "
        "instead of the system's CAs; reloaded when it changes",
    )
    parser.add_argument(
        "--tls-client-dir",
        help="present tls.crt and tls.key from this directory to the app (mutual TLS)",
    )


def client_from_args(args: argparse.Namespace) -> ReloadingTls | None:
    if not args.tls_ca and not args.tls_client_dir:
        return None
    if args.tls_client_dir:
        own = TlsFiles.from_directory(args.tls_client_dir)
        files = TlsFiles(own.cert, own.key, Path(args.tls_ca) if args.tls_ca else None)
    else:
        files = TlsFiles(None, None, Path(args.tls_ca))
    if files.ca is not None and not files.ca.is_file():
        raise TlsError(f"{files.ca} is missing")
    return ReloadingTls(files, "client")


def zk_client_tls(directory: Path | str) -> ReloadingTls:
    """A ZooKeeper client's TLS from a mounted Secret (cert-manager's form): `ca.crt`
    verifies the ensemble's servers (required: only that CA is trusted, not the system's),
    `tls.crt`/`tls.key` are presented when there (ssl.clientAuth need or want). TlsError
    names what is missing or does not load."""
    base = Path(directory)
    if not base.is_dir():
        raise TlsError(f"{base} is not a directory (a mounted Secret with {CA}, {CERT}, {KEY})")
    files = TlsFiles.from_directory(base, need_cert=False)
    if files.ca is None:
        raise TlsError(f"{base / CA} is missing: it verifies the ZooKeeper servers")
    return ReloadingTls(files, "client")


# Where the operator and the sync controller find their ZooKeeper client certificate when
# no flag says (k8s/base mounts the Secret orchestrator-zookeeper-client-tls there, optional)
ZK_CLIENT_TLS_DIR = "/etc/orchestrator/zookeeper-client-tls"
ZK_CLIENT_TLS_ENV = "ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR"


def load_zk_client_tls(path: str | None) -> ReloadingTls | None:
    """The ZooKeeper client TLS from ``path`` (--zookeeper-client-tls-dir), else
    $ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR, else the default mount if it has a ``ca.crt``
    (an optional Secret volume is an empty directory when the Secret is missing); None
    when there is none. TlsError when a directory given by the flag or the variable does
    not load."""
    given = path or os.environ.get(ZK_CLIENT_TLS_ENV)
    if not given and not (Path(ZK_CLIENT_TLS_DIR) / CA).is_file():
        log.info("ZooKeeper client TLS: none (no %s, %s unset)", ZK_CLIENT_TLS_DIR,
                 ZK_CLIENT_TLS_ENV)  # fmt: skip
        return None
    directory = Path(given or ZK_CLIENT_TLS_DIR)
    tls = zk_client_tls(directory)
    own = "with" if tls.files.cert is not None else "without"
    log.info("ZooKeeper client TLS: from %s (%s a client certificate)", directory, own)
    return tls
