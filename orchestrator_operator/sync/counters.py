"""Which parents' sequence counters the side written to must carry forward (pure).

A sequential create on the target must never get a suffix the source has already issued
under the same parent (Mesos and Marathon elect by the lowest sequential name). Sequence
numbers cannot be copied, only pushed forward, and the next suffix of a parent is its
creates so far (zk.model.next_sequence). A target that holds copies of all the source's
children has made at least as many creates, so only a source parent with deletes in its
history (cversion above its child count) can be ahead of its copy: those, and only where
what is known of the target is behind, are returned with the suffix the target must reach.

Bidirectional, clients on both sides create sequential children, and two equal counters
hand out the same name on both sides. For a parent that holds a sequential child on either
side the counters are kept apart instead (``plan_bands``): B's runs at least ``margin``
ahead of A's, so B issues names from a band that starts above anything A will reach before
the engine looks again. When A comes within half the margin of B's band (A's own creates,
and the copies of B's children, count), both jump: A to B's next suffix (past every name
B has issued) and B a margin above that, which starts a new band.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator_operator.zk.model import NodeState, next_sequence, sequence_suffix


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


def has_sequential_child(node: NodeState) -> bool:
    """A child whose name ends in a suffix this parent's counter has already issued."""
    issued = next_sequence(node.cversion, node.num_children)
    for name in node.children or ():
        suffix = sequence_suffix(name)
        if suffix is not None and suffix < issued:
            return True
    return False


@dataclass
class BandPlan:
    """Counters to push (parent: the suffix A / B must reach, B first) and the band each
    pushed parent then has on B (the lowest suffix B issues from then on)."""

    a: dict[str, int] = field(default_factory=dict)
    b: dict[str, int] = field(default_factory=dict)
    bands: dict[str, int] = field(default_factory=dict)


def plan_bands(
    paths: Iterable[str],
    a_nodes: Mapping[str, NodeState],
    b_nodes: Mapping[str, NodeState],
    carried: tuple[Mapping[str, int], Mapping[str, int]],
    bands: Mapping[str, int],
    margin: int,
) -> BandPlan:
    """Bidirectional: for each of ``paths`` that is a sequential parent on either side (or
    already has a band), the jumps that keep A's counter below B's band by at least half
    the ``margin``. ``carried``: counters already pushed on (A, B) (floors); ``bands``:
    each parent's band start on B as last set (none after a restart: every sequential
    parent then jumps once, since what B issued before is not known)."""
    plan = BandPlan()
    for path in paths:
        node_a, node_b = a_nodes.get(path), b_nodes.get(path)
        if node_a is None or node_b is None:
            continue  # not on both sides (yet): planned once it is
        start = bands.get(path)
        if start is None and not (has_sequential_child(node_a) or has_sequential_child(node_b)):
            continue  # not used for sequential names: counters_behind keeps B up
        next_a = max(next_sequence(node_a.cversion, node_a.num_children), carried[0].get(path, 0))
        next_b = max(next_sequence(node_b.cversion, node_b.num_children), carried[1].get(path, 0))
        if start is not None and next_b >= start and next_a + margin // 2 <= start:
            continue  # A is well below B's band, and B issues from it
        low = max(next_a, next_b)
        if low > next_a:
            plan.a[path] = low
        plan.b[path] = plan.bands[path] = low + margin
    return plan
