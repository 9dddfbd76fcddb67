"""Long-lived ZooKeeper sessions for the operator's observers, one per connect string.

kazoo's client is blocking; Kopf runs sync handlers and timers in its thread pool, so the
pool is thread-safe, with one lock per connect string (a slow ensemble does not hold up the
others). A connect string that cannot be reached raises ZkUnreachable with a message for the
user, and keeps raising it without a new attempt for a while, so that many clusters pointing
at a dead ensemble do not each block a worker on every tick.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.handlers.threading import KazooTimeoutError

CONNECT_TIMEOUT_SECONDS = 3.0
RETRY_AFTER_SECONDS = 15.0


class ZkUnreachable(Exception):
    """No ZooKeeper session could be had; the message names the ensemble."""


class ZkClientPool:
    def __init__(
        self,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        retry_after: float = RETRY_AFTER_SECONDS,
    ) -> None:
        self._clients: dict[str, Any] = {}
        self._failures: dict[str, tuple[float, str]] = {}  # hosts -> (when, message)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._timeout = connect_timeout
        self._retry_after = retry_after

    def get(self, hosts: str) -> Any:
        """A connected KazooClient for `hosts`."""
        with self._locks[hosts]:
            client = self._clients.get(hosts)
            if client is not None and client.state == KazooState.CONNECTED:
                return client
            failed = self._failures.get(hosts)
            if failed and time.monotonic() - failed[0] < self._retry_after:
                raise ZkUnreachable(failed[1])
            if client is None:
                client = KazooClient(hosts=hosts, timeout=10.0)
                self._clients[hosts] = client
            try:
                client.start(timeout=self._timeout)
            except KazooTimeoutError as error:
                client.stop()
                client.close()
                del self._clients[hosts]
                message = f"cannot reach ZooKeeper at {hosts}: no session within {self._timeout:g}s"
                self._failures[hosts] = (time.monotonic(), message)
                raise ZkUnreachable(message) from error
            self._failures.pop(hosts, None)
            return client

    def close(self) -> None:
        for hosts, client in list(self._clients.items()):
            with self._locks[hosts]:
                client.stop()
                client.close()
        self._clients.clear()
