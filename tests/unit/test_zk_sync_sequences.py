"""Which parents' sequence counters the engine carries to the other side (pure): those whose
source counter is ahead of what is known of the copy, judged by the counter itself, never
by what a child's name looks like."""

from __future__ import annotations

from orchestrator_operator.sync.counters import counters_behind
from orchestrator_operator.zk.model import NodeState, next_sequence

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
