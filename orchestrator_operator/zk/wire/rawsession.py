"""A bare ZooKeeper session on one blocking socket, for bulk reads kazoo cannot batch.

getACL has no multi form, and one kazoo request costs ~250 us of Python (a few thousand
per second), so reading the ACL of every znode through kazoo caps a bootstrap. Here the
requests are written back to back into one buffer and the replies parsed in a tight loop
(two windows in flight). The session is short-lived (one bulk read), sets no watches, and
uses kazoo's serialization classes. It also probes whether the server has multiRead.

Consistency: it connects with the kazoo session's last seen zxid, so the server it reaches
is at least as recent as what the kazoo session had seen; callers still compare each ACL's
stat with their data read (see reader.read_nodes).

TLS: when the kazoo client connects over TLS (its handler has a ``tls``, zk/handler.py),
so does the raw session, with the same context: the server verified against the same CA
and by its host name from the connect string (for the client's current server, the name
its TLS socket was opened for, not the peer's address).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Sequence
from typing import Any, TypeAlias

from kazoo.exceptions import EXCEPTIONS, KazooException
from kazoo.protocol.serialization import (
    Auth,
    Connect,
    GetACL,
    int_struct,
    multiheader_struct,
    reply_header_struct,
    write_string,
)
from kazoo.protocol.states import ZnodeStat

from orchestrator_operator.zk.model import Acl, acl_from_kazoo
from orchestrator_operator.zk.wire.multiread import GET_DATA, MULTI_READ, server_paths

_HEADER = struct.Struct("!iii")  # length, xid, op code
AUTH_XID = -4
CLOSE_TYPE = -11
SESSION_TIMEOUT_MS = 10_000
WINDOW = 1000

AclResult: TypeAlias = tuple[Acl, ZnodeStat] | KazooException


class RawSessionError(Exception):
    """The raw session could not be set up or broke (the caller falls back to kazoo)."""


class RawSession:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._pos = 0
        self._xid = 0

    # ------------------------------------------------------------------ setup
    @classmethod
    def open(
        cls, client: Any, timeout: float = 10.0, only: tuple[str, int] | None = None
    ) -> RawSession:
        """A session on the server the kazoo ``client`` is connected to (else any of its
        hosts; ``only``: that server), with the client's credentials."""
        errors: list[str] = []
        tls = getattr(getattr(client, "handler", None), "tls", None)
        for host, port in [only] if only is not None else servers(client):
            try:
                sock = socket.create_connection((host, port), timeout=timeout)
            except OSError as exc:
                errors.append(f"{host}:{port}: {exc}")
                continue
            if tls is not None:
                try:
                    sock = tls.current().wrap_socket(sock, server_hostname=host)
                except OSError as exc:
                    sock.close()
                    errors.append(f"{host}:{port}: TLS: {exc}")
                    continue
            session = cls(sock)
            try:
                session._handshake(int(client.last_zxid or 0), set(client.auth_data))
                return session
            except (OSError, RawSessionError) as exc:
                session.close(polite=False)
                errors.append(f"{host}:{port}: {exc}")
        raise RawSessionError("no raw session: " + "; ".join(errors))

    def _handshake(self, last_zxid: int, auth: set[tuple[str, str]]) -> None:
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = Connect(0, last_zxid, SESSION_TIMEOUT_MS, 0, b"\x00" * 16, False).serialize()
        self._sock.sendall(int_struct.pack(len(body)) + body)
        reply, _ = Connect.deserialize(self._frame(), 0)
        if reply.time_out <= 0:
            raise RawSessionError("session refused (server behind the client's last zxid?)")
        if not auth:
            return
        out = bytearray()
        for scheme, credential in auth:
            out += _frame_bytes(AUTH_XID, Auth.type, Auth(0, scheme, credential).serialize())
        self._sock.sendall(out)
        for _ in auth:
            _, _, err = reply_header_struct.unpack_from(self._frame(), 0)
            if err:
                raise RawSessionError(f"authentication refused: {EXCEPTIONS[err]()!r}")

    def close(self, polite: bool = True) -> None:
        """End the session now (not at its timeout) and close the socket."""
        with contextlib.suppress(OSError):
            if polite:
                self._sock.sendall(_frame_bytes(self._next_xid(), CLOSE_TYPE, b""))
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> RawSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads
    def has_multi_read(self) -> bool:
        """True when the server answers a multiRead (ZooKeeper >= 3.6). An older server
        errs or drops the connection; this session is then unusable."""
        body = multiheader_struct.pack(GET_DATA, False, -1) + write_string("/") + b"\x00"
        body += multiheader_struct.pack(-1, True, -1)
        try:
            self._sock.sendall(_frame_bytes(self._next_xid(), MULTI_READ, body))
            frame = self._frame()
        except (OSError, RawSessionError):
            return False
        _, _, err = reply_header_struct.unpack_from(frame, 0)
        if err or len(frame) < reply_header_struct.size + multiheader_struct.size:
            return False
        kind, _, _ = multiheader_struct.unpack_from(frame, reply_header_struct.size)
        return bool(kind == GET_DATA)

    def get_acls(self, client: Any, paths: Sequence[str]) -> list[AclResult]:
        """The ACL and stat of each path (or the error of that path), pipelined."""
        return get_acls([self], client, paths)

    def send_acl_requests(self, wire_paths: Sequence[str]) -> None:
        out = bytearray()
        for path in wire_paths:
            out += _frame_bytes(self._next_xid(), GetACL.type, write_string(path))
        self._send(out)

    def read_acl_replies(self, count: int) -> list[AclResult]:
        out: list[AclResult] = []
        for _ in range(count):
            frame = self._frame()
            _, _, err = reply_header_struct.unpack_from(frame, 0)
            if err:
                out.append(EXCEPTIONS[err]())
                continue
            acls, stat = GetACL.deserialize(frame, reply_header_struct.size)
            out.append((acl_from_kazoo(acls), stat))
        return out

    # ------------------------------------------------------------------ any request
    def send_request(self, op: int, body: bytes | bytearray) -> int:
        """Send one request (``body`` serialized); its xid. Replies come in the order sent."""
        xid = self._next_xid()
        self._send(_frame_bytes(xid, op, body))
        return xid

    def read_reply(self) -> tuple[int, int]:
        """The xid and error code (0: none) of the next reply."""
        xid, _, err = reply_header_struct.unpack_from(self._frame(), 0)
        return int(xid), int(err)

    # ------------------------------------------------------------------ wire
    def _next_xid(self) -> int:
        self._xid += 1
        return self._xid

    def _send(self, data: bytes | bytearray) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise RawSessionError(f"send failed: {exc}") from exc

    def _frame(self) -> bytearray:
        """The next length-prefixed frame from the socket."""
        buf = self._buf
        while True:
            avail = len(buf) - self._pos
            if avail >= 4:
                size = int_struct.unpack_from(buf, self._pos)[0]
                if avail >= 4 + size:
                    start = self._pos + 4
                    self._pos = start + size
                    return buf[start : self._pos]
            if self._pos:
                del buf[: self._pos]
                self._pos = 0
            try:
                chunk = self._sock.recv(1 << 20)
            except OSError as exc:
                raise RawSessionError(f"receive failed: {exc}") from exc
            if not chunk:
                raise RawSessionError("connection closed by the server")
            buf += chunk


def get_acls(sessions: Sequence[RawSession], client: Any, paths: Sequence[str]) -> list[AclResult]:
    """The ACLs of ``paths`` split over ``sessions`` (each server works on its share while
    the replies of another are parsed; one session's requests are served one at a time),
    two windows in flight per session. Results in the order of ``paths``."""
    wire = server_paths(client, paths)
    share = -(-len(wire) // len(sessions)) if wire else 0
    plans = [
        (session, [part[i : i + WINDOW] for i in range(0, len(part), WINDOW)])
        for session, part in (
            (session, wire[k * share : (k + 1) * share]) for k, session in enumerate(sessions)
        )
    ]
    results: list[list[AclResult]] = [[] for _ in sessions]
    for session, windows in plans:
        if windows:
            session.send_acl_requests(windows[0])
    rounds = max((len(windows) for _, windows in plans), default=0)
    for i in range(rounds):
        for k, (session, windows) in enumerate(plans):
            if i >= len(windows):
                continue
            if i + 1 < len(windows):
                session.send_acl_requests(windows[i + 1])
            results[k].extend(session.read_acl_replies(len(windows[i])))
    return [res for part in results for res in part]


def _frame_bytes(xid: int, op: int, body: bytes | bytearray) -> bytes:
    return _HEADER.pack(8 + len(body), xid, op) + bytes(body)


def servers(client: Any) -> list[tuple[str, int]]:
    """The kazoo client's current server first, then the rest of its host list."""
    hosts: list[tuple[str, int]] = []
    with contextlib.suppress(Exception):
        sock = client._connection._socket
        peer = sock.getpeername()
        # over TLS the name the certificate was checked for, which the peer's IP is not
        name = getattr(sock, "server_hostname", None) or peer[0]
        hosts.append((str(name), int(peer[1])))
    for host, port in getattr(client, "hosts", None) or ():
        if (host, int(port)) not in hosts:
            hosts.append((host, int(port)))
    return hosts
