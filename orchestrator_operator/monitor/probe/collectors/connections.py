"""TCP/UDP connection collector: /proc/<pid>/net/{tcp,tcp6,udp,udp6} per network namespace.

Sockets are read once per network namespace (from any one process in it), and each socket's
owning pid comes from the socket inodes in /proc/<pid>/fd. Sockets with no owner (TIME_WAIT,
kernel sockets) are left out.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_operator.monitor.probe.collectors import sockdiag
from orchestrator_operator.monitor.report import LIMITS, Connection

log = logging.getLogger(__name__)

TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def decode_address(hex_addr: str) -> tuple[str, int]:
    """'0100007F:1F90' -> ('127.0.0.1', 8080); IPv6 the same way (host byte order words)."""
    ip_hex, port_hex = hex_addr.split(":")
    port = int(port_hex, 16)
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), port
    words = struct.unpack("<4I", raw)
    packed = struct.pack(">4I", *words)
    ip = socket.inet_ntop(socket.AF_INET6, packed)
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]
    return ip, port


def parse_proc_net(text: str, proto: str) -> list[tuple[str, int, str, int, str, int]]:
    """Rows of (local_ip, local_port, remote_ip, remote_port, state, inode)."""
    rows: list[tuple[str, int, str, int, str, int]] = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        inode = int(parts[9])
        if inode == 0:
            continue
        lip, lport = decode_address(parts[1])
        rip, rport = decode_address(parts[2])
        if proto == "tcp":
            state = TCP_STATES.get(parts[3], parts[3])
        else:
            state = "LISTEN" if rport == 0 else "ESTABLISHED"
        rows.append((lip, lport, rip, rport, state, inode))
    return rows


def _netns_of(proc: str, pid: int) -> int:
    try:
        link = os.readlink(f"{proc}/{pid}/ns/net")
    except OSError:
        return 0
    return int(link[link.index("[") + 1 : -1]) if "[" in link else 0


@dataclass
class SocketScan:
    connections: list[Connection] = field(default_factory=list)
    fd_counts: dict[int, int] = field(default_factory=dict)
    pid_netns: dict[int, int] = field(default_factory=dict)
    host_netns: int = 0
    truncated: bool = False


class ConnectionCollector:
    """Reads sockets per network namespace and finds each socket's owning pid.

    Owner lookup needs a readlink of every open fd, the costly part, so each pid's socket
    inodes are cached and re-read only when its fd listing changes. A socket whose inode is
    unknown and was not unknown in the previous scan (an fd number reused for a new socket)
    forces one uncached pass, so new sockets are always attributed in the scan that first
    sees them. The cache holds live pids only.
    """

    def __init__(
        self,
        proc: Path = Path("/proc"),
        max_connections: int = LIMITS.connections,
        use_sock_diag: bool = True,
    ) -> None:
        self.proc = proc
        self.max_connections = max_connections
        self._fd_cache: dict[int, tuple[list[str], list[int]]] = {}
        self.use_sock_diag = use_sock_diag
        self._said_refused = False  # the /proc fallback for refused namespaces, logged once
        self._last_unknown: set[int] = set()

    def _socket_inodes(self, pid: int, fd_dir: str, fds: list[str], cached: bool) -> list[int]:
        if cached:
            hit = self._fd_cache.get(pid)
            if hit is not None and hit[0] == fds:
                return hit[1]
        inodes: list[int] = []
        readlink = os.readlink
        for fd in fds:
            try:
                target = readlink(fd_dir + fd)
            except OSError:
                continue
            if target[:8] == "socket:[":
                inodes.append(int(target[8:-1]))
        self._fd_cache[pid] = (fds, inodes)
        return inodes

    def _owners(
        self, pids: list[int], scan: SocketScan, cached: bool
    ) -> tuple[dict[int, int], dict[int, int]]:
        """(socket inode -> lowest owning pid, netns -> one pid in it)."""
        proc = str(self.proc)
        inode_pid: dict[int, int] = {}
        netns_pid: dict[int, int] = {}
        for pid in pids:
            ns = _netns_of(proc, pid)
            if ns == 0:
                continue
            scan.pid_netns[pid] = ns
            netns_pid.setdefault(ns, pid)
            fd_dir = f"{proc}/{pid}/fd/"
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            scan.fd_counts[pid] = len(fds)
            for inode in self._socket_inodes(pid, fd_dir, fds, cached):
                if inode not in inode_pid:
                    inode_pid[inode] = pid
        return inode_pid, netns_pid

    def _rows(
        self, netns_pid: dict[int, int]
    ) -> list[tuple[int, str, tuple[str, int, str, int, str, int]]]:
        """Socket rows per namespace: TCP through sock_diag when it works, else /proc."""
        rows: list[tuple[int, str, tuple[str, int, str, int, str, int]]] = []
        diag: dict[int, socket.socket] = {}
        if self.use_sock_diag:
            refused: dict[int, str] = {}
            try:
                diag = sockdiag.open_in_namespaces(netns_pid, str(self.proc), refused)
            except OSError:
                self.use_sock_diag = False
            if refused and not self._said_refused:
                self._said_refused = True  # once: it stays so for the probe's life
                log.warning(
                    "sock_diag: cannot enter %d network namespace(s) (%s); their TCP sockets"
                    " are read from /proc/<pid>/net instead, which costs more. Entering them"
                    " needs CAP_SYS_ADMIN and a seccomp profile allowing setns (RuntimeDefault"
                    " does)",
                    len(refused), next(iter(refused.values())),
                )  # fmt: skip
        try:
            for ns, pid in netns_pid.items():
                files = ["udp", "udp6"]
                sock = diag.get(ns)
                tcp_rows: list[tuple[str, int, str, int, str, int]] | None = None
                if sock is not None:
                    try:
                        tcp_rows = sockdiag.dump_tcp(sock)
                    except OSError:
                        tcp_rows = None
                if tcp_rows is None:
                    files = ["tcp", "tcp6", *files]
                else:
                    rows.extend((ns, "tcp", row) for row in tcp_rows)
                for name in files:
                    proto = "tcp" if name.startswith("tcp") else "udp"
                    try:
                        with open(f"{self.proc}/{pid}/net/{name}", "rb") as f:
                            text = f.read().decode()
                    except OSError:
                        continue
                    rows.extend((ns, proto, row) for row in parse_proc_net(text, proto))
        finally:
            sockdiag.close_all(diag)
        return rows

    def collect(self) -> SocketScan:
        scan = SocketScan()
        proc = str(self.proc)
        pids = sorted(int(e) for e in os.listdir(proc) if e.isdigit())
        scan.host_netns = _netns_of(proc, 1) or _netns_of(proc, os.getpid())
        live = set(pids)
        for pid in [p for p in self._fd_cache if p not in live]:
            del self._fd_cache[pid]
        inode_pid, netns_pid = self._owners(pids, scan, cached=True)
        rows = self._rows(netns_pid)
        unknown = {row[5] for _, _, row in rows if row[5] not in inode_pid}
        if unknown - self._last_unknown:
            scan.pid_netns.clear()
            scan.fd_counts.clear()
            inode_pid, netns_pid = self._owners(pids, scan, cached=False)
            unknown = {row[5] for _, _, row in rows if row[5] not in inode_pid}
        self._last_unknown = unknown
        for ns, proto, (lip, lport, rip, rport, state, inode) in rows:
            owner = inode_pid.get(inode)
            if owner is None:
                continue
            if len(scan.connections) >= self.max_connections:
                scan.truncated = True
                break
            scan.connections.append(
                Connection(
                    proto=proto,
                    local_ip=lip,
                    local_port=lport,
                    remote_ip=rip if rport else "",
                    remote_port=rport,
                    state=state,
                    pid=owner,
                    netns=ns,
                )
            )
        return scan
