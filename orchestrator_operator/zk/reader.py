"""Bulk reads of znodes and subtrees with kazoo.

A subtree is read breadth-first, one level at a time. Where the server has multiRead
(ZooKeeper >= 3.6) the data and children of a whole level go in a few multiRead requests
and the ACLs through a short-lived raw session pipelining getACL (kazoo has neither
multiRead nor a cheap request); on an older server every znode costs three kazoo requests
(data, ACL, children), pipelined up to ``window`` at a time. When watch callbacks are
given, every znode is read that way on any server, arming a data watch and a child watch
on it (multiRead arms none), which is how the engine follows changes on an older server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.protocol.states import ZnodeStat

from orchestrator_operator.zk.acls import AclReader
from orchestrator_operator.zk.features import has_multi_read
from orchestrator_operator.zk.model import (
    Acl,
    NodeState,
    ReadAborted,
    TreeSnapshot,
    acl_from_kazoo,
    join,
)
from orchestrator_operator.zk.wire.multiread import GET_CHILDREN, GET_DATA, ReadOp, run_reads

Watch = Callable[[Any], None]

DEFAULT_WINDOW = 500
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Watches:
    data: Watch | None = None
    children: Watch | None = None


def _state(
    path: str,
    data: bytes,
    stat: Any,
    acl: Acl,
    children: Sequence[str] | None,
    aversion: int | None = None,
) -> NodeState:
    return NodeState(
        path=path,
        data=data or b"",
        acl=acl,
        ephemeral_owner=int(stat.ephemeralOwner),
        mtime_ms=int(stat.mtime),
        version=int(stat.version),
        aversion=int(stat.aversion if aversion is None else aversion),
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
    acls: AclReader | None = None,
) -> tuple[dict[str, NodeState | None], dict[str, str]]:
    """Read data, stat, ACL (and children) of ``paths``.

    Returns ({path: NodeState or None when absent}, {path: reason} for unreadable paths).
    Connection errors propagate. With ``children=False`` the children of znodes whose stat
    says they have none may be left unrequested (no child watch armed; the multiRead path
    reads them anyway, it costs nothing there). ``abort`` is checked before each window of
    requests: when it returns True, ReadAborted is raised. ``acls``: an open AclReader to
    reuse (read_tree shares one across levels).
    """
    if watches is not None or not has_multi_read(client):
        return _read_nodes_singly(client, paths, watches, children, window, timeout, abort)
    if acls is not None:
        return _read_nodes_multi(client, paths, timeout, abort, acls)
    with AclReader(client, timeout) as own:
        return _read_nodes_multi(client, paths, timeout, abort, own)


def _read_nodes_multi(
    client: Any,
    paths: Sequence[str],
    timeout: float,
    abort: Callable[[], bool] | None,
    acls: AclReader,
) -> tuple[dict[str, NodeState | None], dict[str, str]]:
    ops = [ReadOp(kind, path) for path in paths for kind in (GET_DATA, GET_CHILDREN)]
    results = run_reads(client, ops, multi=True, timeout=timeout, abort=abort)
    found: dict[str, NodeState | None] = {}
    unreadable: dict[str, str] = {}
    readable: list[tuple[str, bytes, ZnodeStat, list[str]]] = []
    for i, path in enumerate(paths):
        got, kids = results[2 * i], results[2 * i + 1]
        if isinstance(got, NoAuthError) or isinstance(kids, NoAuthError):
            what = "read" if isinstance(got, NoAuthError) else "list children"
            unreadable[path] = f"not authorized to {what} (ACL)"
        elif isinstance(got, NoNodeError) or isinstance(kids, NoNodeError):
            found[path] = None  # gone
        elif isinstance(got, Exception):
            raise got
        elif isinstance(kids, Exception):
            raise kids
        else:
            assert isinstance(got, tuple) and isinstance(kids, list)
            readable.append((path, got[0], got[1], kids))
    if abort is not None and abort():
        raise ReadAborted()
    acl_of = acls.read([(p, stat) for p, _, stat, _ in readable])
    for path, data, stat, kids in readable:
        acl = acl_of.get(path)
        if isinstance(acl, str):
            unreadable[path] = acl
        elif acl is None:
            found[path] = None
        else:
            found[path] = _state(path, data, stat, acl[0], kids, aversion=acl[1])
    return found, unreadable


def _read_nodes_singly(
    client: Any,
    paths: Sequence[str],
    watches: Watches | None,
    children: bool,
    window: int,
    timeout: float,
    abort: Callable[[], bool] | None,
) -> tuple[dict[str, NodeState | None], dict[str, str]]:
    """Servers without multiRead: three pipelined kazoo requests per znode."""
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
            found[path] = _state(
                path, data, stat, acl_from_kazoo(acl), names if names is not None else ()
            )
        for path, data, stat, acl, kids in second:
            try:
                names = kids.get(timeout=timeout)
            except NoNodeError:
                found[path] = None
                continue
            except NoAuthError:
                unreadable[path] = "not authorized to list children (ACL)"
                continue
            found[path] = _state(path, data, stat, acl_from_kazoo(acl), names)
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
    with AclReader(client, timeout) as acls:
        return _read_tree(client, roots, watches, window, timeout, leaf_children, abort, acls)


def _read_tree(
    client: Any,
    roots: Iterable[str],
    watches: Watches | None,
    window: int,
    timeout: float,
    leaf_children: bool,
    abort: Callable[[], bool] | None,
    acls: AclReader,
) -> TreeSnapshot:
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
            acls=acls,
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
