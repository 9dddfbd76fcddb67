"""Pure: which quorum member to restart next, if any.

The StatefulSets use the OnDelete strategy, so a changed template only takes effect when the
operator deletes a pod. One pod at a time, only while every member is ready and the rest
still hold a quorum, followers first and the leader last: the leader changes once, not once
per restarted member.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Member:
    name: str
    ordinal: int
    exists: bool
    ready: bool
    revision: str | None
    ip: str | None


class Wait(Enum):
    UP_TO_DATE = "all members run the current template"
    MEMBER_NOT_READY = "a member is missing or not ready; waiting for it to rejoin"
    NO_QUORUM_MARGIN = "restarting one more member would leave fewer than a quorum ready"


@dataclass(frozen=True)
class Step:
    """Delete this pod now; `remaining` counts outdated members including it."""

    pod: str
    remaining: int


def next_restart(
    members: list[Member], update_revision: str, quorum: int, leader_ip: str | None
) -> Step | Wait:
    outdated = [m for m in members if m.exists and m.revision != update_revision]
    if not outdated:
        return Wait.UP_TO_DATE
    if not all(m.exists and m.ready for m in members):
        return Wait.MEMBER_NOT_READY
    # A single member cannot stay available through its own restart; anything larger must
    # keep a quorum of ready members while one restarts.
    if len(members) > 1 and len(members) - 1 < quorum:
        return Wait.NO_QUORUM_MARGIN
    # Followers before the leader; among equals, the highest ordinal first (as StatefulSets do).
    ordered = sorted(outdated, key=lambda m: (m.ip is not None and m.ip == leader_ip, -m.ordinal))
    return Step(pod=ordered[0].name, remaining=len(outdated))
