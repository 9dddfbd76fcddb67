"""Which parents' sequence counters the engine carries to the other side (pure): those whose
source counter is ahead of what is known of the copy, judged by the counter itself, never
by what a child's name looks like."""

from __future__ import annotations

from orchestrator_operator.sync.counters import BandPlan, counters_behind, plan_bands
from orchestrator_operator.zk.model import NodeState, next_sequence, sequence_suffix

ACL = ((31, "world", "anyone"),)


def parent(path: str, creates: int, deletes: int) -> NodeState:
    """A parent after `creates` child creates and `deletes` child deletes, as read."""
    return NodeState(
        path=path, data=b"", acl=ACL, ephemeral_owner=0,
        cversion=creates + deletes, num_children=creates - deletes,
    )  # fmt: skip


def test_the_next_suffix_counts_creates_only() -> None:
    # ZooKeeper's cversion counts creates and deletes alike (pinned against a real server
    # in tests/integration/test_zk_sync_sequences.py)
    assert next_sequence(0, 0) == 0
    assert next_sequence(9, 1) == 5  # 5 creates, 4 deletes
    assert next_sequence(20, 0) == 10  # emptied after 10 creates


def test_sparse_and_emptied_parents_are_carried_to_the_source_counter() -> None:
    source = {
        "/r/sparse": parent("/r/sparse", 30, 29),
        "/r/emptied": parent("/r/emptied", 10, 10),
    }
    copies = {
        "/r/sparse": parent("/r/sparse", 1, 0),  # the one child copied: next is 1
        "/r/emptied": parent("/r/emptied", 0, 0),
    }
    assert counters_behind(source, source, copies, {}) == {"/r/sparse": 30, "/r/emptied": 10}


def test_a_parent_without_deletes_is_kept_up_by_its_copies() -> None:
    """The copies of all its children are as many creates on the target."""
    source = {"/r/busy": parent("/r/busy", 3, 0)}
    assert counters_behind(source, source, {"/r/busy": parent("/r/busy", 0, 0)}, {}) == {}


def test_a_name_ending_in_digits_does_not_decide_anything() -> None:
    """Marathon instance ids end in digits; only the parent's counter is looked at, so a
    copied `x-a5297207084` never asks for five billion creates."""
    source = {"/m/instance": parent("/m/instance", 12, 2), "/m/instance/x-a5297207084": (
        parent("/m/instance/x-a5297207084", 0, 0))}  # fmt: skip
    copies = {path: parent(path, 0, 0) for path in source}
    assert counters_behind(source, source, copies, {}) == {"/m/instance": 12}


def test_a_counter_already_there_or_carried_is_left_alone() -> None:
    source = {"/r/p": parent("/r/p", 30, 29)}
    assert counters_behind(source, source, {"/r/p": parent("/r/p", 31, 30)}, {}) == {}
    assert counters_behind(source, source, {"/r/p": parent("/r/p", 1, 0)}, {"/r/p": 30}) == {}
    assert counters_behind(source, source, {"/r/p": parent("/r/p", 0, 0)}, {"/r/p": 29}) == {
        "/r/p": 30
    }


def test_a_node_gone_from_the_source_or_not_copied_yet_has_no_counter_to_carry() -> None:
    """Not copied (the create failed or raced): carried once the copy exists."""
    source = {"/r/p": parent("/r/p", 30, 29), "/r/q": parent("/r/q", 30, 29)}
    copies = {"/r/p": parent("/r/p", 0, 0), "/r/gone": parent("/r/gone", 0, 0)}
    assert counters_behind(["/r/gone", "/r/p", "/r/q"], source, copies, {}) == {"/r/p": 30}


def with_children(node: NodeState, *names: str) -> NodeState:
    return NodeState(
        path=node.path, data=b"", acl=ACL, cversion=node.cversion,
        num_children=len(names), children=names,
    )  # fmt: skip


def test_bidirectional_a_sequential_parent_gets_a_band_on_b() -> None:
    """B jumps a margin above the larger counter; A jumps up to B's (past what B issued)."""
    a = {
        "/r/latch": with_children(parent("/r/latch", 3, 0), *(f"m-000000000{i}" for i in range(3)))
    }
    b = {"/r/latch": with_children(parent("/r/latch", 5, 2), "m-0000000000", "m-0000000001",
                                   "m-0000000002")}  # fmt: skip
    plan = plan_bands(["/r/latch"], a, b, ({}, {}), {}, 100)
    assert plan.a == {"/r/latch": 5}  # B had issued up to 4
    assert plan.b == plan.bands == {"/r/latch": 105}


def test_bidirectional_a_stays_put_until_it_nears_the_band() -> None:
    kids = ("m-0000000000",)
    a = {"/r/latch": with_children(parent("/r/latch", 49, 48), *kids)}  # next 49
    b = {"/r/latch": with_children(parent("/r/latch", 110, 109), *kids)}  # next 110
    assert plan_bands(["/r/latch"], a, b, ({}, {}), {"/r/latch": 100}, 100).b == {}
    a = {"/r/latch": with_children(parent("/r/latch", 51, 50), *kids)}  # within half of it
    plan = plan_bands(["/r/latch"], a, b, ({}, {}), {"/r/latch": 100}, 100)
    assert (plan.a, plan.b) == ({"/r/latch": 110}, {"/r/latch": 210})


def test_bidirectional_b_below_its_band_jumps_again() -> None:
    """B's parent re-made (its counter back at 0): B would issue A's names again."""
    kids = ("m-0000000000",)
    a = {"/r/latch": with_children(parent("/r/latch", 1, 0), *kids)}
    b = {"/r/latch": with_children(parent("/r/latch", 1, 0), *kids)}
    plan = plan_bands(["/r/latch"], a, b, ({}, {}), {"/r/latch": 100}, 100)
    assert plan.b == {"/r/latch": 101}


def test_bidirectional_parents_without_sequential_children_have_no_band() -> None:
    """Names ending in digits the counter never issued (a Marathon instance id, a suffix
    above the parent's counter) do not make a parent sequential."""
    a = {
        "/m/instance": with_children(parent("/m/instance", 1, 0), "x-a5297207084"),
        "/m/plain": with_children(parent("/m/plain", 2, 0), "a", "b"),
        "/m/ahead": with_children(parent("/m/ahead", 1, 0), "job-0000000007"),
    }
    assert plan_bands(sorted(a), a, a, ({}, {}), {}, 100) == BandPlan()


def test_sequence_suffix_is_ten_digits_below_two_to_the_31() -> None:
    assert sequence_suffix("/r/json.info_0000000007") == 7
    assert sequence_suffix("0000000012") == 12
    assert sequence_suffix("/r/x-a5297207084") is None
    assert sequence_suffix("/r/n123") is None
