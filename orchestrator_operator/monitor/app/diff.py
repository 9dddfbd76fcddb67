"""Topology diffs: what changed between two node maps, and what a (filtered) viewer sees."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from orchestrator_operator.monitor.app.topology import Node, NodeFilter

Changes = dict[str, Node | None]  # node id -> new node, or None when removed


class NodeMetrics(msgspec.Struct, gc=False):
    """An update of a node whose only change is its metrics."""

    id: str
    metrics: dict[str, float]


class Diff(msgspec.Struct):
    topology: str
    add: list[Node] = []
    update: list[Node] = []
    remove: list[str] = []
    metrics: list[NodeMetrics] = []  # metrics-only updates: merge into the known node
    reset: bool = False  # True on the first message: ``add`` is the whole topology

    def empty(self) -> bool:
        return not (self.add or self.update or self.remove or self.metrics or self.reset)


def metrics_only_change(old: Node, new: Node) -> bool:
    """True when ``new`` differs from ``old`` in its metrics alone."""
    return old.metrics != new.metrics and msgspec.structs.replace(old, metrics=new.metrics) == new


def changes_between(old: Mapping[str, Node], new: Mapping[str, Node]) -> Changes:
    out: Changes = {}
    for nid, node in new.items():
        prev = old.get(nid)
        if prev is None or prev != node:
            out[nid] = node
    for nid in old:
        if nid not in new:
            out[nid] = None
    return out


def merge_changes(pending: Changes, more: Changes) -> None:
    """Coalesce: the newest state of each node wins."""
    pending.update(more)


def view_diff(
    topology: str,
    visible: set[str],
    changes: Changes,
    node_filter: NodeFilter | None = None,
    metrics_only: set[str] | None = None,
) -> Diff:
    """Turn merged-state changes into a viewer's diff, updating its ``visible`` ids. Nodes in
    ``metrics_only`` that the viewer already has go out as metrics-only updates (filters do
    not look at metrics, so visibility cannot change)."""
    diff = Diff(topology=topology, add=[], update=[], remove=[], metrics=[])
    for nid, node in changes.items():
        shown = nid in visible
        if shown and node is not None and metrics_only and nid in metrics_only:
            diff.metrics.append(NodeMetrics(nid, node.metrics))
        elif node is not None and (node_filter is None or node_filter.matches(node)):
            if shown:
                diff.update.append(node)
            else:
                diff.add.append(node)
                visible.add(nid)
        elif shown:
            diff.remove.append(nid)
            visible.discard(nid)
    return diff
