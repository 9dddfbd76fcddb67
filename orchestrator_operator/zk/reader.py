"""Pipelined reads of znodes and subtrees with kazoo (many requests in flight at once).

kazoo 2.11 has neither multiRead nor persistent recursive watches, so a subtree is read
breadth-first, one level at a time, with every request of a level in flight together
(bounded by ``window``). When watch callbacks are given, the same requests arm a data watch
and a child watch on every znode read, which is how the engine follows changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.exceptions import NoAuthError, NoNodeError

from .model import NodeState, TreeSnapshot, acl_from_kazoo, join

Watch = Callable[[Any], None]

DEFAULT_WINDOW = 500
DEFAULT_TIMEOUT = 60.0


class ReadAborted(Exception):
    """The reader's ``abort`` check said stop (the engine is shutting down)."""


@dataclass(frozen=True, slots=True)
class Watches:
    data: Watch | None = None
    children: Watch | None = None


def _state(
    path: str, data: bytes, stat: Any, acl: Any, children: Sequence[str] | None
) -> NodeState:
    return NodeState(
        path=path,
        data=data or b"",
        acl=acl_from_kazoo(acl),
        ephemeral_owner=int(stat.ephemeralOwner),
        mtime_ms=int(stat.mtime),
        version=int(stat.version),
        aversion=int(stat.aversion),
        cversion=int(stat.cversion),
        num_children=int(stat.numChildren),
        children=None if children is None else tuple(sorted(children)),
    )


def read_nodes(
    client: Any,
    paths: Sequence[str],
    watches: Watches | None = None,
    *,
    children: bool = True,
    window: int = DEFAULT_WINDOW,
    timeout: float = DEFAULT_TIMEOUT,
    abort: Callable[[], bool] | None = None,
) -> tuple[dict[str, NodeState | None], dict[str, str]]:
    """Read data, stat, ACL (and children) of ``paths``, pipelined.

    Returns ({path: NodeState or None when absent}, {path: reason} for unreadable paths).
    Connection errors propagate. With ``children=False`` the children of znodes whose stat
    says they have none are not requested (and no child watch is armed). ``abort`` is
    checked before each window of requests: when it returns True, ReadAborted is raised.
    """
    w = watches or Watches()
    found: dict[str, NodeState | None] = {}
    unreadable: dict[str, str] = {}
    for start in range(0, len(paths), window):
        if abort is not None and abort():
            raise ReadAborted()
        chunk = paths[start : start + window]
        pending = [
            (
                path,
                client.get_async(path, watch=w.data),
                client.get_acls_async(path),
                client.get_children_async(path, watch=w.children) if children else None,
            )
            for path in chunk
        ]
        second: list[tuple[str, bytes, Any, Any, Any]] = []
        for path, got, acls, kids in pending:
            try:
                data, stat = got.get(timeout=timeout)
                acl, _ = acls.get(timeout=timeout)
                names = kids.get(timeout=timeout) if kids is not None else None
            except NoNodeError:
                found[path] = None
                _drain(acls, kids)
                continue
            except NoAuthError:
                unreadable[path] = "not authorized to read (ACL)"
                _drain(acls, kids)
                continue
            if names is None and stat.numChildren > 0:
                second.append((path, data, stat, acl, client.get_children_async(path)))
                continue
            found[path] = _state(path, data, stat, acl, names if names is not None else ())
        for path, data, stat, acl, kids in second:
            try:
                names = kids.get(timeout=timeout)
            except NoNodeError:
                found[path] = None
                continue
            except NoAuthError:
                unreadable[path] = "not authorized to list children (ACL)"
                continue
            found[path] = _state(path, data, stat, acl, names)
    return found, unreadable


def _drain(*results: Any) -> None:
    """Wait for the sibling requests of a failed one so nothing is left dangling."""
    for result in results:
        if result is None:
            continue
        with contextlib.suppress(NoNodeError, NoAuthError):
            result.get(timeout=DEFAULT_TIMEOUT)


def read_tree(
    client: Any,
    roots: Iterable[str],
    watches: Watches | None = None,
    *,
    window: int = DEFAULT_WINDOW,
    timeout: float = DEFAULT_TIMEOUT,
    leaf_children: bool = True,
    abort: Callable[[], bool] | None = None,
) -> TreeSnapshot:
    """Read every znode under ``roots`` breadth-first, pipelined per level.

    ``leaf_children=False`` skips the children request of leaves (faster; only for reads
    that arm no watches, e.g. verify and bootstrap-only copies). ``abort``: see read_nodes
    (a long read stops within one window of requests; no partial snapshot is returned).
    """
    snap = TreeSnapshot()
    frontier = list(dict.fromkeys(roots))
    first = True
    while frontier:
        found, unreadable = read_nodes(
            client,
            frontier,
            watches,
            children=leaf_children or watches is not None,
            window=window,
            timeout=timeout,
            abort=abort,
        )
        snap.unreadable.update(unreadable)
        nxt: list[str] = []
        for path in frontier:
            node = found.get(path)
            if node is None:
                if first and path not in unreadable:
                    snap.missing_roots.append(path)
                continue
            snap.nodes[path] = node
            for child in node.children or ():
                if path == "/" and child == "zookeeper":
                    continue  # ZooKeeper's own /zookeeper (quota, config) is never synced
                nxt.append(join(path, child))
        frontier = nxt
        first = False
    return snap
