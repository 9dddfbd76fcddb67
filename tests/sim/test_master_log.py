"""Conformance: the registry on a replicated log with Mesos 1.11's quorum rules.

Sources (Mesos 1.11): src/log/recover.cpp (replica recovery, auto-initialization),
src/log/coordinator.cpp (promise and write phases), src/log/replica.cpp, src/log/log.cpp
(`registrar/log/recovered`), src/master/registrar.cpp (fetch/store timeouts,
`registrar/registry_size_bytes`), src/master/http.cpp and src/master/master.cpp (an elected
master before recovery), docs/replicated-log-internals.md, docs/high-availability.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from testenv.zookeeper import ZkEnsemble
from tests.sim.master_support import SCHEDULE, snapshot, wait_for_voting

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(300)]


def _log(sim: SimCluster, i: int) -> dict[str, Any]:
    view: dict[str, Any] = sim.get(sim.master_url(i) + "/sim/v1/log")
    return view


def _recovered(sim: SimCluster, i: int) -> bool:
    return "registrar/registry_size_bytes" in snapshot(sim, i)


@pytest.fixture
def fresh(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    sim = SimCluster(
        zk_ensemble.connect_string,
        masters=3,
        agents=0,
        marathons=0,
        base_dir=tmp_path,
        master_flags=["--registry_fetch_timeout=120secs", "--registry_store_timeout=5secs"],
    )
    try:
        yield sim
    finally:
        sim.stop()


def test_first_start_needs_all_replicas_and_an_unrecovered_leader_serves_empty_state(
    fresh: SimCluster,
) -> None:
    # src/log/recover.cpp: a fresh log auto-initializes only when ALL 2*quorum-1 replicas
    # answer EMPTY (then STARTING, then VOTING); with 2 of 3 it stays EMPTY.
    # src/master/http.cpp state(): an elected master answers from its in-memory state before
    # the registrar recovered; master/elected is 1 from the ZooKeeper election on.
    fresh.start(masters=[0, 1])
    fresh.wait_for(lambda: fresh.leader_index() is not None, what="a leader in ZooKeeper")
    leader = fresh.leader_index()
    assert leader is not None
    fresh.wait_for(lambda: snapshot(fresh, leader)["master/elected"] == 1.0, what="elected")
    fresh.wait_for(
        lambda: _log(fresh, leader)["replicas"] and len(_log(fresh, leader)["replicas"]) == 2,
        what="two log replicas seen",
    )
    for _ in range(5):  # several recover rounds: nothing moves without the third replica
        snap = snapshot(fresh, leader)
        assert snap["master/elected"] == 1.0
        assert snap["registrar/log/recovered"] == 0.0
        assert "registrar/registry_size_bytes" not in snap
        assert {_log(fresh, i)["replica"]["status"] for i in (0, 1)} == {"EMPTY"}
        state = httpx.get(fresh.master_url(leader) + "/master/state")
        assert state.status_code == 200
        assert state.json()["slaves"] == [] and state.json()["frameworks"] == []
        assert state.json()["recovered_slaves"] == []
        down = httpx.post(fresh.master_url(leader) + "/master/maintenance/schedule", json={})
        assert down.status_code == 503
    fresh.start_master(2)
    fresh.wait_for(lambda: _recovered(fresh, leader), timeout=60, what="registry recovered")
    fresh.wait_for(
        lambda: {_log(fresh, i)["replica"]["status"] for i in range(3)} == {"VOTING"},
        what="all three replicas VOTING",
    )
    assert all(snapshot(fresh, i)["registrar/log/recovered"] == 1.0 for i in range(3))


def test_recovery_without_a_quorum_exits_after_the_fetch_timeout(
    zk_ensemble: ZkEnsemble, tmp_path: Path
) -> None:
    # src/master/registrar.cpp recover(): the fetch fails after --registry_fetch_timeout
    # and src/master/master.cpp exits "Recovery failed: Failed to recover registrar".
    sim = SimCluster(
        zk_ensemble.connect_string,
        masters=3,
        agents=0,
        marathons=0,
        base_dir=tmp_path,
        master_flags=["--registry_fetch_timeout=3secs"],
    )
    try:
        sim.start(masters=[0])
        sim.wait_for(lambda: not sim.masters[0].running, timeout=60, what="master 0 to exit")
        assert sim.masters[0].returncode == 1
        assert "Recovery failed: Failed to recover registrar" in sim.masters[0].log_tail()
    finally:
        sim.stop()


def test_a_write_needs_a_quorum_of_replicas(fresh: SimCluster) -> None:
    # src/log/coordinator.cpp: a write is committed once a quorum accepted it;
    # src/master/registrar.cpp: a store outlasting --registry_store_timeout aborts the master.
    fresh.start()
    fresh.wait_for_leader()
    leader = fresh.leader_index()
    assert leader is not None
    url = fresh.master_url(leader)
    followers = [i for i in range(3) if i != leader]
    wait_for_voting(fresh, [0, 1, 2])
    fresh.pause_master(followers[0])  # one follower away: 2 of 3 still accept
    schedule = httpx.post(url + "/master/maintenance/schedule", json=SCHEDULE, timeout=30)
    assert schedule.status_code == 200
    commit = _log(fresh, leader)["commits"][-1]
    assert len(commit["acceptors"]) >= 2
    assert fresh.master_url(followers[0]).removeprefix("http://") not in commit["acceptors"]
    fresh.pause_master(followers[1])  # both away: no quorum, the store times out
    with pytest.raises(httpx.HTTPError):
        httpx.post(url + "/master/maintenance/schedule", json={"windows": []}, timeout=30)
    fresh.wait_for(lambda: not fresh.masters[leader].running, timeout=30, what="leader exit")
    assert fresh.masters[leader].returncode == 1
    assert "Failed to update registry" in fresh.masters[leader].log_tail()


def test_a_replica_survives_a_restart_and_an_empty_one_catches_up(fresh: SimCluster) -> None:
    # docs/replicated-log-internals.md: a replica with persisted state is VOTING at once; one
    # whose work dir is new is EMPTY and catches up from a quorum of VOTING replicas
    # (RECOVERING) before it votes (src/log/recover.cpp, src/log/catchup.cpp).
    fresh.start()
    fresh.wait_for_leader()
    wait_for_voting(fresh, [0, 1, 2])
    leader = fresh.leader_index()
    assert leader is not None
    url = fresh.master_url(leader)
    schedule = httpx.post(url + "/master/maintenance/schedule", json=SCHEDULE, timeout=30)
    assert schedule.status_code == 200
    position = _log(fresh, leader)["replica"]["position"]
    follower = next(i for i in range(3) if i != leader)
    fresh.kill_master(follower)
    fresh.start_master(follower)
    fresh.wait_for(lambda: snapshot(fresh, follower)["registrar/log/recovered"] == 1.0)
    assert _log(fresh, follower)["replica"]["position"] >= position
    fresh.kill_master(follower)
    shutil.rmtree(fresh.base_dir / f"master-{follower}")
    fresh.start_master(follower)
    fresh.wait_for(lambda: _log(fresh, follower)["replica"]["status"] == "VOTING")
    caught_up = _log(fresh, follower)["replica"]
    assert caught_up["position"] >= position
    assert "RECOVERING" in fresh.masters[follower].log_tail()
    # The new leader, after a failover, has the schedule written before.
    fresh.kill_master(leader)
    fresh.wait_for(
        lambda: (
            fresh.leader_index() not in (None, leader)
            and _recovered(fresh, fresh.leader_index() or 0)
        ),
        timeout=60,
        what="a new recovered leader",
    )
    assert fresh.get(fresh.leader_url() + "/master/maintenance/schedule") == SCHEDULE
    assert fresh.lost_committed_writes() == []
