"""The writer's create under a parent whose ACL forbids CREATE on the side written (a fake
in-memory ZooKeeper with ACL checks, no server).

Bidirectional runs reach this state: B opens a closed parent's ACL and adds a child while A
edits the parent; source-wins puts A's closed ACL back on B's parent, and B's child must
still be copied to A. It used to fail with NoAuthError on every reconcile, forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from kazoo.exceptions import BadVersionError, NoAuthError, NodeExistsError, NoNodeError
from kazoo.security import ACL, Id

from orchestrator_operator.zk.model import (
    OPEN_ACL,
    PERM_CREATE,
    NodeState,
    Put,
    acl_from_kazoo,
    next_sequence,
)
from orchestrator_operator.zk.writer import Applier

ADMIN = 16
NO_CREATE = [ACL(1 | 2 | 8 | 16, Id("world", "anyone"))]
NO_CREATE_NO_ADMIN = [ACL(1 | 2 | 8, Id("world", "anyone"))]


@dataclass
class Stat:
    version: int = 0
    aversion: int = 0
    cversion: int = 0
    mtime: int = 0
    numChildren: int = 0  # kazoo's name
    ephemeralOwner: int = 0


@dataclass
class Done:
    value: Any = None
    error: Exception | None = None

    def get(self, timeout: float | None = None) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


@dataclass
class FakeZk:
    """Just the kazoo calls the writer makes, with ZooKeeper's CREATE/ADMIN checks."""

    acls: dict[str, list[ACL]] = field(default_factory=lambda: {"/": list(NO_CREATE)})
    data: dict[str, bytes] = field(default_factory=lambda: {"/": b""})
    stats: dict[str, Stat] = field(default_factory=lambda: {"/": Stat()})
    auth: set[str] = field(default_factory=set)
    client_id: tuple[int, bytes] = (7, b"")
    # called after the parent was opened, before the child is created (to race the ACL)
    on_open: Any = None

    def _allowed(self, path: str, perm: int) -> bool:
        for entry in self.acls[path]:
            ident = entry.id
            who = ident.scheme == "world" or f"{ident.scheme}:{ident.id}" in self.auth
            if who and entry.perms & perm:
                return True
        return False

    def add_auth(self, scheme: str, credential: str) -> None:
        from kazoo.security import make_digest_acl_credential

        user, password = credential.split(":", 1)
        self.auth.add(f"{scheme}:{make_digest_acl_credential(user, password)}")

    def create(
        self, path: str, value: bytes = b"", acl: Any = None, ephemeral: bool = False
    ) -> str:
        parent = path.rsplit("/", 1)[0] or "/"
        if path in self.data:
            raise NodeExistsError()
        if parent not in self.data:
            raise NoNodeError()
        if not self._allowed(parent, PERM_CREATE):
            raise NoAuthError()
        self.data[path], self.acls[path], self.stats[path] = value, list(acl or []), Stat()
        self.stats[parent].cversion += 1
        self.stats[parent].numChildren += 1
        return path

    def delete(self, path: str) -> None:
        parent = path.rsplit("/", 1)[0] or "/"
        if path not in self.data:
            raise NoNodeError()
        if not self._allowed(parent, 8):
            raise NoAuthError()
        del self.data[path], self.acls[path], self.stats[path]
        self.stats[parent].cversion += 1
        self.stats[parent].numChildren -= 1

    def exists(self, path: str) -> Stat | None:
        return self.stats.get(path)

    def transaction(self) -> Txn:
        return Txn(self)

    def create_async(self, path: str, value: bytes = b"", **kw: Any) -> Done:
        try:
            return Done(self.create(path, value, **kw))
        except Exception as exc:  # handed over, as by kazoo's AsyncResult
            return Done(error=exc)

    def get_acls(self, path: str) -> tuple[list[ACL], Stat]:
        if path not in self.data:
            raise NoNodeError()
        return list(self.acls[path]), self.stats[path]

    def set_acls(self, path: str, acls: list[ACL], version: int = -1) -> Stat:
        if path not in self.data:
            raise NoNodeError()
        stat = self.stats[path]
        if version not in (-1, stat.aversion):
            raise BadVersionError()
        if not self._allowed(path, ADMIN):
            raise NoAuthError()
        self.acls[path] = list(acls)
        stat.aversion += 1
        answer = replace(stat)  # a snapshot, as kazoo's ZnodeStat
        opened = any(e.id.scheme == "digest" and e.perms & PERM_CREATE for e in acls)
        if opened and self.on_open is not None:
            self.on_open(self)
        return answer


@dataclass
class Txn:
    """kazoo's transaction: all or nothing (the fake checks by running, then undoing)."""

    zk: FakeZk
    ops: list[tuple[str, str]] = field(default_factory=list)

    def create(self, path: str, value: bytes = b"") -> None:
        self.ops.append(("create", path))

    def delete(self, path: str) -> None:
        self.ops.append(("delete", path))

    def commit(self) -> list[Any]:
        saved = (dict(self.zk.data), {p: replace(st) for p, st in self.zk.stats.items()})
        outcomes: list[Any] = []
        for op, path in self.ops:
            try:
                if op == "create":
                    outcomes.append(self.zk.create(path, b"", acl=OPEN_KAZOO))
                else:
                    self.zk.delete(path)
                    outcomes.append(True)
            except Exception as exc:  # ZooKeeper reports the failing op, rolls back all
                self.zk.data, self.zk.stats = saved
                self.zk.acls = {p: a for p, a in self.zk.acls.items() if p in saved[0]}
                return [*outcomes, exc]
        return outcomes


OPEN_KAZOO = [ACL(31, Id("world", "anyone"))]


def node(path: str, data: bytes = b"x") -> NodeState:
    return NodeState(path=path, data=data, acl=OPEN_ACL)


def closed_parent(acl: list[ACL] = NO_CREATE) -> FakeZk:
    zk = FakeZk()
    zk.data["/p"], zk.acls["/p"], zk.stats["/p"] = b"p", list(acl), Stat(aversion=3)
    return zk


@pytest.mark.parametrize("conditional", [True, False])
def test_child_is_created_under_a_closed_parent_and_the_acl_restored(conditional: bool) -> None:
    zk = closed_parent()
    result = Applier(zk).apply([Put("/p/x", node("/p/x"), None)], conditional=conditional)
    assert zk.data["/p/x"] == b"x"
    assert "/p/x" in result.written and "/p/x" in result.created
    assert not result.failed and not result.raced
    assert zk.acls["/p"] == NO_CREATE  # exactly as before
    assert acl_from_kazoo(zk.acls["/p"]) == acl_from_kazoo(NO_CREATE)
    assert result.acl_versions == {"/p": 5}  # opened and closed: the caller's cache follows
    assert zk.stats["/p"].aversion == 5


def test_several_children_in_one_bulk_apply() -> None:
    zk = closed_parent()
    puts = [Put(f"/p/c{i}", node(f"/p/c{i}", b"%d" % i), None) for i in range(3)]
    result = Applier(zk).apply(puts, bulk=False, conditional=True)
    assert sorted(p for p in zk.data if p.startswith("/p/")) == ["/p/c0", "/p/c1", "/p/c2"]
    assert not result.failed
    assert zk.acls["/p"] == NO_CREATE


def test_parent_without_admin_right_is_reported_not_forced() -> None:
    zk = closed_parent(NO_CREATE_NO_ADMIN)
    result = Applier(zk).apply([Put("/p/x", node("/p/x"), None)], conditional=True)
    assert "/p/x" not in zk.data
    assert "not authorized" in result.failed["/p/x"]
    assert zk.acls["/p"] == NO_CREATE_NO_ADMIN and zk.stats["/p"].aversion == 3


def test_parent_acl_changed_by_someone_else_meanwhile_is_left_to_them() -> None:
    theirs = [ACL(31, Id("world", "anyone"))]

    def somebody_sets_the_acl(zk: FakeZk) -> None:
        zk.on_open = None
        zk.set_acls("/p", theirs)

    zk = closed_parent()
    zk.on_open = somebody_sets_the_acl
    result = Applier(zk).apply([Put("/p/x", node("/p/x"), None)], conditional=True)
    assert zk.data["/p/x"] == b"x"  # the child was copied
    assert zk.acls["/p"] == theirs  # their later ACL was not overwritten with ours
    assert "/p" in result.raced  # the engine looks at the parent again


def test_open_parent_needs_no_acl_change() -> None:
    zk = FakeZk()
    zk.data["/p"], zk.acls["/p"], zk.stats["/p"] = b"p", [ACL(31, Id("world", "anyone"))], Stat()
    result = Applier(zk).apply([Put("/p/x", node("/p/x"), None)], conditional=True)
    assert "/p/x" in zk.data and not result.acl_versions and not zk.auth


def test_sequence_counter_of_a_closed_parent_is_pushed_forward() -> None:
    """A copied ``json.info_0000000004`` under a closed parent whose source has issued
    suffixes up to 4: the counter here is carried to 5 all the same, so a sequential create
    on this side never reuses the name."""
    zk = closed_parent()
    name = "/p/json.info_0000000004"
    applier = Applier(zk)
    copied = applier.apply([Put(name, node(name), None)], conditional=True)
    carried = applier.carry_counters({"/p": 5})
    assert name in zk.data and not copied.failed and not carried.failed
    stat = zk.stats["/p"]
    assert next_sequence(stat.cversion, stat.numChildren) == 5  # exactly, not beyond
    assert carried.ops["sequence_bump"] == 4  # one create per missing suffix (1 -> 5)
    assert copied.ops["set_acl"] == 2 and carried.ops["set_acl"] == 2  # opened, closed
    assert zk.acls["/p"] == NO_CREATE
    assert sorted(zk.data) == ["/", "/p", name]  # no scratch child left behind
    assert applier.carry_counters({"/p": 5}).ops["sequence_bump"] == 0  # already there
