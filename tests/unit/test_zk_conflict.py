"""Merge decisions of the sync engine (pure)."""

from __future__ import annotations

import pytest

from orchestrator_operator.sync.conflict import (
    SEQUENCE_COLLISION,
    Action,
    NodeOwner,
    Peer,
    Strategy,
    decide_bidirectional,
    decide_one_way,
)
from orchestrator_operator.zk.model import OPEN_ACL, NodeState


def st(data: bytes, *, mtime: int = 0, owner: int = 0) -> NodeState:
    return NodeState("/p", data, OPEN_ACL, ephemeral_owner=owner, mtime_ms=mtime)


def p(data: bytes | None, owner: NodeOwner = NodeOwner.NONE, *, mtime: int = 0) -> Peer:
    if data is None:
        return Peer(None)
    eph = 0 if owner is NodeOwner.NONE else 42
    return Peer(st(data, mtime=mtime, owner=eph), owner)


NONE = Peer(None)
SW, LWW, MAN = Strategy.SOURCE_WINS, Strategy.LAST_WRITE_WINS, Strategy.MANUAL


def h(data: bytes) -> str:
    return st(data).content_hash


# ---------------------------------------------------------------- one-way
@pytest.mark.parametrize(
    ("a", "b", "action"),
    [
        (p(b"x"), NONE, Action.COPY_A_TO_B),
        (p(b"x"), p(b"x"), Action.NOOP),
        (p(b"x"), p(b"y"), Action.COPY_A_TO_B),
        (NONE, p(b"y"), Action.DELETE_B),
        (NONE, NONE, Action.NOOP),
        # a source ephemeral needs a mirror owned by the engine's current session
        (p(b"e", NodeOwner.CLIENT), p(b"e", NodeOwner.ENGINE), Action.NOOP),
        (p(b"e", NodeOwner.CLIENT), p(b"e", NodeOwner.STALE_ENGINE), Action.COPY_A_TO_B),
        (p(b"e", NodeOwner.CLIENT), p(b"e"), Action.COPY_A_TO_B),
        (p(b"e", NodeOwner.CLIENT), NONE, Action.COPY_A_TO_B),
    ],
)
def test_one_way(a: Peer, b: Peer, action: Action) -> None:
    assert decide_one_way(a, b).action is action


# ---------------------------------------------------------------- three-way merge
def test_echo_of_own_write_is_noop() -> None:
    d = decide_bidirectional(p(b"x"), p(b"x"), h(b"x"), SW)
    assert d.action is Action.NOOP and d.conflict is None


@pytest.mark.parametrize("strategy", list(Strategy))
def test_one_sided_changes_propagate_without_conflict(strategy: Strategy) -> None:
    assert decide_bidirectional(p(b"new"), p(b"old"), h(b"old"), strategy).action is (
        Action.COPY_A_TO_B
    )
    assert decide_bidirectional(p(b"old"), p(b"new"), h(b"old"), strategy).action is (
        Action.COPY_B_TO_A
    )
    assert decide_bidirectional(NONE, p(b"old"), h(b"old"), strategy).action is Action.DELETE_B
    assert decide_bidirectional(p(b"old"), NONE, h(b"old"), strategy).action is Action.DELETE_A
    assert decide_bidirectional(p(b"n"), NONE, None, strategy).action is Action.COPY_A_TO_B
    assert decide_bidirectional(NONE, p(b"n"), None, strategy).action is Action.COPY_B_TO_A
    assert decide_bidirectional(NONE, NONE, h(b"old"), strategy).action is Action.NOOP


def test_both_changed_source_wins() -> None:
    d = decide_bidirectional(p(b"a"), p(b"b"), h(b"old"), SW)
    assert (d.action, d.conflict) == (Action.COPY_A_TO_B, "source_wins")
    d = decide_bidirectional(NONE, p(b"b"), h(b"old"), SW)
    assert (d.action, d.conflict) == (Action.DELETE_B, "source_wins")


def test_both_changed_last_write_wins_by_mtime() -> None:
    d = decide_bidirectional(p(b"a", mtime=10), p(b"b", mtime=20), h(b"old"), LWW)
    assert (d.action, d.conflict) == (Action.COPY_B_TO_A, "last_write_wins")
    d = decide_bidirectional(p(b"a", mtime=30), p(b"b", mtime=20), h(b"old"), LWW)
    assert d.action is Action.COPY_A_TO_B
    # a modification beats a deletion (nothing lost)
    d = decide_bidirectional(NONE, p(b"b", mtime=1), h(b"old"), LWW)
    assert d.action is Action.COPY_B_TO_A


def test_manual_leaves_both_sides() -> None:
    d = decide_bidirectional(p(b"a"), p(b"b"), h(b"old"), MAN)
    assert (d.action, d.conflict) == (Action.MANUAL, "manual")


def test_no_history_and_different_is_a_conflict() -> None:
    d = decide_bidirectional(p(b"a"), p(b"b"), None, SW)
    assert d.conflict == "source_wins"


# ---------------------------------------------------------------- ephemerals
@pytest.mark.parametrize("strategy", list(Strategy))
def test_origin_drives_mirror(strategy: Strategy) -> None:
    origin = p(b"e", NodeOwner.CLIENT)
    assert decide_bidirectional(origin, NONE, None, strategy).action is Action.COPY_A_TO_B
    assert decide_bidirectional(NONE, origin, None, strategy).action is Action.COPY_B_TO_A
    assert decide_bidirectional(origin, p(b"e", NodeOwner.ENGINE), None, strategy).action is (
        Action.NOOP
    )
    assert decide_bidirectional(origin, p(b"old", NodeOwner.ENGINE), None, strategy).action is (
        Action.COPY_A_TO_B
    )
    # a mirror from a dead engine session is replaced by one the engine owns now
    assert decide_bidirectional(origin, p(b"e", NodeOwner.STALE_ENGINE), None, strategy).action is (
        Action.COPY_A_TO_B
    )


@pytest.mark.parametrize("strategy", list(Strategy))
def test_mirror_without_origin_goes_and_never_propagates(strategy: Strategy) -> None:
    mirror = p(b"e", NodeOwner.ENGINE)
    # origin gone: delete the mirror, never copy the mirror back
    assert decide_bidirectional(NONE, mirror, h(b"e"), strategy).action is Action.DELETE_B
    assert decide_bidirectional(mirror, NONE, h(b"e"), strategy).action is Action.DELETE_A


def test_ephemerals_owned_by_clients_on_both_sides_are_left_alone() -> None:
    d = decide_bidirectional(p(b"a", NodeOwner.CLIENT), p(b"b", NodeOwner.CLIENT), None, SW)
    assert d.action is Action.MANUAL
    d = decide_bidirectional(p(b"a", NodeOwner.CLIENT), p(b"a", NodeOwner.CLIENT), None, SW)
    assert d.action is Action.NOOP


# ---------------------------------------------------------------- sequential names
def seq(data: bytes, owner: NodeOwner = NodeOwner.NONE) -> Peer:
    eph = 0 if owner is NodeOwner.NONE else 42
    return Peer(NodeState("/l/member-0000000007", data, OPEN_ACL, ephemeral_owner=eph), owner)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_sequential_name_on_both_sides_without_history_is_never_resolved(
    strategy: Strategy,
) -> None:
    """Two clients got the same name, one per side: neither node may replace the other."""
    d = decide_bidirectional(seq(b"a"), seq(b"b"), None, strategy)
    assert (d.action, d.conflict, d.reason) == (Action.MANUAL, "manual", SEQUENCE_COLLISION)
    d = decide_bidirectional(seq(b"a", NodeOwner.CLIENT), seq(b"b", NodeOwner.CLIENT), None, SW)
    assert (d.action, d.reason) == (Action.MANUAL, SEQUENCE_COLLISION)
    # with a base it is an ordinary edit of an agreed node, merged as usual
    d = decide_bidirectional(seq(b"a"), seq(b"b"), seq(b"b").hash, strategy)
    assert d.action is Action.COPY_A_TO_B
    # a name that cannot be sequential follows the strategy as before
    other = Peer(NodeState("/m/x-a5297207084", b"a", OPEN_ACL))
    d = decide_bidirectional(other, Peer(NodeState("/m/x-a5297207084", b"b", OPEN_ACL)), None, SW)
    assert d.conflict == "source_wins"
