"""Long-lived ZooKeeper sessions for the operator's observers, one per connect string.

kazoo's client is blocking; Kopf runs sync handlers and timers in its thread pool, so the
pool is thread-safe, with one lock per connect string (a slow ensemble does not hold up the
others). A connect string that cannot be reached raises ZkUnreachable with a message for the
user, and keeps raising it without a new attempt for a while, so that many clusters pointing
at a dead ensemble do not each block a worker on every tick. A session nobody has asked for
in a while (its MesosCluster or ZkMigration is gone) is closed.

Credentials: a session is kept per connect string and credentials. A handler that knows the
digest credentials of an ensemble (common/zk_credentials.py reads them from the resource's
Secret) says so once for its thread with ``with zk_credentials({hosts: creds}):``; every
``ZK_POOL.get(hosts)`` within the block, however deep in the observers, then returns a
session authenticated with them. Messages and ``open_sessions`` name the hosts only.

TLS: a managed ensemble with ``spec.zookeeper.tls`` is known by its connect string on 2181
(Mesos' and Marathon's, shown in status) and reached by the operator on the TLS client port,
by the member names its certificate carries. A handler says so for its block with
``with zk_tls_routes({connect: tls_connect}):`` (builders.zookeeper.operator_tls_routes);
``ZK_POOL.get(connect)`` within it returns a session over TLS to ``tls_connect`` with the
pool's client certificate (``configure_tls``: the operator's
``--zookeeper-client-tls-dir``); ``get(hosts, tls=True)`` asks for TLS directly. Without a
client certificate, ZkTlsNotConfigured (a ZkUnreachable) names the setting, at once and
without a connection attempt.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.zk.four_letter import ensemble_modes
from orchestrator_operator.zk.handler import PollHandler, tls_hint

CONNECT_TIMEOUT_SECONDS = 3.0
RETRY_MAX_DELAY_SECONDS = 2.0  # so a client being stopped notices soon
RETRY_AFTER_SECONDS = 15.0
IDLE_SECONDS = 300.0  # observers ask every second or two while their object exists


class ZkUnreachable(Exception):
    """No ZooKeeper session could be had; the message names the ensemble."""


class ZkTlsNotConfigured(ZkUnreachable):
    """The ensemble is to be reached over TLS, and no client certificate is configured."""


# What the operator's flag and variable are called, for the message that asks for them.
TLS_SETTING = "--zookeeper-client-tls-dir (ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR)"


Auth = tuple[tuple[str, str], ...]  # kazoo auth_data: (scheme, credential) pairs

_CREDENTIALS: contextvars.ContextVar[Mapping[str, Auth]] = contextvars.ContextVar(
    "zk_credentials", default=MappingProxyType({})
)


@contextlib.contextmanager
def zk_credentials(by_hosts: Mapping[str, Sequence[tuple[str, str]]]) -> Iterator[None]:
    """Within the block (this thread or task), sessions from the pool for these connect
    strings authenticate with these credentials (empty ones: none)."""
    merged = {**_CREDENTIALS.get(), **{h: tuple(a) for h, a in by_hosts.items()}}
    token = _CREDENTIALS.set(merged)
    try:
        yield
    finally:
        _CREDENTIALS.reset(token)


_TLS_ROUTES: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "zk_tls_routes", default=MappingProxyType({})
)


@contextlib.contextmanager
def zk_tls_routes(routes: Mapping[str, str]) -> Iterator[None]:
    """Within the block (this thread or task), sessions from the pool for these connect
    strings are made over TLS to the connect string each maps to."""
    token = _TLS_ROUTES.set({**_TLS_ROUTES.get(), **routes})
    try:
        yield
    finally:
        _TLS_ROUTES.reset(token)


def _session_key(hosts: str, auth: Auth, tls: bool = False) -> str:
    """One session per connect string, credentials and TLS; the secret only as a hash."""
    key = f"{hosts}#tls" if tls else hosts
    if not auth:
        return key
    digest = hashlib.sha256(repr(auth).encode()).hexdigest()[:16]
    return f"{key}#auth-{digest}"


def tls_not_configured_message(hosts: str) -> str:
    return (
        f"ZooKeeper at {hosts} is reached over TLS (spec.zookeeper.tls) and the operator has"
        f" no client certificate: set {TLS_SETTING} to a mounted Secret with tls.crt, tls.key"
        " and ca.crt from the ensemble's issuer"
    )


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
        self.client_tls: ReloadingTls | None = None

    def configure_tls(self, client_tls: ReloadingTls | None) -> None:
        """The client certificate and CA of sessions asked for with ``tls=True``."""
        self.client_tls = client_tls

    def get(
        self, hosts: str, auth: Sequence[tuple[str, str]] | None = None, *, tls: bool = False
    ) -> Any:
        """A connected KazooClient for `hosts`, authenticated with `auth` (default: the
        credentials `zk_credentials` gave for `hosts` in this context, else none); over TLS
        with the pool's client certificate when `tls`."""
        creds: Auth = tuple(auth) if auth is not None else _CREDENTIALS.get().get(hosts, ())
        routed = _TLS_ROUTES.get().get(hosts)
        if routed is not None:
            hosts, tls = routed, True
        client_tls = self.client_tls
        if tls and client_tls is None:
            raise ZkTlsNotConfigured(tls_not_configured_message(hosts))
        key = _session_key(hosts, creds, tls)
        self._close_idle(except_for=key)
        self._last_used[key] = time.monotonic()
        with self._locks[key]:
            client = self._clients.get(key)
            if client is not None:
                if self._reconnected(client):
                    return client
                # Never start() a client that lost its connection again: kazoo would join
                # its connection thread, which can block a handler for as long as that
                # thread keeps retrying. Drop it off the handler's thread instead.
                del self._clients[key]
                _discard(client)
                message = f"lost ZooKeeper at {hosts}: no reconnection within {self._timeout:g}s"
                self._failures[key] = (time.monotonic(), message)
                raise ZkUnreachable(message)
            failed = self._failures.get(key)
            if failed and time.monotonic() - failed[0] < self._retry_after:
                raise ZkUnreachable(failed[1])
            handler = PollHandler(client_tls) if tls else None
            client = KazooClient(
                hosts=hosts,
                timeout=10.0,
                connection_retry=KazooRetry(max_tries=-1, max_delay=RETRY_MAX_DELAY_SECONDS),
                # kazoo sends these after every (re)connect, before any request
                auth_data=list(creds) or None,
                handler=handler,
                use_ssl=tls,
            )
            try:
                client.start(timeout=self._timeout)
            except KazooTimeoutError as error:
                _discard(client)
                message = (
                    f"cannot reach ZooKeeper at {hosts}: no session within {self._timeout:g}s"
                    + tls_hint(tls, handler.last_error if handler is not None else None)
                )
                self._failures[key] = (time.monotonic(), message)
                raise ZkUnreachable(message) from error
            self._clients[key] = client
            self._failures.pop(key, None)
            return client

    def ensemble_modes(self, hosts: str) -> list[tuple[str, str | None]]:
        """Each server's `srvr` mode, over TLS to where `zk_tls_routes` sends `hosts`."""
        routed = _TLS_ROUTES.get().get(hosts)
        if routed is None:
            return ensemble_modes(hosts)
        if self.client_tls is None:
            raise ZkTlsNotConfigured(tls_not_configured_message(routed))
        return ensemble_modes(routed, context=self.client_tls.current())

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
        """The connect strings with a session (one entry per credentials used)."""
        return sorted(key.split("#", 1)[0] for key in self._clients)

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
