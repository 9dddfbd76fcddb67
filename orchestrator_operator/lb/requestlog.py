"""HAProxy's request log, received by the lb process: per backend, server and app, the
responses' status and time, for the error rate and latency percentiles over a window.

HAProxy's stats give counters and averages only; the canary analysis needs the 5xx share
and the 99th percentile of one version's responses over the last N seconds. HAProxy logs
every request to the lb's UDP port on the pod's loopback (the two containers share the
network namespace) in the format `LOG_FORMAT`; the window keeps at most `max_entries`.
"""

from __future__ import annotations

import bisect
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from orchestrator_operator.lb.config import LOG_FORMAT

__all__ = ["LOG_FORMAT", "Entry", "LogReceiver", "RequestLog", "parse", "percentile"]

log = logging.getLogger(__name__)

MAX_ENTRIES = 200_000
MAX_WINDOW = 600.0


@dataclass(frozen=True)
class Entry:
    at: float
    backend: str
    server: str
    status: int
    response_ms: int
    app: str = ""  # the Marathon app whose task the server slot held when the line came


def parse(line: str, now: float) -> Entry | None:
    """One log line (the syslog header, if any, before `lbreq`)."""
    _, mark, rest = line.partition("lbreq ")
    if not mark:
        return None
    parts = rest.split()
    if len(parts) < 4:
        return None
    try:
        status, response = int(parts[2]), int(parts[3])
    except ValueError:
        return None
    return Entry(now, parts[0], parts[1], status, response)


def percentile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return float(ordered[index])


class RequestLog:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: deque[Entry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()
        self.received = 0

    def add(self, entry: Entry) -> None:
        with self._lock:
            self._entries.append(entry)
            self.received += 1

    def window(self, backend: str, seconds: float, now: float | None = None) -> list[Entry]:
        now = time.time() if now is None else now
        since = now - max(0.0, min(seconds, MAX_WINDOW))
        with self._lock:
            entries = list(self._entries)
        times = [e.at for e in entries]
        start = bisect.bisect_left(times, since)
        return [e for e in entries[start:] if e.backend == backend]

    def summary(self, backend: str, seconds: float, now: float | None = None) -> dict[str, object]:
        """Requests, 5xx, error rate and p50/p99 of the response time (ms), for the backend
        and per Marathon app."""
        entries = self.window(backend, seconds, now)

        def figures(selected: list[Entry]) -> dict[str, object]:
            errors = sum(1 for e in selected if e.status >= 500)
            times = [e.response_ms for e in selected if e.response_ms >= 0]
            return {
                "requests": len(selected),
                "errors5xx": errors,
                "errorRate": errors / len(selected) if selected else None,
                "latencyP50Ms": percentile(times, 0.50),
                "latencyP99Ms": percentile(times, 0.99),
            }

        apps: dict[str, list[Entry]] = {}
        for entry in entries:
            apps.setdefault(entry.app, []).append(entry)
        return {
            "backend": backend,
            "windowSeconds": seconds,
            **figures(entries),
            "apps": {app or "(no server)": figures(v) for app, v in sorted(apps.items())},
        }


class LogReceiver:
    """A UDP syslog receiver feeding a RequestLog, on a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        sink: RequestLog,
        app_of: Callable[[str, str], str] = lambda _backend, _server: "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`app_of(backend, server)`: the app a server slot serves now."""
        self.app_of = app_of
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind((host, port))
        self.sink = sink
        self.clock = clock
        self._thread = threading.Thread(target=self._run, name="haproxy-log", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            entry = parse(data.decode("utf-8", "replace"), self.clock())
            if entry is not None:
                app = self.app_of(entry.backend, entry.server) if entry.server[:3] == "srv" else ""
                self.sink.add(replace(entry, app=app))

    def stop(self) -> None:
        self.sock.close()
