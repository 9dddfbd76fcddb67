"""Long-lived ZooKeeper sessions for the operator's observers, one per connect string.

kazoo's client is blocking; Kopf runs sync handlers and timers in its thread pool, so the
pool is thread-safe. A connect string that cannot be reached raises ZkUnreachable with a
message for the user; the next call tries again.
"""

from __future__ import annotations

import threading
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.handlers.threading import KazooTimeoutError

CONNECT_TIMEOUT_SECONDS = 3.0


class ZkUnreachable(Exception):
    """No ZooKeeper session could be had; the message names the ensemble."""


class ZkClientPool:
    def __init__(self, connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._timeout = connect_timeout

    def get(self, hosts: str) -> Any:
        """A connected KazooClient for `hosts`."""
        with self._lock:
            client = self._clients.get(hosts)
            if client is not None and client.state == KazooState.CONNECTED:
                return client
            if client is None:
                client = KazooClient(hosts=hosts, timeout=10.0)
                self._clients[hosts] = client
            try:
                client.start(timeout=self._timeout)
            except KazooTimeoutError as error:
                client.stop()
                client.close()
                del self._clients[hosts]
                raise ZkUnreachable(
                    f"cannot reach ZooKeeper at {hosts}: no session within {self._timeout:g}s"
                ) from error
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.stop()
                client.close()
            self._clients.clear()
