"""One member at a time, followers first, leader last, never below quorum."""

from __future__ import annotations

from orchestrator_operator.operator.mesoscluster.roll_plan import Member, Step, Wait, next_restart


def _members(revisions: list[str], ready: list[bool] | None = None) -> list[Member]:
    ready = ready or [True] * len(revisions)
    return [
        Member(f"m-{i}", i, exists=True, ready=r, revision=rev, ip=f"10.0.0.{i}")
        for i, (rev, r) in enumerate(zip(revisions, ready, strict=True))
    ]


def test_nothing_to_do_when_every_member_is_current() -> None:
    assert next_restart(_members(["new", "new", "new"]), "new", 2, None) is Wait.UP_TO_DATE


def test_followers_first_highest_ordinal_first_leader_last() -> None:
    members = _members(["old", "old", "old"])
    assert next_restart(members, "new", 2, leader_ip="10.0.0.2") == Step("m-1", 3)
    assert next_restart(members, "new", 2, leader_ip="10.0.0.0") == Step("m-2", 3)
    only_leader_left = _members(["old", "new", "new"])
    assert next_restart(only_leader_left, "new", 2, leader_ip="10.0.0.0") == Step("m-0", 1)


def test_waits_while_a_member_has_not_rejoined() -> None:
    members = _members(["old", "new", "old"], ready=[True, False, True])
    assert next_restart(members, "new", 2, None) is Wait.MEMBER_NOT_READY
    missing = [*_members(["old", "old"]), Member("m-2", 2, False, False, None, None)]
    assert next_restart(missing, "new", 2, None) is Wait.MEMBER_NOT_READY


def test_never_below_quorum() -> None:
    # Three masters with quorum 3: restarting any one would leave two.
    assert next_restart(_members(["old"] * 3), "new", 3, None) is Wait.NO_QUORUM_MARGIN
    # A single member has no margin to keep; it is restarted.
    assert next_restart(_members(["old"]), "new", 1, None) == Step("m-0", 1)
