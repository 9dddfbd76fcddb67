"""The real ZooKeeper ensemble fixture: it serves, keeps quorum and rejoins."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from testenv.zookeeper import ZkEnsemble
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = pytest.mark.zookeeper


@contextlib.contextmanager
def _client(hosts: str) -> Iterator[KazooClient]:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def test_three_server_ensemble_serves_writes(zk_ensemble: ZkEnsemble) -> None:
    assert len(zk_ensemble.servers) == 3
    assert zk_ensemble.connect_string.count(",") == 2
    assert sorted(s.myid for s in zk_ensemble.servers) == [1, 2, 3]
    for i in range(3):
        assert zk_ensemble.four_letter_word(i, "ruok") == "imok"
    states = sorted(str(zk_ensemble.server_state(i)) for i in range(3))
    assert states == ["follower", "follower", "leader"]
    leader = zk_ensemble.leader_index()
    assert leader is not None and zk_ensemble.server_state(leader) == "leader"

    base = f"/fixture-{uuid.uuid4().hex}"
    with _client(zk_ensemble.connect_string) as client:
        client.create(f"{base}/a/b", b"hello", makepath=True)
    # Every server sees the write (after a sync through that server).
    for server in zk_ensemble.servers:
        with _client(server.address) as client:
            client.sync(base)
            assert client.get(f"{base}/a/b")[0] == b"hello"


def test_killed_server_keeps_quorum_and_rejoins(zk_ensemble: ZkEnsemble) -> None:
    base = f"/fixture-{uuid.uuid4().hex}"
    leader = zk_ensemble.leader_index()
    assert leader is not None
    victim = (leader + 1) % 3  # a follower
    zk_ensemble.kill_server(victim)
    assert not zk_ensemble.servers[victim].running

    survivors = ",".join(s.address for s in zk_ensemble.servers if s.index != victim)
    with _client(survivors) as client:
        client.create(base, b"while-down", makepath=True)
        client.set(base, b"still-writable")

    zk_ensemble.start_server(victim)
    assert zk_ensemble.four_letter_word(victim, "ruok") == "imok"
    assert zk_ensemble.server_state(victim) in ("follower", "leader")
    with _client(zk_ensemble.servers[victim].address) as client:
        client.sync(base)
        assert client.get(base)[0] == b"still-writable"


def test_killed_leader_is_replaced(zk_ensemble: ZkEnsemble) -> None:
    leader = zk_ensemble.leader_index()
    assert leader is not None
    zk_ensemble.stop_server(leader)
    new_leader = zk_ensemble.wait_for_leader(timeout=60)
    assert new_leader != leader
    with _client(zk_ensemble.connect_string) as client:
        client.create(f"/fixture-{uuid.uuid4().hex}", b"x")
    zk_ensemble.start_server(leader)
    assert zk_ensemble.server_state(leader) == "follower"


def test_single_server_ensemble(zk_ensemble_factory: ZkEnsembleFactory) -> None:
    zk = zk_ensemble_factory(1)
    assert len(zk.servers) == 1
    assert zk.four_letter_word(0, "ruok") == "imok"
    assert zk.leader_index() == 0
    assert "zk_server_state" in zk.mntr(0)
    with _client(zk.connect_string) as client:
        client.create("/single", b"1")
        assert client.get("/single")[0] == b"1"
    pid = zk.servers[0].pid
    assert pid is not None
    zk.stop()
    assert not zk.servers[0].running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_invalid_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="size"):
        ZkEnsemble(2)
