"""Cluster DNS for the processes of a local platform (`make run`): a hosts file.

In a cluster, `demo-zookeeper-client.default.svc` and the StatefulSet pods' names
(`demo-zookeeper-0.demo-zookeeper-headless.default.svc.cluster.local`) are answered by the
cluster's DNS. Locally there is none, so `testenv.simpods.SimPodRunner` gives each ZooKeeper
pod its own loopback address (127.N.0.x; the whole 127/8 is loopback on Linux) and writes
`<address> <name>...` lines, /etc/hosts style, into one file. The processes read it:

- Python processes (the operator, the sync controller, the sim processes, `orchestrator
  zk-migrate`): `testenv/site/sitecustomize.py`, on PYTHONPATH, calls `install()` when
  $TESTENV_HOSTS_FILE is set; `socket.getaddrinfo` then answers the file's names first.
- The ZooKeeper servers (Java): `-Djdk.net.hosts.file=<file>`.

Names not in the file resolve as usual. The file is re-read when it changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

HOSTS_ENV = "TESTENV_HOSTS_FILE"
MAX_HOSTS_BYTES = 1024 * 1024


def parse_hosts(text: str) -> dict[str, list[str]]:
    """`address name...` lines -> name (lower case, no trailing dot) -> addresses in order."""
    names: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.partition("#")[0].split()
        if len(fields) < 2:
            continue
        for name in fields[1:]:
            key = name.lower().rstrip(".")
            if fields[0] not in names.setdefault(key, []):
                names[key].append(fields[0])
    return names


def render_hosts(entries: Iterable[tuple[str, list[str]]]) -> str:
    """(address, names) pairs as hosts file lines."""
    return "".join(f"{address} {' '.join(names)}\n" for address, names in entries)


def write_hosts(path: Path, text: str) -> bool:
    """Replace the file atomically when `text` differs; True when it was written."""
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


class HostsResolver:
    """The names of one hosts file, re-read when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._names: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def lookup(self, host: str) -> list[str]:
        with self._lock:
            try:
                stat = self.path.stat()
            except OSError:
                self._stamp, self._names = None, {}
                return []
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    with self.path.open("rb") as f:
                        self._names = parse_hosts(f.read(MAX_HOSTS_BYTES).decode())
                    self._stamp = stamp
            return list(self._names.get(host.lower().rstrip("."), []))


_installed: HostsResolver | None = None


def install(path: str | Path) -> HostsResolver:
    """Make `socket.getaddrinfo` (and everything built on it: kazoo, httpx, asyncio's
    resolver) answer the hosts file's names first, in this process."""
    global _installed
    if _installed is not None:
        _installed.path = Path(path)
        return _installed
    resolver = HostsResolver(Path(path))
    original = socket.getaddrinfo

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        addresses = resolver.lookup(name) if isinstance(name, str) and name else []
        if not addresses:
            return original(host, port, family, type, proto, flags)
        found: list[Any] = []
        for address in addresses:
            with contextlib.suppress(socket.gaierror):
                found += original(address, port, family, type, proto, flags)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found

    socket.getaddrinfo = getaddrinfo
    _installed = resolver
    return resolver


LOCK_DIR = Path(os.environ.get("TMPDIR", "/tmp"))


class LoopbackSubnet:
    """A 127.N.0.0/16 reserved for this process (an flock on a file in $TMPDIR, released
    when the process ends however it ends), so that two local platforms on one machine give
    their ZooKeeper servers different addresses; `address(i)` is the i-th one (from 1)."""

    def __init__(self) -> None:
        candidates = list(range(100, 250))
        random.shuffle(candidates)
        self._file: TextIO | None = None
        for n in candidates:
            handle = (LOCK_DIR / f"testenv-loopback-127.{n}.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self._file, self.octet = handle, n
            return
        raise RuntimeError("no free 127.N.0.0/16 for local ZooKeeper servers (all locked)")

    def address(self, index: int) -> str:
        if not 1 <= index < 65535:
            raise ValueError(f"loopback address index out of range: {index}")
        return f"127.{self.octet}.{index // 256}.{index % 256}"

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
