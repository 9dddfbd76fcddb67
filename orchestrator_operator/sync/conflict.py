"""What to do with one path given both sides and the last agreed state (pure, no I/O).

One-way mode makes the target equal to the source. Bidirectional mode is a three-way
merge against ``base``, the content hash both sides last agreed on (what the engine last
copied or saw equal): a side that still matches the base did not change, so the change on
the other side wins; when both changed differently that is a conflict, resolved by the
chosen strategy. Echoes of the engine's own writes match the base and cause nothing.

A sequential name present on both sides that never agreed is a collision: two clients were
each handed that name, one on each side. It is never resolved by the strategy (either copy
would replace one client's node with the other's); both stay, and the conflict is recorded
with both values for a person.

Ephemerals are special: a node's *origin* is the side where a client (not the engine)
owns it; the other side holds a *mirror* owned by the engine's session. A mirror follows
its origin and goes when the origin goes; it is never treated as a change of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from orchestrator_operator.zk.model import NodeState, sequence_suffix


class Strategy(enum.Enum):
    SOURCE_WINS = "source-wins"
    LAST_WRITE_WINS = "last-write-wins"
    MANUAL = "manual"


class NodeOwner(enum.Enum):
    """Who owns a node on its side."""

    NONE = "none"  # persistent
    ENGINE = "engine"  # ephemeral owned by the engine's current session (a mirror)
    STALE_ENGINE = "stale-engine"  # ephemeral of a previous engine session (a dying mirror)
    CLIENT = "client"  # ephemeral owned by somebody else (an origin)


class Action(enum.Enum):
    NOOP = "noop"
    COPY_A_TO_B = "copy_a_to_b"  # create/update/replace B from A
    COPY_B_TO_A = "copy_b_to_a"
    DELETE_B = "delete_b"
    DELETE_A = "delete_a"
    MANUAL = "manual"  # conflict left for a person


@dataclass(frozen=True, slots=True)
class Peer:
    state: NodeState | None
    owner: NodeOwner = NodeOwner.NONE

    @property
    def exists(self) -> bool:
        return self.state is not None

    @property
    def hash(self) -> str | None:
        return None if self.state is None else self.state.content_hash

    @property
    def origin(self) -> bool:
        return self.state is not None and self.owner is NodeOwner.CLIENT

    @property
    def mirror(self) -> bool:
        return self.state is not None and self.owner in (NodeOwner.ENGINE, NodeOwner.STALE_ENGINE)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    conflict: str | None = None  # how a conflict was resolved, for logs and metrics
    reason: str = ""


NOOP = Decision(Action.NOOP)

SEQUENCE_COLLISION = "sequential name issued on both sides"


def _collision(a: Peer, b: Peer, base: str | None) -> bool:
    """Both sides hold a sequential-looking name they never agreed on (no base)."""
    if base is not None or a.state is None or b.state is None:
        return False
    return sequence_suffix(a.state.path) is not None


def decide_one_way(a: Peer, b: Peer) -> Decision:
    """Target := source. Mirrors of source ephemerals must be owned by the engine."""
    if a.state is None:
        return Decision(Action.DELETE_B, reason="absent on source") if b.exists else NOOP
    same = b.state is not None and a.hash == b.hash
    if same and (not a.state.ephemeral or b.owner is NodeOwner.ENGINE):
        return NOOP
    return Decision(Action.COPY_A_TO_B, reason="source differs")


def _copy_from(side_a: bool, a: Peer, b: Peer) -> Decision:
    """Make the other side equal to side A (side_a) or side B, including deletion."""
    if side_a:
        return Decision(Action.COPY_A_TO_B if a.exists else Action.DELETE_B)
    return Decision(Action.COPY_B_TO_A if b.exists else Action.DELETE_A)


def _resolve(a: Peer, b: Peer, strategy: Strategy, what: str) -> Decision:
    if strategy is Strategy.MANUAL:
        return Decision(Action.MANUAL, conflict="manual", reason=what)
    if strategy is Strategy.SOURCE_WINS:
        d = _copy_from(True, a, b)
        return Decision(d.action, conflict="source_wins", reason=what)
    # last-write-wins by mtime; a deletion has no mtime, so a surviving modification wins
    # (nothing is lost; the delete can be repeated).
    if a.state is None:
        return Decision(Action.COPY_B_TO_A, conflict="last_write_wins", reason=what)
    if b.state is None:
        return Decision(Action.COPY_A_TO_B, conflict="last_write_wins", reason=what)
    a_wins = a.state.mtime_ms >= b.state.mtime_ms
    action = Action.COPY_A_TO_B if a_wins else Action.COPY_B_TO_A
    return Decision(action, conflict="last_write_wins", reason=what)


def decide_bidirectional(a: Peer, b: Peer, base: str | None, strategy: Strategy) -> Decision:
    # --- ephemerals: an origin drives its mirror; mirrors never drive anything.
    if a.origin and b.origin:
        if a.hash == b.hash:
            return NOOP
        if _collision(a, b, base):
            return Decision(Action.MANUAL, conflict="manual", reason=SEQUENCE_COLLISION)
        # Two clients own the same path on the two sides: deleting either would kill a
        # live session's node, so this is always left for a person.
        return Decision(Action.MANUAL, conflict="manual", reason="ephemeral on both sides")
    for origin, mirror, copy in ((a, b, Action.COPY_A_TO_B), (b, a, Action.COPY_B_TO_A)):
        if origin.origin and (mirror.state is None or mirror.mirror):
            if mirror.owner is NodeOwner.ENGINE and origin.hash == mirror.hash:
                return NOOP
            return Decision(copy, reason="mirror ephemeral")
    if a.mirror and not b.origin:
        return Decision(Action.DELETE_A, reason="mirror without origin")
    if b.mirror and not a.origin:
        return Decision(Action.DELETE_B, reason="mirror without origin")

    # --- three-way merge of (persistent) content.
    ha, hb = a.hash, b.hash
    if ha == hb:
        return NOOP
    if _collision(a, b, base):
        return Decision(Action.MANUAL, conflict="manual", reason=SEQUENCE_COLLISION)
    if base is None and (ha is None or hb is None):
        # Never seen in agreement: a node present on one side only was created there.
        return Decision(Action.COPY_A_TO_B if ha is not None else Action.COPY_B_TO_A)
    a_changed, b_changed = ha != base, hb != base
    if a_changed and not b_changed:
        return _copy_from(True, a, b)
    if b_changed and not a_changed:
        return _copy_from(False, a, b)
    what = "both sides changed" if base is not None else "differs on both sides, no history"
    return _resolve(a, b, strategy, what)
