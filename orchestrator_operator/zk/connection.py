"""Connecting to an ensemble with a clear error when it cannot be reached."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError
from kazoo.handlers.threading import KazooTimeoutError

from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.zk.four_letter import connect_string_hosts, server_mode
from orchestrator_operator.zk.handler import PollHandler, tls_hint

log = logging.getLogger(__name__)


class SyncError(Exception):
    """A problem the user must fix (bad input, unreachable ensemble); message is for people."""


def validate_hosts(hosts: str, what: str) -> str:
    hosts = hosts.strip()
    if not hosts:
        raise SyncError(f"{what}: empty connect string (expected host:port[,host:port...])")
    for part in hosts.split("/")[0].split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise SyncError(f"{what}: {part!r} is not host:port in connect string {hosts!r}")
    return hosts


def leader_first(hosts: str, timeout: float = 0.5, tls: ReloadingTls | None = None) -> str | None:
    """``hosts`` with the server that says it leads (``srvr``) moved to the front, or None
    when none does (``srvr`` not allowed, servers down, a one-server connect string).
    ``tls``: ``srvr`` over TLS (the connect string names the TLS client port)."""
    servers, slash, chroot = hosts.partition("/")
    parts = [p.strip() for p in servers.split(",")]
    if len(parts) < 2:
        return None
    context = tls.current() if tls is not None else None
    for index, (host, port) in enumerate(connect_string_hosts(servers)):
        if server_mode(host, port, timeout, context) == "leader":
            ordered = [parts[index], *parts[:index], *parts[index + 1 :]]
            return ",".join(ordered) + slash + chroot
    return None


def connect(
    hosts: str,
    what: str,
    *,
    timeout: float,
    session_timeout: float,
    prefer_leader: bool = False,
    auth: Sequence[tuple[str, str]] = (),
    client_id: tuple[int, bytes] | None = None,
    tls: ReloadingTls | None = None,
) -> Any:
    """A started KazooClient, or SyncError naming the ensemble when it is unreachable.
    ``client_id``: (session id, password) of a session to carry on; when it has expired,
    kazoo makes a new one.
    ``auth``: (scheme, credential) pairs the session authenticates with (kazoo sends them
    again after every reconnect, and the raw ACL sessions replay them).

    ``prefer_leader``: connect to the ensemble's leader first (writes skip the hop from a
    follower to the leader, and watch events come from the server that commits first);
    after a connection loss kazoo tries the servers in that order.

    ``tls``: connect over TLS (``hosts`` name ZooKeeper's secure client port, 2281 on the
    managed ensembles), verifying the servers against its ``ca.crt`` and their host names,
    presenting its client certificate (zk/handler.py)."""
    validate_hosts(hosts, what)
    ordered = leader_first(hosts, tls=tls) if prefer_leader else None
    handler = PollHandler(tls)
    client = KazooClient(
        hosts=ordered or hosts,
        timeout=session_timeout,
        randomize_hosts=ordered is None,
        handler=handler,
        auth_data=list(auth) or None,
        client_id=client_id,
        use_ssl=tls is not None,  # what RawSession and the messages look at; handler connects
    )
    try:
        client.start(timeout=timeout)
    except KazooTimeoutError as exc:
        client.stop()
        client.close()
        raise SyncError(
            f"{what} ensemble {hosts} unreachable: no ZooKeeper session within {timeout:g}s"
            + tls_hint(tls is not None, handler.last_error)
        ) from exc
    except AuthFailedError as exc:
        client.stop()
        client.close()
        raise SyncError(f"{what} ensemble {hosts} refused the credentials given") from exc
    return client


def close(client: Any) -> None:
    try:
        client.stop()
    finally:
        client.close()
