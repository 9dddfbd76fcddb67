"""Host collector: name, addresses, OS, kernel, CPUs, memory, load, uptime."""

from __future__ import annotations

import os
import platform
import socket
import time
from pathlib import Path

import psutil

from orchestrator_operator.monitor.report import LIMITS, Host


def _os_name(root: Path = Path("/")) -> str:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        try:
            for line in (root / candidate).read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
        except OSError:
            continue
    return platform.system()


def host_addresses() -> list[str]:
    """Every IPv4/IPv6 address of the host's interfaces (loopback included)."""
    out: list[str] = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                out.append(a.address.split("%", 1)[0])
    return sorted(set(out))[: LIMITS.addresses]


class HostCollector:
    def __init__(self, hostname: str | None = None) -> None:
        self.hostname = hostname or socket.gethostname()
        self._os = _os_name()
        self._kernel = platform.release()
        psutil.cpu_percent(None)  # prime the counter

    def collect(self) -> Host:
        mem = psutil.virtual_memory()
        return Host(
            hostname=self.hostname,
            addresses=tuple(host_addresses()),
            os=self._os,
            kernel=self._kernel,
            cpus=os.cpu_count() or 0,
            memory_total=int(mem.total),
            memory_used=int(mem.total - mem.available),
            cpu_percent=float(psutil.cpu_percent(None)),
            load=tuple(round(x, 2) for x in os.getloadavg()),
            uptime=round(time.time() - psutil.boot_time(), 1),
        )
