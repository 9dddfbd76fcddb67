"""Subtree digests and differences (pure)."""

from __future__ import annotations

from orchestrator_operator.sync.digest import DiffKind, diff_trees, subtree_digest
from orchestrator_operator.zk.model import OPEN_ACL, Acl, NodeState


def node(path: str, data: bytes = b"", *, owner: int = 0, acl: Acl = OPEN_ACL) -> NodeState:
    return NodeState(path=path, data=data, acl=acl, ephemeral_owner=owner)


def tree(*nodes: NodeState) -> dict[str, NodeState]:
    return {n.path: n for n in nodes}


def test_digest_ignores_versions_times_and_owner() -> None:
    a = tree(node("/m"), node("/m/x", b"1", owner=11))
    b = {
        "/m": NodeState("/m", b"", OPEN_ACL, version=7, mtime_ms=5, cversion=9),
        "/m/x": NodeState("/m/x", b"1", OPEN_ACL, ephemeral_owner=99, version=3),
    }
    assert subtree_digest(a, "/m") == subtree_digest(b, "/m")
    assert diff_trees(a, b, ["/m"]) == []


def test_digest_covers_path_data_acl_and_ephemerality() -> None:
    base = tree(node("/m"), node("/m/x", b"1"))
    variants = [
        tree(node("/m"), node("/m/y", b"1")),
        tree(node("/m"), node("/m/x", b"2")),
        tree(node("/m"), node("/m/x", b"1", acl=((1, "world", "anyone"),))),
        tree(node("/m"), node("/m/x", b"1", owner=5)),
        tree(node("/m")),
    ]
    digests = {subtree_digest(v, "/m") for v in variants}
    assert subtree_digest(base, "/m") not in digests
    assert len(digests) == len(variants)


def test_digest_is_per_subtree() -> None:
    a = tree(node("/m"), node("/m/x"), node("/other", b"a"))
    b = tree(node("/m"), node("/m/x"), node("/other", b"b"))
    assert subtree_digest(a, "/m") == subtree_digest(b, "/m")
    assert subtree_digest(a, "/other") != subtree_digest(b, "/other")
    # "/mx" is not under "/m"
    c = tree(node("/m"), node("/m/x"), node("/mx"))
    assert subtree_digest(c, "/m") == subtree_digest(a, "/m")


def test_data_and_separator_ambiguity_does_not_collide() -> None:
    a = tree(node("/m", b"ab"), node("/m/c", b""))
    b = tree(node("/m", b"a"), node("/m/c", b"b"))
    assert subtree_digest(a, "/m") != subtree_digest(b, "/m")


def test_diff_lists_every_kind() -> None:
    a = tree(
        node("/m"),
        node("/m/only-a"),
        node("/m/data", b"1"),
        node("/m/acl"),
        node("/m/eph", owner=3),
    )
    b = tree(
        node("/m"),
        node("/m/only-b"),
        node("/m/data", b"2"),
        node("/m/acl", acl=((1, "world", "anyone"),)),
        node("/m/eph"),
    )
    kinds = {(d.path, d.kind) for d in diff_trees(a, b, ["/m"])}
    assert kinds == {
        ("/m/only-a", DiffKind.MISSING_ON_B),
        ("/m/only-b", DiffKind.MISSING_ON_A),
        ("/m/data", DiffKind.DATA),
        ("/m/acl", DiffKind.ACL),
        ("/m/eph", DiffKind.EPHEMERAL),
    }
    assert all(d.describe() for d in diff_trees(a, b, ["/m"]))
