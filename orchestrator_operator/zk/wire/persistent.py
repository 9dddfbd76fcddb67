"""Persistent recursive watches (addWatch, OpCode 106, ZooKeeper >= 3.6) for kazoo 2.11.

One addWatch on a root makes the server send an event for every create, data change and
delete anywhere under it, for as long as the connection lasts (no re-arming, no per-znode
watch). multiRead cannot arm watches (the server ignores its sub-operations' watch flags),
so this is what lets bulk reads run without one watch request per znode.

kazoo routes an event to the watchers registered for its exact path, which it pops from
``client._data_watchers``; events under a recursive root would be dropped. So that dict is
replaced by one whose ``pop`` also yields the recursive watchers of the event's ancestors.
kazoo replaces the dict (and the server forgets the watch) whenever the connection is lost:
call ``add_recursive_watch`` again after every reconnect.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kazoo.protocol.serialization import write_string

from orchestrator_operator.zk.wire.multiread import server_paths

Watch = Callable[[Any], None]

ADD_WATCH = 106
PERSISTENT_RECURSIVE = 1
TIMEOUT = 60.0


class AddWatch:
    """A kazoo request object (no ``watcher`` attribute: kazoo must not register it)."""

    type = ADD_WATCH

    def __init__(self, path: str, mode: int = PERSISTENT_RECURSIVE) -> None:
        self.path = path
        self.mode = mode

    def __repr__(self) -> str:
        return f"AddWatch({self.path!r}, mode={self.mode})"

    def serialize(self) -> bytes:
        return bytes(write_string(self.path)) + struct.pack("!i", self.mode)

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> bool:
        return True


class RecursiveWatchers(defaultdict[str, set[Any]]):
    """kazoo's data-watcher dict, plus recursive watchers keyed by their (server) root."""

    def __init__(self, base: dict[str, set[Any]]) -> None:
        super().__init__(set)
        self.update(base)
        self.recursive: dict[str, Watch] = {}

    def pop(self, path: str, *default: Any) -> Any:
        own = super().pop(path, *default) if default else super().pop(path)
        extra = [w for root, w in self.recursive.items() if _under(path, root)]
        if not extra:
            return own
        return [*(own or ()), *extra]


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def _watchers(client: Any) -> RecursiveWatchers:
    current = client._data_watchers
    if isinstance(current, RecursiveWatchers):
        return current
    hooked = RecursiveWatchers(current)
    client._data_watchers = hooked
    return hooked


def add_recursive_watch(client: Any, path: str, watch: Watch, timeout: float = TIMEOUT) -> None:
    """Watch everything under ``path`` (which need not exist yet) until the connection is
    lost. ``watch`` gets kazoo WatchedEvents: CREATED, CHANGED or DELETED, exact path."""
    (wire,) = server_paths(client, [path])
    # registered before the request so that no event sent right after the reply is lost
    _watchers(client).recursive[wire] = watch
    result = client.handler.async_result()
    client._call(AddWatch(wire), result)
    try:
        result.get(timeout=timeout)
    except Exception:
        _watchers(client).recursive.pop(wire, None)
        raise
