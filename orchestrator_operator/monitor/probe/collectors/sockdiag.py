"""TCP sockets through netlink sock_diag (inet_diag), per network namespace.

Reading /proc/<pid>/net/tcp{,6} costs kernel time proportional to every socket on the host
for each namespace read (the seq_file walks the global hash table and formats text). A
sock_diag dump returns the same rows in binary with far less work. A namespace's netlink
socket must be created inside it: a short-lived helper thread enters each namespace with
setns(2), opens one socket there and leaves with the thread (setns affects only the calling
thread). Needs CAP_SYS_ADMIN for other namespaces; callers fall back to /proc otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import socket
import struct
import threading

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
CLONE_NEWNET = 0x40000000
_HDR = struct.Struct("=IHHII")
_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")  # inet_diag_msg (72 bytes)

Row = tuple[str, int, str, int, str, int]  # local ip, port, remote ip, port, state, inode
TCP_STATE_NAMES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}


class SockDiagError(OSError):
    pass


def _ip(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    ip = socket.inet_ntop(socket.AF_INET6, raw)
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return ip


def _request(family: int, proto: int, seq: int) -> bytes:
    body = struct.pack("=BBBBI", family, proto, 0, 0, 0xFFFFFFFF) + b"\0" * 48
    return _HDR.pack(_HDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP,
                     seq, 0) + body  # fmt: skip


def dump_tcp(sock: socket.socket) -> list[Row]:
    """Every TCP socket (IPv4 and IPv6) of the socket's namespace with an inode."""
    rows: list[Row] = []
    for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
        sock.send(_request(family, socket.IPPROTO_TCP, seq))
        done = False
        while not done:
            data = sock.recv(1 << 18)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, _flags, _seq, _pid = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    raise SockDiagError("bad netlink message length")
                if mtype == NLMSG_DONE:
                    done = True
                    break
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, offset + _HDR.size)
                    if err:
                        raise SockDiagError(-err, os.strerror(-err))
                    done = True
                    break
                if mtype == SOCK_DIAG_BY_FAMILY:
                    m = _MSG.unpack_from(data, offset + _HDR.size)
                    fam, state, sport, dport, src, dst, inode = (
                        m[0], m[1], m[4], m[5], m[6], m[7], m[14]
                    )  # fmt: skip
                    if inode:
                        rport = int.from_bytes(dport, "big")
                        rows.append(
                            (
                                _ip(fam, src),
                                int.from_bytes(sport, "big"),
                                _ip(fam, dst) if rport else "",
                                rport,
                                TCP_STATE_NAMES.get(state, str(state)),
                                inode,
                            )
                        )
                offset += (length + 3) & ~3
    return rows


def _netlink() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)


_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise SockDiagError(err, os.strerror(err))


def open_in_namespaces(
    pids: dict[int, int], proc: str = "/proc", refused: dict[int, str] | None = None
) -> dict[int, socket.socket]:
    """netns inode -> a sock_diag socket inside it, for each (netns -> pid) given.

    Namespaces that cannot be entered are left out; `refused`, when given, gets why for
    each (setns or the netlink socket failing: a missing capability, a seccomp profile),
    not for a process that went away meanwhile.
    """
    own = os.stat(f"{proc}/self/ns/net").st_ino
    out: dict[int, socket.socket] = {}
    if own in pids:
        out[own] = _netlink()
    others = {ns: pid for ns, pid in pids.items() if ns != own}
    if not others:
        return out

    def enter_each() -> None:
        for ns, pid in others.items():
            try:
                fd = os.open(f"{proc}/{pid}/ns/net", os.O_RDONLY)
            except OSError:
                continue
            try:
                _setns(fd)
                out[ns] = _netlink()
            except OSError as error:
                if refused is not None:
                    refused[ns] = f"setns or netlink: {error.strerror or error}"
                continue
            finally:
                os.close(fd)

    helper = threading.Thread(target=enter_each, name="sockdiag-setns", daemon=True)
    helper.start()
    helper.join()
    return out


def close_all(socks: dict[int, socket.socket]) -> None:
    for s in socks.values():
        with contextlib.suppress(OSError):
            s.close()
