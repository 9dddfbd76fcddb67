"""Long-lived ZooKeeper sessions for the operator's observers, one per connect string.

kazoo's client is blocking; Kopf runs sync handlers and timers in its thread pool, so the
pool is thread-safe, with one lock per connect string (a slow ensemble does not hold up the
others). A connect string that cannot be reached raises ZkUnreachable with a message for the
user, and keeps raising it without a new attempt for a while, so that many clusters pointing
at a dead ensemble do not each block a worker on every tick. A session nobody has asked for
in a while (its MesosCluster or ZkMigration is gone) is closed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

CONNECT_TIMEOUT_SECONDS = 3.0
RETRY_MAX_DELAY_SECONDS = 2.0  # so a client being stopped notices soon
RETRY_AFTER_SECONDS = 15.0
IDLE_SECONDS = 300.0  # observers ask every second or two while their object exists


class ZkUnreachable(Exception):
    """No ZooKeeper session could be had; the message names the ensemble."""


class ZkClientPool:
    def __init__(
        self,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        retry_after: float = RETRY_AFTER_SECONDS,
        idle_after: float = IDLE_SECONDS,
    ) -> None:
        self._clients: dict[str, Any] = {}
        self._last_used: dict[str, float] = {}
        self._failures: dict[str, tuple[float, str]] = {}  # hosts -> (when, message)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._timeout = connect_timeout
        self._retry_after = retry_after
        self._idle_after = idle_after

    def get(self, hosts: str) -> Any:
        """A connected KazooClient for `hosts`."""
        self._close_idle(except_for=hosts)
        self._last_used[hosts] = time.monotonic()
        with self._locks[hosts]:
            client = self._clients.get(hosts)
            if client is not None:
                if self._reconnected(client):
                    return client
                # Never start() a client that lost its connection again: kazoo would join
                # its connection thread, which can block a handler for as long as that
                # thread keeps retrying. Drop it off the handler's thread instead.
                del self._clients[hosts]
                _discard(client)
                message = f"lost ZooKeeper at {hosts}: no reconnection within {self._timeout:g}s"
                self._failures[hosts] = (time.monotonic(), message)
                raise ZkUnreachable(message)
            failed = self._failures.get(hosts)
            if failed and time.monotonic() - failed[0] < self._retry_after:
                raise ZkUnreachable(failed[1])
            client = KazooClient(
                hosts=hosts,
                timeout=10.0,
                connection_retry=KazooRetry(max_tries=-1, max_delay=RETRY_MAX_DELAY_SECONDS),
            )
            try:
                client.start(timeout=self._timeout)
            except KazooTimeoutError as error:
                _discard(client)
                message = f"cannot reach ZooKeeper at {hosts}: no session within {self._timeout:g}s"
                self._failures[hosts] = (time.monotonic(), message)
                raise ZkUnreachable(message) from error
            self._clients[hosts] = client
            self._failures.pop(hosts, None)
            return client

    def _reconnected(self, client: Any) -> bool:
        """Connected, or connected again within the connect timeout (kazoo reconnects by
        itself while the session lives)."""
        deadline = time.monotonic() + self._timeout
        while client.state != KazooState.CONNECTED:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _close_idle(self, except_for: str) -> None:
        now = time.monotonic()
        for hosts, used in list(self._last_used.items()):
            if hosts == except_for or now - used < self._idle_after:
                continue
            lock = self._locks[hosts]
            if not lock.acquire(blocking=False):
                continue  # someone is using it right now
            try:
                client = self._clients.pop(hosts, None)
                self._last_used.pop(hosts, None)
                self._failures.pop(hosts, None)
            finally:
                lock.release()
            if client is not None:
                _discard(client)

    def open_sessions(self) -> list[str]:
        return sorted(self._clients)

    def close(self) -> None:
        for hosts, client in list(self._clients.items()):
            with self._locks[hosts]:
                client.stop()
                client.close()
        self._clients.clear()


def _discard(client: Any) -> None:
    """Stop and close a client in the background: kazoo's stop can wait on its threads."""

    def stop() -> None:
        with contextlib.suppress(Exception):
            client.stop()
            client.close()

    threading.Thread(target=stop, name="zk-client-discard", daemon=True).start()


# One session per ensemble for the whole operator: the MesosCluster observer and the
# ZkMigration handlers often watch the same ensembles.
ZK_POOL = ZkClientPool()
