"""Helpers of the Marathon conformance tests: extra Marathon processes and an SSE reader."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from sim.cluster import SimCluster
from sim.procs import SimProcess, free_ports


@contextmanager
def marathon_cluster(zk: str, base_dir: Path, **options: Any) -> Iterator[SimCluster]:
    """One master, one agent and one Marathon. The agent's hostname is 127.0.0.1 because a
    task's HOST, its health checks and its ports are the agent's hostname (Marathon's
    TaskBuilder, NetworkInfo), so the test can reach them."""
    options.setdefault("agent_flags", ["--hostname=127.0.0.1"])
    with SimCluster(zk, masters=1, agents=1, marathons=1, base_dir=base_dir, **options) as sim:
        yield sim


def marathon(
    cluster: SimCluster,
    name: str,
    *args: str,
    zk: str | None = None,
    port: int | None = None,
) -> tuple[SimProcess, str]:
    """A Marathon process on the cluster's masters (not started). The environment of the test
    process at `start()` is its environment (set `MARATHON_*` with monkeypatch first)."""
    port = port or free_ports(1)[0]
    argv = ["marathon", f"--master={cluster.mesos_zk}"]
    if zk != "":  # "": given in the environment (MARATHON_ZK)
        argv.append(f"--zk={zk or cluster.marathon_zk}")
    argv += [f"--port={port}", "--zk_session_timeout=4000", *args]
    log = Path(cluster.base_dir) / "logs" / f"{name}.log"
    return SimProcess(name, argv, log), f"http://127.0.0.1:{port}"


class EventStream:
    """Reads `GET /v2/events` in a thread; `events` are (event type, data) in arrival order."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = {"Accept": "text/event-stream", **(headers or {})}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.raw = b""
        self.status: int | None = None
        self.response_headers: httpx.Headers | None = None
        self.closed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EventStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        try:
            timeout = httpx.Timeout(5.0, read=15.0)
            with (
                httpx.Client(timeout=timeout, follow_redirects=True) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self.status = response.status_code
                self.response_headers = response.headers
                buffer = b""
                for chunk in response.iter_raw():
                    self.raw += chunk
                    buffer += chunk
                    while b"\r\n\r\n" in buffer:
                        block, buffer = buffer.split(b"\r\n\r\n", 1)
                        self._parse(block)
                    if self._stop.is_set():
                        return
        except httpx.HTTPError:
            pass
        finally:
            self.closed.set()

    def _parse(self, block: bytes) -> None:
        name, data = "", []
        for line in block.split(b"\r\n"):
            if line.startswith(b"event: "):
                name = line[len(b"event: ") :].decode()
            elif line.startswith(b"data: "):
                data.append(line[len(b"data: ") :].decode())
        if name:
            self.events.append((name, json.loads("\n".join(data))))

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [data for name, data in list(self.events) if name == event_type]

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "events"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        seen = [name for name, _ in self.events]
        raise TimeoutError(f"timed out waiting for {what}; seen {seen}")
