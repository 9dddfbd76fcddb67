"""Conformance: quorums that need not intersect lose committed registry writes.

Mesos lets any replica join a log whose quorum is VOTING (src/log/recover.cpp, example 1:
"we should avoid adding a new replica unless we know that one replica has been removed")
and never checks that `--quorum` is a majority of the replicas (docs/high-availability.md,
docs/replicated-log-internals.md: the quorum size is fixed, there is no reconfiguration).
With 3 + 3 masters and quorum 2, a write accepted by one half is unknown to the other, whose
new leader recovers without it. The sim behaves the same, and on top reports the unsafe
membership (`sim/log/quorum_intersection_unsafe`) and audits what each leader committed and
recovered (sim/logaudit.py), so that a migration that grows the master set unsafely fails a
test.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sim.cluster import SimCluster
from sim.logaudit import LogAuditor
from testenv.zookeeper import ZkEnsemble
from tests.sim.master_support import SCHEDULE, snapshot, wait_for_voting

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(300)]


def _recovered_leader(sim: SimCluster, among: list[int]) -> int | None:
    index = sim.leader_index()
    if index is None or index not in among:
        return None
    return index if "registrar/registry_size_bytes" in snapshot(sim, index) else None


def _first_half(sim: SimCluster) -> int:
    sim.start(masters=[0, 1, 2])
    sim.wait_for(lambda: _recovered_leader(sim, [0, 1, 2]) is not None, timeout=60)
    leader = _recovered_leader(sim, [0, 1, 2])
    assert leader is not None
    wait_for_voting(sim, [0, 1, 2])
    return leader


def test_three_plus_three_masters_with_quorum_two_lose_a_committed_write(
    zk_ensemble: ZkEnsemble, tmp_path: Path
) -> None:
    sim = SimCluster(
        zk_ensemble.connect_string,
        masters=6,
        quorum=2,
        agents=0,
        marathons=0,
        base_dir=tmp_path,
        master_flags=["--registry_store_timeout=10secs"],
    )
    auditor = LogAuditor()
    try:
        leader = _first_half(sim)
        for i in (3, 4, 5):
            sim.start_master(i)
        sim.wait_for(
            lambda: all(
                snapshot(sim, i)["registrar/log/recovered"] == 1.0
                and snapshot(sim, i)["registrar/log/ensemble_size"] == 6.0
                for i in range(6)
            ),
            timeout=60,
            what="the second half caught up (VOTING), 6 replicas seen by all",
        )
        # Every master sees 6 replicas with quorum 2 and says so.
        for i in range(6):
            snap = snapshot(sim, i)
            assert snap["registrar/log/ensemble_size"] == 6.0
            assert snap["sim/log/quorum_intersection_unsafe"] == 1.0
            assert snap["sim/log/quorum_intersection_unsafe_seen"] >= 1.0
        assert "need not intersect" in sim.masters[leader].log_tail()

        # The second half is away (crashed; its replicas stay on disk) while the first
        # half commits a write; then the first half is lost and the second comes back.
        # (SIGSTOP would not do: a paused master still finds the leader's write requests in
        # its sockets when it resumes, as a Mesos master would find the messages.)
        for i in (3, 4, 5):
            sim.kill_master(i)
        url = sim.master_url(leader)
        assert (
            httpx.post(url + "/master/maintenance/schedule", json=SCHEDULE, timeout=30).status_code
            == 200
        )
        auditor.sample(sim.master_urls())
        for i in (0, 1, 2):
            sim.kill_master(i)
        for i in (3, 4, 5):
            sim.start_master(i)
        sim.wait_for(
            lambda: _recovered_leader(sim, [3, 4, 5]) is not None,
            timeout=60,
            what="a leader of the second half",
        )
        auditor.sample(sim.master_urls())
        new_leader = sim.leader_url()
        # The second half recovered from its own quorum: the schedule is gone.
        assert sim.get(new_leader + "/master/maintenance/schedule") != SCHEDULE
        lost = auditor.lost_committed_writes()
        assert lost, "the checker must report the write the new leader does not have"
        assert all(set(w.acceptors).isdisjoint(w.recovered_from) for w in lost)
        assert auditor.unsafe_seen
    finally:
        sim.stop()


def test_at_most_three_replicas_with_quorum_two_lose_nothing(
    zk_ensemble: ZkEnsemble, tmp_path: Path
) -> None:
    # The same moves with one-for-one replacement: never more than 2*quorum-1 replicas.
    # The surviving replica cannot form a quorum with an EMPTY newcomer (recover.cpp,
    # example 3/4: it stays EMPTY), so there is no leader rather than a lost write.
    sim = SimCluster(
        zk_ensemble.connect_string,
        masters=4,
        quorum=2,
        agents=0,
        marathons=0,
        base_dir=tmp_path,
        master_flags=["--registry_fetch_timeout=30secs"],
    )
    auditor = LogAuditor()
    try:
        leader = _first_half(sim)
        stopped = next(i for i in (0, 1, 2) if i != leader)
        sim.kill_master(stopped)
        url = sim.master_url(leader)
        assert (
            httpx.post(url + "/master/maintenance/schedule", json=SCHEDULE, timeout=30).status_code
            == 200
        )
        auditor.sample(sim.master_urls())
        for i in (0, 1, 2):
            if i != stopped:
                sim.kill_master(i)
        sim.start_master(stopped)  # its replica (VOTING, without the write) on disk
        sim.wait_for(
            lambda: sim.leader_index() == stopped and snapshot(sim, stopped)["master/elected"] == 1,
            timeout=60,
            what="the surviving master elected in ZooKeeper",
        )
        sim.start_master(3)  # the replacement, with a new (empty) work dir
        sim.wait_for(
            lambda: sim.get(sim.master_url(3) + "/sim/v1/log")["replica"]["status"] == "EMPTY",
            what="the replacement serving, EMPTY",
        )
        for _ in range(10):
            auditor.sample(sim.master_urls())
            snap = snapshot(sim, stopped)
            assert snap["registrar/log/ensemble_size"] <= 3.0
            assert snap["sim/log/quorum_intersection_unsafe"] == 0.0
            assert "registrar/registry_size_bytes" not in snap  # elected, never recovered
            assert sim.get(sim.master_url(3) + "/sim/v1/log")["replica"]["status"] == "EMPTY"
        assert auditor.max_leaders_at_once <= 1
        assert auditor.lost_committed_writes() == []
        assert not auditor.unsafe_seen
    finally:
        sim.stop()
