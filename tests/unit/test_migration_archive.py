"""Ensemble A's archive: written into ConfigMap parts and read back for `zk-migrate restore`."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime

import pytest

from orchestrator_operator.operator.zkmigration.archive import (
    PART_BYTES,
    ArchiveError,
    archive_configmaps,
    archive_lines,
    archive_roots,
    archived_nodes,
    joined_parts,
    restore_plan,
)
from orchestrator_operator.zk.model import OPEN_ACL, NodeState, TreeSnapshot

READ_ONLY = ((1, "world", "anyone"),)
OWNER = {"apiVersion": "orchestrator.dev/v1alpha1", "kind": "ZkMigration", "name": "m", "uid": "u"}


def snapshot(*nodes: NodeState) -> TreeSnapshot:
    return TreeSnapshot(nodes={n.path: n for n in nodes})


def tree() -> TreeSnapshot:
    return snapshot(
        NodeState("/mesos", b"", OPEN_ACL),
        NodeState("/mesos/log", b"entries", OPEN_ACL),
        NodeState("/mesos/json.info_0000000001", b"{}", OPEN_ACL, ephemeral_owner=77),
        NodeState("/marathon", b"", OPEN_ACL),
        NodeState("/marathon/state", b"\x00\x01binary", READ_ONLY),
    )


def configmaps(blob: bytes) -> list[dict[str, object]]:
    return archive_configmaps("m", "ns", OWNER, blob, datetime(2026, 12, 1, tzinfo=UTC))


def test_an_archive_reads_back_without_its_ephemerals_parents_first() -> None:
    nodes = archived_nodes(joined_parts(configmaps(archive_lines(tree()))))
    assert [n.path for n in nodes] == ["/marathon", "/mesos", "/marathon/state", "/mesos/log"]
    state = nodes[2]
    assert state.data == b"\x00\x01binary" and state.acl == READ_ONLY and not state.ephemeral
    assert archive_roots(nodes) == ["/marathon", "/mesos"]


def test_parts_join_in_their_order_whatever_order_they_come_in() -> None:
    big = snapshot(
        *(NodeState(f"/r/{i}", os.urandom(60_000), OPEN_ACL) for i in range(40)),
        NodeState("/r", b"", OPEN_ACL),
    )
    blob = archive_lines(big)
    parts = configmaps(blob)
    assert len(parts) == -(-len(blob) // PART_BYTES) >= 3
    assert joined_parts(list(reversed(parts))) == blob
    assert len(archived_nodes(blob)) == 41


def test_a_missing_part_is_named() -> None:
    blob = archive_lines(snapshot(*(NodeState(f"/{i}", os.urandom(400_000), OPEN_ACL)
                                    for i in range(5))))  # fmt: skip
    parts = configmaps(blob)
    with pytest.raises(ArchiveError, match=r"archive parts missing: \[2\] of 3"):
        joined_parts([parts[0], parts[2]])


def test_a_configmap_that_is_not_a_part_and_a_corrupt_archive_are_refused() -> None:
    stranger = {"metadata": {"name": "other"}, "data": {"x": "y"}}
    with pytest.raises(ArchiveError, match="ConfigMap other is not an archive part"):
        joined_parts([stranger])
    with pytest.raises(ArchiveError, match="not gzipped JSON lines"):
        archived_nodes(b"plain text")
    with pytest.raises(ArchiveError, match="archive line 2 cannot be read"):
        archived_nodes(gzip.compress(b'{"path": "/a", "data": "", "acl": []}\n{"path": 1}'))


def test_restore_creates_what_is_missing_and_keeps_what_differs() -> None:
    archived = archived_nodes(archive_lines(tree()))
    current = snapshot(
        NodeState("/mesos", b"", OPEN_ACL),
        NodeState("/mesos/log", b"changed since", OPEN_ACL, version=3),
    )
    plan = restore_plan(archived, current, overwrite=False)
    assert [(p.path, p.existing) for p in plan.puts] == [("/marathon", None),
                                                         ("/marathon/state", None)]  # fmt: skip
    assert plan.unchanged == 1 and plan.kept == ["/mesos/log"] and plan.creates == 2

    overwrite = restore_plan(archived, current, overwrite=True)
    assert [p.path for p in overwrite.puts] == ["/marathon", "/marathon/state", "/mesos/log"]
    assert overwrite.puts[-1].existing == current.nodes["/mesos/log"]
    assert overwrite.kept == [] and overwrite.creates == 2


def test_restore_never_overwrites_an_ephemeral_znode() -> None:
    archived = [NodeState("/mesos/leader", b"old", OPEN_ACL)]
    current = snapshot(NodeState("/mesos/leader", b"new", OPEN_ACL, ephemeral_owner=9))
    assert restore_plan(archived, current, overwrite=True).kept == ["/mesos/leader"]
    same_data = snapshot(NodeState("/mesos/leader", b"old", OPEN_ACL, ephemeral_owner=9))
    assert restore_plan(archived, same_data, overwrite=True).kept == ["/mesos/leader"]
