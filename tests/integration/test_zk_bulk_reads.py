"""multiRead, multi creates, persistent recursive watches, the raw ACL session, the leader-first
connection and the poll handler, against real ZooKeeper 3.8."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NodeExistsError, NoNodeError
from kazoo.security import ACL, Id, make_digest_acl

from orchestrator_operator.zk.acls import UNREADABLE_ACL, AclReader
from orchestrator_operator.zk.connection import close, connect, leader_first
from orchestrator_operator.zk.features import has_multi_read, set_multi_read
from orchestrator_operator.zk.four_letter import ensemble_modes
from orchestrator_operator.zk.handler import PollHandler
from orchestrator_operator.zk.model import OPEN_ACL, acl_from_kazoo
from orchestrator_operator.zk.reader import read_tree
from orchestrator_operator.zk.wire.multicreate import CreateOp, multi_create_async
from orchestrator_operator.zk.wire.multiread import GET_CHILDREN, GET_DATA, ReadOp, run_reads
from orchestrator_operator.zk.wire.persistent import add_recursive_watch
from orchestrator_operator.zk.wire.rawsession import RawSession
from testenv.zookeeper import ZkEnsemble
from tests.fixtures.zk_sync import unique_root, wait_until, zk_client
from tests.fixtures.zookeeper import _zk_ensemble_module, zk_ensemble

pytestmark = pytest.mark.zookeeper
__all__ = ["_zk_ensemble_module", "zk_ensemble"]

SECRET = [make_digest_acl("alice", "pw", all=True)]  # nobody else may even read it


@pytest.fixture
def client(zk_ensemble: ZkEnsemble) -> Iterator[KazooClient]:
    with zk_client(zk_ensemble.connect_string) as c:
        yield c


def test_multi_read_answers_each_op_on_its_own(client: KazooClient) -> None:
    root = unique_root("mr")
    client.create(f"{root}/a", b"A", makepath=True)
    client.create(f"{root}/a/x", b"")
    client.create(f"{root}/secret", b"s", acl=SECRET)
    assert has_multi_read(client)
    ops = [
        ReadOp(GET_DATA, f"{root}/a"),
        ReadOp(GET_CHILDREN, f"{root}/a"),
        ReadOp(GET_DATA, f"{root}/missing"),
        ReadOp(GET_DATA, f"{root}/secret"),
        ReadOp(GET_CHILDREN, root),
    ]
    for multi in (True, False):  # multiRead, and one request per op (older servers)
        got = run_reads(client, ops, multi=multi)
        first = got[0]
        assert isinstance(first, tuple)
        assert (first[0], first[1].version) == (b"A", 0)
        assert got[1] == ["x"]
        assert isinstance(got[2], NoNodeError)
        assert isinstance(got[3], NoAuthError)
        assert isinstance(got[4], list)
        assert sorted(got[4]) == ["a", "secret"]


def test_recursive_watch_sees_everything_below_its_root(client: KazooClient) -> None:
    root = unique_root("pw")
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_event(event: Any) -> None:
        with lock:
            events.append((event.type, event.path))

    add_recursive_watch(client, root, on_event)  # the root does not exist yet
    client.create(f"{root}/a/b", b"1", makepath=True)
    client.set(f"{root}/a/b", b"2")
    client.delete(f"{root}/a/b")
    client.create(f"{root}-sibling", b"")  # outside the root: no event
    expected = [
        ("CREATED", root),
        ("CREATED", f"{root}/a"),
        ("CREATED", f"{root}/a/b"),
        ("CHANGED", f"{root}/a/b"),
        ("DELETED", f"{root}/a/b"),
    ]
    wait_until(lambda: len(events) >= len(expected), 10, "events")
    time.sleep(0.3)
    assert events == expected
    # one-shot watches of kazoo still work beside it
    fired = threading.Event()
    client.get(f"{root}/a", watch=lambda e: fired.set())
    client.set(f"{root}/a", b"x")
    assert fired.wait(10)


def test_raw_session_reads_acls_with_the_clients_credentials(
    zk_ensemble: ZkEnsemble, client: KazooClient
) -> None:
    root = unique_root("acl")
    client.create(root, b"")
    paths = [f"{root}/n{i}" for i in range(300)]
    for i, path in enumerate(paths):
        client.create(path, b"", acl=SECRET if i % 3 == 0 else None)
    with zk_client(zk_ensemble.connect_string) as alice:
        alice.add_auth("digest", "alice:pw")
        with RawSession.open(alice) as raw:
            got = raw.get_acls(alice, [*paths, f"{root}/missing"])
        assert isinstance(got[-1], NoNodeError)
        for path, res in zip(paths, got, strict=False):
            assert not isinstance(res, Exception)
            assert res[0] == acl_from_kazoo(alice.get_acls(path)[0])
    # without the credential: SECRET forbids reading the ACL, the rest is read
    stats = [(p, client.exists(p)) for p in paths]
    with AclReader(client, 30.0) as reader:
        outcome = reader.read(stats)
    assert outcome[paths[0]] == UNREADABLE_ACL
    assert outcome[paths[1]] == (acl_from_kazoo(client.get_acls(paths[1])[0]), 0)


def test_tree_read_is_the_same_with_and_without_multi_read(
    zk_ensemble: ZkEnsemble, client: KazooClient
) -> None:
    root = unique_root("tree")
    for i in range(250):
        client.create(f"{root}/d{i % 7}/n{i}", f"{i}".encode(), makepath=True)
    client.create(f"{root}/secret", b"", acl=SECRET)
    client.set_acls(f"{root}/d1", [ACL(31, Id("world", "anyone"))])  # aversion 1
    fast = read_tree(client, [root])
    with zk_client(zk_ensemble.connect_string) as legacy:
        set_multi_read(legacy, False)
        slow = read_tree(legacy, [root])
    assert fast.nodes == slow.nodes
    assert set(fast.unreadable) == {f"{root}/secret"}
    assert fast.unreadable == slow.unreadable
    assert fast.nodes[f"{root}/d1"].aversion == 1


def test_multi_create_copies_data_acl_and_kind_and_fails_as_a_whole(client: KazooClient) -> None:
    root = unique_root("mc")
    client.ensure_path(root)
    read_admin_only = ((17, "world", "anyone"),)
    ops = [
        CreateOp(f"{root}/p", b"parent", OPEN_ACL),
        CreateOp(f"{root}/p/s", b"\x00bytes", read_admin_only),
        CreateOp(f"{root}/p/e", b"mine", OPEN_ACL, ephemeral=True),
    ]
    assert multi_create_async(client, ops).get(timeout=10) == [op.path for op in ops]
    assert client.get(f"{root}/p")[0] == b"parent"
    assert acl_from_kazoo(client.get_acls(f"{root}/p/s")[0]) == read_admin_only
    assert client.exists(f"{root}/p/e").ephemeralOwner == client.client_id[0]
    # one op that cannot be done fails the multi: nothing of it is created
    again = [CreateOp(f"{root}/q", b"", OPEN_ACL), CreateOp(f"{root}/p", b"", OPEN_ACL)]
    outcomes = multi_create_async(client, again).get(timeout=10)
    assert any(isinstance(o, NodeExistsError) for o in outcomes)
    assert client.exists(f"{root}/q") is None


def test_leader_first_puts_the_leader_in_front(zk_ensemble: ZkEnsemble) -> None:
    hosts = zk_ensemble.connect_string
    ordered = leader_first(hosts + "/chroot")
    assert ordered is not None and ordered.endswith("/chroot")
    front = ordered.split("/", 1)[0].split(",")
    assert sorted(front) == sorted(hosts.split(","))
    assert dict(ensemble_modes(hosts))[front[0]] == "leader"
    assert leader_first(front[0]) is None  # one server: nothing to order


def test_poll_handler_client_reads_writes_and_gets_events(zk_ensemble: ZkEnsemble) -> None:
    root = unique_root("poll")
    events: list[Any] = []
    client = connect(zk_ensemble.connect_string, "test", timeout=10, session_timeout=10)
    try:
        assert isinstance(client.handler, PollHandler)
        client.create(root, b"1", makepath=True)
        client.get(root, watch=events.append)
        client.set(root, b"2")
        wait_until(lambda: len(events) == 1, 10, "data watch event")
        assert client.get(root)[0] == b"2"
    finally:
        close(client)
