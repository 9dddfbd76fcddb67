"""HAProxy over its sockets: the runtime API (admin socket) and the master CLI (reload).

HAProxy runs in master-worker mode (`haproxy -W -S <master socket> -f <config>`): in a pod
the `haproxy` container runs it (Debian's or the official image), the `lb` container writes
the config into the shared emptyDir and asks the master to `reload` (the old worker
finishes its connections; the listening sockets pass to the new one through
`expose-fd listeners`). With `--haproxy-binary` (testenv, a laptop) the lb starts that
master itself.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

MAX_REPLY = 8 * 1024 * 1024
# What `set server ... addr` answers when it worked (cli.c / server.c srv_update_addr_port).
_INFO = ("no need to change", "changed from", "IP changed", "port changed")


class HaproxyError(RuntimeError):
    pass


def _ask(path: str, command: str, timeout: float = 5.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REPLY:
                raise HaproxyError(f"reply to {command.split()[0]!r} larger than {MAX_REPLY}")
    return b"".join(chunks).decode("utf-8", "replace")


class Runtime:
    """The admin socket: `set server ...`, `show stat`, `show backend`."""

    def __init__(self, admin_socket: str) -> None:
        self.path = admin_socket

    def available(self, attempts: int = 5) -> bool:
        """Whether a worker answers (a few tries: a reload swaps the socket)."""
        for attempt in range(attempts):
            if self.worker_pid() is not None:
                return True
            if attempt + 1 < attempts:
                time.sleep(0.3)
        return False

    def worker_pid(self) -> int | None:
        """The pid of the worker answering on the admin socket (`show info`), else None."""
        try:
            reply = _ask(self.path, "show info", 2.0)
        except OSError:
            return None
        for line in reply.splitlines():
            if line.startswith("Pid:"):
                with contextlib.suppress(ValueError):
                    return int(line.split(":", 1)[1])
        return None

    def run(self, commands: list[str], batch: int = 100) -> list[str]:
        """Run commands (`;`-separated, in batches); returns the non-empty answers, which
        for `set server` are errors."""
        problems: list[str] = []
        for start in range(0, len(commands), batch):
            part = commands[start : start + batch]
            reply = _ask(self.path, ";".join(part))
            problems += [
                line
                for line in reply.splitlines()
                if line.strip() and not any(mark in line for mark in _INFO)
            ]
        return problems

    def backends(self) -> set[str]:
        reply = _ask(self.path, "show backend")
        return {line.strip() for line in reply.splitlines()[1:] if line.strip()}

    def stats(self) -> list[dict[str, str]]:
        """`show stat`: HAProxy's stats CSV as rows (pxname, svname, hrsp_5xx, rtime...)."""
        reply = _ask(self.path, "show stat")
        text = reply.lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def servers_state(self) -> dict[tuple[str, str], dict[str, str]]:
        """(backend, server) -> its runtime state (`show servers state`): address, port,
        admin and operational state, weight."""
        reply = _ask(self.path, "show servers state")
        lines = [line for line in reply.splitlines() if line and not line.startswith("1")]
        header = next((line for line in lines if line.startswith("#")), "")
        names = header.lstrip("# ").split()
        out: dict[tuple[str, str], dict[str, str]] = {}
        for line in lines:
            if line.startswith("#"):
                continue
            row = dict(zip(names, line.split(), strict=False))
            if "be_name" in row and "srv_name" in row:
                out[(row["be_name"], row["srv_name"])] = row
        return out


class Master:
    """The master CLI socket: `reload`; optionally the master process itself."""

    def __init__(
        self,
        master_socket: str,
        config: Path,
        binary: str | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.path = master_socket
        self.config = config
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self._log = (log_dir or config.parent) / "haproxy.log"

    def start_if_owned(self) -> None:
        """Start HAProxy's master when this process runs it (`--haproxy-binary`)."""
        if self.binary is None or (self.process is not None and self.process.poll() is None):
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        out = self._log.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-W", "-db", "-S", f"{self.path},mode,600", "-f", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        log.info("started haproxy master pid %s", self.process.pid)

    def reload(self) -> None:
        """Ask the master to reload the config (a new worker, the old one drains)."""
        if self.binary is not None and (self.process is None or self.process.poll() is not None):
            self.start_if_owned()
            return
        deadline = time.monotonic() + 30.0
        while True:
            try:
                _ask(self.path, "reload", 10.0)
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise HaproxyError(f"no HAProxy master at {self.path}: {error}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)  # soft stop: finish the connections
            try:
                self.process.wait(10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5.0)
