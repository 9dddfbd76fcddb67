"""Which parents' sequence counters the side written to must carry forward (pure).

A sequential create on the target must never get a suffix the source has already issued
under the same parent (Mesos and Marathon elect by the lowest sequential name). Sequence
numbers cannot be copied, only pushed forward, and the next suffix of a parent is its
creates so far (zk.model.next_sequence). A target that holds copies of all the source's
children has made at least as many creates, so only a source parent with deletes in its
history (cversion above its child count) can be ahead of its copy: those, and only where
what is known of the target is behind, are returned with the suffix the target must reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orchestrator_operator.zk.model import NodeState, next_sequence


def counters_behind(
    paths: Iterable[str],
    source: Mapping[str, NodeState],
    target: Mapping[str, NodeState],
    carried: Mapping[str, int],
) -> dict[str, int]:
    """{parent: next suffix on the source} for each of ``paths`` whose counter on the
    target may be behind. ``carried``: counters already pushed on the target (a floor)."""
    behind: dict[str, int] = {}
    for path in paths:
        node = source.get(path)
        if node is None:
            continue
        wanted = next_sequence(node.cversion, node.num_children)
        if wanted <= node.num_children:
            continue  # no deletes on the source: the copies alone keep the target up
        copy = target.get(path)
        if copy is None:
            continue  # not copied (yet): carried once it is
        known = next_sequence(copy.cversion, copy.num_children)
        if wanted > max(known, carried.get(path, 0)):
            behind[path] = wanted
    return behind
