"""A kazoo session with the exit policy of the process it serves.

Mesos masters exit when their ZooKeeper session is lost: on expiry, or when they stay
disconnected for longer than the session timeout (Mesos forces the expiration itself).
Marathon exits on any ZooKeeper connection loss.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from enum import Enum

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import ACL, CREATOR_ALL_ACL, READ_ACL_UNSAFE

from sim.zkurl import ZkUrl

log = logging.getLogger(__name__)

EXIT_ZK_LOST = 3


class ExitPolicy(Enum):
    ON_SESSION_LOSS = "session"
    ON_CONNECTION_LOSS = "connection"
    NEVER = "never"


# Mesos creates its znodes with this ACL when the zk URL carries credentials
# (src/zookeeper/group.cpp, `EVERYONE_READ_CREATOR_ALL` of src/zookeeper/authentication.cpp),
# else world-writable (`ZOO_OPEN_ACL_UNSAFE`).
EVERYONE_READ_CREATOR_ALL: list[ACL] = [*CREATOR_ALL_ACL, *READ_ACL_UNSAFE]


def kazoo_client(
    zk: ZkUrl | str, timeout: float, acl: list[ACL] | None = None, **kwargs: object
) -> KazooClient:
    """A KazooClient for a zk URL (digest auth and Mesos' ACL when it carries credentials)
    or for a bare connect string."""
    if isinstance(zk, str) or zk.credentials is None:
        hosts = zk if isinstance(zk, str) else zk.hosts
        return KazooClient(hosts=hosts, timeout=timeout, **kwargs)
    return KazooClient(
        hosts=zk.hosts,
        timeout=timeout,
        auth_data=[("digest", zk.credentials)],
        default_acl=acl if acl is not None else EVERYONE_READ_CREATOR_ALL,
        **kwargs,
    )


class ZkSession:
    def __init__(
        self,
        zk: ZkUrl | str,
        session_timeout: float,
        policy: ExitPolicy,
        *,
        acl: list[ACL] | None = None,
    ) -> None:
        """`zk`: a ZkUrl (its credentials authenticate the session; `acl` overrides the ACL
        of created znodes, Mesos' by default) or a bare connect string."""
        self.client = kazoo_client(zk, session_timeout, acl)
        self.session_timeout = session_timeout
        self.policy = policy
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.client.add_listener(self._on_state)

    def start(self, timeout: float = 30.0) -> None:
        self.client.start(timeout=timeout)

    def stop(self) -> None:
        self.policy = ExitPolicy.NEVER
        self.client.stop()
        self.client.close()

    def _on_state(self, state: str) -> None:
        if self.policy is ExitPolicy.NEVER:
            return
        if state == KazooState.LOST:
            die("ZooKeeper session expired")
        elif state == KazooState.SUSPENDED:
            if self.policy is ExitPolicy.ON_CONNECTION_LOSS:
                die("ZooKeeper connection lost")
            with self._lock:
                if self._timer is None:
                    log.warning("ZooKeeper disconnected; waiting %.1fs", self.session_timeout)
                    self._timer = threading.Timer(self.session_timeout, self._expired)
                    self._timer.daemon = True
                    self._timer.start()
        elif state == KazooState.CONNECTED:
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None

    def _expired(self) -> None:
        if self.client.state != KazooState.CONNECTED:
            die("Timed out waiting to reconnect to ZooKeeper; forcing ZooKeeper session expiration")


def die(reason: str, code: int = EXIT_ZK_LOST) -> None:
    """Exit at once, as Mesos and Marathon do ("committing suicide")."""
    log.error("%s: exiting", reason)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


async def loop_forever(step: Callable[[], Awaitable[None]], interval: float) -> None:
    """Run `step` every `interval` seconds; a failed step (ZooKeeper unreachable, a peer
    answering garbage) is logged and retried, never fatal: exits are explicit (`die`)."""
    while True:
        try:
            await step()
        except (KazooException, KazooTimeoutError) as exc:
            log.warning("ZooKeeper unavailable: %s", exc or type(exc).__name__)
        except Exception:
            log.exception("step failed")
        await asyncio.sleep(interval)
