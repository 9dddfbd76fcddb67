"""Connecting to an ensemble with a clear error when it cannot be reached."""

from __future__ import annotations

import logging
from typing import Any

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

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


def connect(hosts: str, what: str, *, timeout: float, session_timeout: float) -> Any:
    """A started KazooClient, or SyncError naming the ensemble when it is unreachable."""
    validate_hosts(hosts, what)
    client = KazooClient(hosts=hosts, timeout=session_timeout)
    try:
        client.start(timeout=timeout)
    except KazooTimeoutError as exc:
        client.stop()
        client.close()
        raise SyncError(
            f"{what} ensemble {hosts} unreachable: no ZooKeeper session within {timeout:g}s"
        ) from exc
    return client


def close(client: Any) -> None:
    try:
        client.stop()
    finally:
        client.close()
