"""The sync engine against two real 3-server ensembles (in-process engine)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, make_digest_acl

from orchestrator_operator.common.health_server import BackgroundHealthServer
from orchestrator_operator.sync.conflict import Strategy
from orchestrator_operator.sync.engine import SyncEngine
from orchestrator_operator.sync.verify import verify_clients
from orchestrator_operator.zk.model import NodeState, Put, Side, acl_from_kazoo
from orchestrator_operator.zk.writer import Applier
from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import (
    ZkPair,
    engine_for,
    unique_root,
    wait_in_sync,
    wait_until,
    zk_client,
)

# Fixtures from the support module: two real 3-server ensembles per module.
zk_pair = support.zk_pair
pair = support.pair
clients = support.clients

pytestmark = pytest.mark.zookeeper


def metric(engine: SyncEngine, name: str, **labels: str) -> float:
    value = engine.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def ops(engine: SyncEngine, op: str, direction: str) -> float:
    return metric(engine, "orchestrator_zk_sync_operations_total", op=op, direction=direction)


def session_id(client: KazooClient) -> int | None:
    cid = client.client_id
    return None if cid is None else int(cid[0])


def test_one_way_bootstrap_and_live_changes(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    ca, cb = clients
    root = unique_root()
    for i in range(40):
        ca.create(f"{root}/d{i % 5}/n{i}", f"v{i}".encode(), makepath=True)
    secret = [make_digest_acl("alice", "pw", all=True), ACL(31, Id("world", "anyone"))]
    ca.create(f"{root}/acl", b"with-acl", acl=secret)
    # a parent whose ACL forbids CREATE still gets its children copied
    ca.create(f"{root}/closed", b"")
    ca.create(f"{root}/closed/child", b"c")
    ca.set_acls(f"{root}/closed", [ACL(1 | 2 | 8 | 16, Id("world", "anyone"))])
    owner = KazooClient(hosts=pair.a.connect_string)
    owner.start()
    owner.create(f"{root}/json.info_", b'{"leader":1}', ephemeral=True, sequence=True)
    # stale target content is overwritten / removed (target := source)
    cb.create(f"{root}/d0/n0", b"stale", makepath=True)
    cb.create(f"{root}/only-on-target", b"x")

    with engine_for(pair, [root]) as engine:
        assert engine.bootstrap.znodes == len(engine.cache[Side.A])
        wait_in_sync(ca, cb, [root], timeout=30)
        # ephemerals are mirrored as ephemerals owned by the engine's session
        (name,) = [c for c in cb.get_children(root) if c.startswith("json.info_")]
        _, stat = cb.get(f"{root}/{name}")
        assert stat.ephemeralOwner == session_id(engine.clients[Side.B])
        assert cb.get_acls(f"{root}/acl")[0] == ca.get_acls(f"{root}/acl")[0]
        assert cb.get_acls(f"{root}/closed")[0] == ca.get_acls(f"{root}/closed")[0]
        # the copied sequence number is never reused on the target
        fresh = cb.create(f"{root}/json.info_", b"", ephemeral=True, sequence=True)
        assert fresh.rsplit("_", 1)[1] > name.rsplit("_", 1)[1]
        cb.delete(fresh)

        ca.set(f"{root}/d1/n1", b"changed")
        ca.delete(f"{root}/d2", recursive=True)
        ca.create(f"{root}/new/deep/node", b"deep", makepath=True)
        ca.set_acls(f"{root}/d3", secret)  # ACL changes fire no watch: reconcile finds them
        wait_until(lambda: cb.exists(f"{root}/new/deep/node") is not None, 30, "create")
        assert cb.get(f"{root}/d1/n1")[0] == b"changed"
        assert cb.exists(f"{root}/d2") is None
        owner.stop()  # the origin's session ends: the mirror goes too
        owner.close()
        wait_until(lambda: cb.exists(f"{root}/{name}") is None, 30, "mirror removal")
        engine.request_full_reconcile()
        wait_in_sync(ca, cb, [root], timeout=30)
        assert (
            metric(engine, "orchestrator_zk_sync_operations_total", op="create", direction="a_to_b")
            > 40
        )
        assert (
            metric(engine, "orchestrator_zk_sync_replication_lag_seconds_count", direction="a_to_b")
            > 0
        )
        assert metric(engine, "orchestrator_zk_sync_errors_total", kind="write_failed") == 0


def test_one_way_bursts_of_updates_with_target_znodes_deleted_meanwhile(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    """Live data updates go to B ahead of their replies; a multi that fails because a znode
    vanished on B (B is not watched in one-way mode) is redone op by op, recreating it."""
    ca, cb = clients
    root = unique_root("burst")
    paths = [f"{root}/g{i % 4}/n{i}" for i in range(200)]
    for path in paths:
        ca.create(path, b"start", makepath=True)
    with engine_for(pair, [root], reconcile_interval=600.0) as engine:
        wait_in_sync(ca, cb, [root], timeout=30)
        for burst in range(5):
            cb.delete(paths[burst])  # behind the engine's back
            pending = [ca.set_async(p, f"burst{burst}".encode()) for p in paths]
            for res in pending:
                res.get(timeout=30)
        assert engine.wait_idle(30)
        wait_in_sync(ca, cb, [root], timeout=15)
        assert all(cb.get(p)[0] == b"burst4" for p in paths)
        assert engine.full_reconciles == 1  # the live path repaired it, not a reconcile
        assert ops(engine, "set", "a_to_b") >= 200
        assert metric(engine, "orchestrator_zk_sync_errors_total", kind="write_failed") == 0


def test_bidirectional_no_echo_and_both_directions(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    ca, cb = clients
    root = unique_root()
    ca.create(f"{root}/x", b"0", makepath=True)
    with engine_for(pair, [root], bidirectional=True) as engine:
        wait_in_sync(ca, cb, [root], timeout=30)
        sets_ab = metric(
            engine, "orchestrator_zk_sync_operations_total", op="set", direction="a_to_b"
        )
        ca.set(f"{root}/x", b"from-a")
        wait_until(lambda: cb.get(f"{root}/x")[0] == b"from-a", 30, "a->b")
        cb.set(f"{root}/x", b"from-b")
        wait_until(lambda: ca.get(f"{root}/x")[0] == b"from-b", 30, "b->a")
        cb.create(f"{root}/b-made/child", b"b", makepath=True)
        wait_until(lambda: ca.exists(f"{root}/b-made/child") is not None, 30, "b create")
        mesos = KazooClient(hosts=pair.b.connect_string)
        mesos.start()
        eph = mesos.create(f"{root}/json.info_", b"m", ephemeral=True, sequence=True)
        wait_until(lambda: ca.exists(eph) is not None, 30, "ephemeral b->a")
        assert ca.get(eph)[1].ephemeralOwner == session_id(engine.clients[Side.A])
        assert engine.wait_idle(30)
        # each change crossed exactly once: the engine's own writes did not come back
        assert (
            metric(engine, "orchestrator_zk_sync_operations_total", op="set", direction="a_to_b")
            == sets_ab + 1
        )
        assert (
            metric(engine, "orchestrator_zk_sync_operations_total", op="set", direction="b_to_a")
            == 1
        )
        cb.delete(f"{root}/b-made", recursive=True)
        mesos.stop()
        mesos.close()
        wait_until(lambda: ca.exists(eph) is None and ca.exists(f"{root}/b-made") is None, 30)
        wait_in_sync(ca, cb, [root], timeout=30)
        assert metric(engine, "orchestrator_zk_sync_conflicts_total", resolution="source_wins") == 0


@pytest.mark.parametrize(
    ("strategy", "expect_a", "expect_b"),
    [
        (Strategy.SOURCE_WINS, b"a-edit", b"a-edit"),
        (Strategy.LAST_WRITE_WINS, b"b-edit", b"b-edit"),  # B was written last
        (Strategy.MANUAL, b"a-edit", b"b-edit"),
    ],
)
def test_bidirectional_conflicts(
    pair: ZkPair,
    clients: tuple[KazooClient, KazooClient],
    tmp_path: Path,
    strategy: Strategy,
    expect_a: bytes,
    expect_b: bytes,
) -> None:
    """Both sides change one znode while the engine is down; on restart it sees both
    changed since they last agreed (the state file) and applies the strategy."""
    ca, cb = clients
    root = unique_root()
    ca.create(f"{root}/x", b"agreed", makepath=True)
    state = tmp_path / "state.json"
    with engine_for(pair, [root], bidirectional=True, strategy=strategy, state_file=state):
        wait_in_sync(ca, cb, [root], timeout=30)
    ca.set(f"{root}/x", b"a-edit")
    cb.set(f"{root}/x", b"b-edit")
    with engine_for(pair, [root], bidirectional=True, strategy=strategy, state_file=state) as e:
        assert e.wait_idle(30)
        assert ca.get(f"{root}/x")[0] == expect_a
        assert cb.get(f"{root}/x")[0] == expect_b
        resolution = {
            Strategy.SOURCE_WINS: "source_wins",
            Strategy.LAST_WRITE_WINS: "last_write_wins",
            Strategy.MANUAL: "manual",
        }[strategy]
        assert metric(e, "orchestrator_zk_sync_conflicts_total", resolution=resolution) == 1
        if strategy is Strategy.MANUAL:
            assert f"{root}/x" in e.conflicts
            assert json.loads(state.read_text())["conflicts"][f"{root}/x"]["reason"]
            # a person settles it; the engine notices and forgets the conflict
            cb.set(f"{root}/x", b"a-edit")
            wait_until(lambda: f"{root}/x" not in e.conflicts, 30, "conflict resolved")
        else:
            assert not e.conflicts


def test_session_expiry_and_server_kills(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    ca, cb = clients
    root = unique_root()
    ca.create(f"{root}/x", b"0", makepath=True)
    origin = KazooClient(hosts=pair.a.connect_string)
    origin.start()
    origin.create(f"{root}/eph", b"e", ephemeral=True)
    with engine_for(pair, [root]) as engine:
        wait_in_sync(ca, cb, [root], timeout=30)
        old_session = engine.clients[Side.B].client_id
        # Expire the engine's target session (another client closes the same session):
        # its mirrors vanish; the engine must re-arm, re-diff and recreate them.
        thief = KazooClient(hosts=pair.b.connect_string, client_id=old_session)
        thief.start()
        thief.stop()
        thief.close()
        wait_until(
            lambda: (
                session_id(engine.clients[Side.B]) not in (None, old_session[0])
                and cb.exists(f"{root}/eph") is not None
            ),
            60,
            "new session and recreated mirror",
        )
        assert cb.exists(f"{root}/eph").ephemeralOwner == session_id(engine.clients[Side.B])
        ca.set(f"{root}/x", b"after-expiry")
        wait_until(lambda: cb.get(f"{root}/x")[0] == b"after-expiry", 60, "sync after expiry")
        # kill a server on each side, keep writing, bring them back
        pair.a.kill_server(pair.a.leader_index() or 0)
        pair.b.kill_server(0)
        with zk_client(pair.a.connect_string) as writer:
            for i in range(20):
                writer.create(f"{root}/during-{i}", b"k")
        pair.a.ensure_all_running()
        pair.b.ensure_all_running()
        wait_in_sync(ca, cb, [root], timeout=90)
        healthy, detail = engine.health()
        assert healthy, detail
    origin.stop()
    origin.close()


def test_metrics_and_healthz_endpoints(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    ca, _ = clients
    root = unique_root()
    ca.create(f"{root}/x", b"0", makepath=True)
    with engine_for(pair, [root]) as engine:
        server = BackgroundHealthServer(engine.metrics.registry, engine.health, 0, host="127.0.0.1")
        server.start()
        try:
            ca.set(f"{root}/x", b"1")
            assert engine.wait_idle(30)
            base = f"http://127.0.0.1:{server.port}"
            with urllib.request.urlopen(f"{base}/healthz") as resp:
                assert resp.status == 200
                assert json.loads(resp.read())["status"] == "ok"
            with urllib.request.urlopen(f"{base}/metrics") as resp:
                text = resp.read().decode()
            for name in (
                "orchestrator_zk_sync_replication_lag_seconds_bucket",
                "orchestrator_zk_sync_operations_total",
                "orchestrator_zk_sync_bytes_total",
                "orchestrator_zk_sync_errors_total",
                "orchestrator_zk_sync_last_full_reconcile_timestamp_seconds",
                'orchestrator_zk_sync_znodes{side="a"}',
            ):
                assert name in text
        finally:
            server.stop()
    report = verify_clients(ca, ca, [root])
    assert report.ok


NO_CREATE = [ACL(1 | 2 | 8 | 16, Id("world", "anyone"))]  # read, write, delete, admin


def test_bidirectional_child_under_parent_that_forbids_create(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient], tmp_path: Path
) -> None:
    """While the engine is down, B opens a closed parent's ACL and adds a child, A edits the
    parent: source-wins puts A's closed ACL on B's parent, and B's child must still reach A
    (under a parent whose ACL forbids CREATE there) instead of failing on every reconcile."""
    ca, cb = clients
    root = unique_root()
    ca.ensure_path(root)
    ca.create(f"{root}/p", b"p0", acl=NO_CREATE)
    state = tmp_path / "state.json"
    with engine_for(pair, [root], bidirectional=True, state_file=state):
        wait_in_sync(ca, cb, [root], timeout=30)
    cb.set_acls(f"{root}/p", [ACL(31, Id("world", "anyone"))])
    cb.create(f"{root}/p/x", b"from-b")
    ca.set(f"{root}/p", b"p1")
    with engine_for(pair, [root], bidirectional=True, state_file=state) as engine:
        wait_in_sync(ca, cb, [root], timeout=30)
        assert engine.wait_idle(30)
        assert ca.get(f"{root}/p/x")[0] == b"from-b"
        assert cb.get(f"{root}/p")[0] == b"p1"
        assert cb.get_acls(f"{root}/p")[0] == NO_CREATE
        assert ca.get_acls(f"{root}/p")[0] == NO_CREATE


class ParentDeletedAgain:
    """The target's client, except that another client deletes the parent again right after
    the writer made it (ensure_path) and before its create: a real race, on a real server."""

    def __init__(self, client: KazooClient, other: KazooClient) -> None:
        self._client, self._other = client, other

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def ensure_path(self, path: str) -> None:
        self._client.ensure_path(path)
        self._other.delete(path)


def test_a_copy_whose_parent_vanished_again_is_decided_again_at_once(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    """A copy whose parent is gone on the target (deleted meanwhile, and again after the
    writer re-made it) is handed back to the engine at once (`raced`: both sides re-read and
    re-decided now), not failed, which waited for the periodic reconcile (22 s seen; issue
    15, point 6)."""
    _, cb = clients
    root = unique_root()
    cb.create(root, makepath=True)
    child = f"{root}/gone/x"
    want = NodeState(path=child, data=b"x", acl=acl_from_kazoo(OPEN_ACL_UNSAFE))
    with zk_client(pair.b.connect_string) as other:
        racing = ParentDeletedAgain(cb, other)
        result = Applier(racing).apply([Put(child, want, None)])
    assert child in result.raced
    assert not result.failed and child not in result.written
    assert cb.exists(f"{root}/gone") is None


def test_an_acl_change_reaches_the_target_within_seconds(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    """ZooKeeper fires no watch for setACL: the engine sweeps the ACL versions (issue 15,
    point 5) instead of leaving the change to the full reconcile (120 s here)."""
    ca, cb = clients
    root = unique_root()
    for i in range(300):
        ca.create(f"{root}/n{i}", b"x", makepath=True)
    closed = [ACL(1 | 2 | 8 | 16, Id("world", "anyone"))]  # no CREATE
    with engine_for(pair, [root], reconcile_interval=120.0) as engine:
        assert engine.wait_idle(30)
        reconciles = engine.full_reconciles
        ca.set_acls(f"{root}/n150", closed)

        def replicated() -> bool:
            acl = acl_from_kazoo(cb.get_acls(f"{root}/n150")[0])
            return acl == acl_from_kazoo(closed)

        wait_until(replicated, 10, "the ACL change on the target")
        wait_until(lambda: Side.A in engine.acl_sweep, 10, "a complete sweep")
        assert engine.acl_sweep[Side.A] < 5
        assert metric(engine, "orchestrator_zk_sync_acl_sweep_seconds", side="a") > 0
        assert engine.health()[1]["acl_sweep_seconds"]["a"] < 5  # type: ignore[index]
        assert engine.full_reconciles == reconciles  # found by the sweep, not a reconcile
