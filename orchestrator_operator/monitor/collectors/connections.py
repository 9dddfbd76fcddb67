"""TCP/UDP connection collector: /proc/<pid>/net/{tcp,tcp6,udp,udp6} per network namespace.

Sockets are read once per network namespace (from any one process in it), and each socket's
owning pid comes from the socket inodes in /proc/<pid>/fd. Sockets with no owner (TIME_WAIT,
kernel sockets) are left out.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_operator.monitor.report import LIMITS, Connection

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


def _netns_of(proc: Path, pid: int) -> int:
    try:
        link = os.readlink(proc / str(pid) / "ns" / "net")
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
    def __init__(self, proc: Path = Path("/proc"), max_connections: int = LIMITS.connections):
        self.proc = proc
        self.max_connections = max_connections

    def collect(self) -> SocketScan:
        scan = SocketScan()
        inode_pid: dict[int, int] = {}
        netns_pid: dict[int, int] = {}
        pids = sorted(int(e) for e in os.listdir(self.proc) if e.isdigit())
        scan.host_netns = _netns_of(self.proc, 1) or _netns_of(self.proc, os.getpid())
        for pid in pids:
            ns = _netns_of(self.proc, pid)
            if ns == 0:
                continue
            scan.pid_netns[pid] = ns
            netns_pid.setdefault(ns, pid)
            fd_dir = self.proc / str(pid) / "fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            scan.fd_counts[pid] = len(fds)
            for fd in fds:
                try:
                    target = os.readlink(fd_dir / fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inode_pid.setdefault(int(target[8:-1]), pid)
        for ns, pid in netns_pid.items():
            for name, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
                try:
                    text = (self.proc / str(pid) / "net" / name).read_text()
                except OSError:
                    continue
                for lip, lport, rip, rport, state, inode in parse_proc_net(text, proto):
                    owner = inode_pid.get(inode)
                    if owner is None:
                        continue
                    if len(scan.connections) >= self.max_connections:
                        scan.truncated = True
                        return scan
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
