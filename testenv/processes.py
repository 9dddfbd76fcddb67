"""A child process with its own log file, stopped politely and then firmly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path


def die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the parent dies, even by SIGKILL (Linux
    PR_SET_PDEATHSIG; atexit does not run then). Note: it fires when the *thread* that
    started the child exits, so start children from a long-lived thread."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_HANDED_OUT: set[int] = set()  # ports this process has given out; never given twice
_PORTS_LOCK = threading.Lock()


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports on 127.0.0.1, free a moment ago and never handed out before in this
    process: a ZooKeeper follower does not bind its quorum port, so without the memory a
    second ensemble could be given a port the first one's next leader needs."""
    with _PORTS_LOCK:
        socks: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < count:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                socks.append(sock)  # held open while choosing: no duplicates in one call
                port = int(sock.getsockname()[1])
                if port not in _HANDED_OUT:
                    ports.append(port)
        finally:
            for sock in socks:
                sock.close()
        _HANDED_OUT.update(ports)
        return ports


def free_port() -> int:
    return free_ports(1)[0]


class ManagedProcess:
    """One long-running component; its output goes to `<log_dir>/<name>.log`."""

    def __init__(
        self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env  # None: ours
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # its own process group: a Ctrl-C of ours is not its
                preexec_fn=die_with_parent,  # a killed test or bench leaves nothing running
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
