"""The operator's reads of a Mesos cluster against the simulator in a real ZooKeeper
ensemble: a leader that has not recovered its registry is not reported elected, and a master
failover must not turn an unseen agent's machine DOWN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.mesos.discovery import read_election, read_master_metrics
from orchestrator_operator.operator.mesoscluster.maintenance import run_maintenance
from orchestrator_operator.operator.mesoscluster.status import Observation, Replicas, build_status
from sim import masterinfo
from sim.cluster import SimCluster
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]


@pytest.fixture
def cluster(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    with SimCluster(
        zk_ensemble.connect_string, masters=3, agents=2, marathons=0, base_dir=tmp_path
    ) as sim:
        yield sim


def _leader_address(sim: SimCluster) -> str:
    info = sim.leader()
    assert info is not None
    ip, port = masterinfo.http_address(info)
    return f"{ip}:{port}"


def _hostnames(agents: list[dict[str, Any]]) -> set[str]:
    return {agent["hostname"] for agent in agents}


def test_a_failover_does_not_take_down_a_machine_whose_agent_has_not_re_registered(
    cluster: SimCluster,
) -> None:
    node = cluster.agent_hostname(0)
    report = run_maintenance(_leader_address(cluster), {node})
    assert report == [{"node": node, "state": "Draining", "tasks": 0}]

    # The agent is away (its pod restarting, say) while the leading master fails over: the
    # new leader knows it only from the registry, as a recovered agent (Mesos: src/master/
    # readonly_handler.cpp "recovered_slaves"; master.cpp `_reregisterSlave` shuts an agent
    # down that re-registers on a DOWN machine, killing the tasks the leader never saw).
    cluster.kill_agent(0)
    old = cluster.leader()
    assert old is not None
    leader_index = cluster.leader_index()
    assert leader_index is not None
    cluster.kill_master(leader_index)
    cluster.wait_for_leader(exclude=old["id"], timeout=60)
    state = cluster.state()
    assert node in _hostnames(state["recovered_slaves"])
    assert node not in _hostnames(state["slaves"])
    draining = cluster.get(cluster.leader_url() + "/master/maintenance/status")
    assert [m["id"]["hostname"] for m in draining["draining_machines"]] == [node]

    report = run_maintenance(_leader_address(cluster), {node})
    assert report == [{"node": node, "state": "Draining"}], "DOWN before the agent is back"
    status = cluster.get(cluster.leader_url() + "/master/maintenance/status")
    assert status.get("down_machines", []) == []

    # Re-registered with nothing running: now it goes down.
    cluster.start_agent(0)
    cluster.wait_for(
        lambda: node in _hostnames(cluster.state()["slaves"]), 60, "the agent re-registered"
    )
    report = run_maintenance(_leader_address(cluster), {node})
    assert report == [{"node": node, "state": "Down", "tasks": 0}]
    status = cluster.get(cluster.leader_url() + "/master/maintenance/status")
    assert [m["hostname"] for m in status["down_machines"]] == [node]


def _leader_elected(sim: SimCluster) -> tuple[str, str, Any]:
    """LeaderElected (status, reason) as the operator computes it from its own reads of
    ZooKeeper and the leader's /metrics/snapshot, and the status' `mesos` figures."""
    election = read_election(sim.zk, sim.mesos_path)
    health = read_master_metrics(election.leader.address) if election.leader else None
    observation = Observation(
        zookeeper_connect_string=sim.zk_hosts, zookeeper=None, zookeeper_error=None,
        zookeeper_servers=None, election=election, master_health=health,
        masters=Replicas(3, 3), quorum=2, agents=Replicas(0, 0), marathon=Replicas(0, 0),
    )  # fmt: skip
    before = {"agentsActive": 2, "frameworksActive": 0, "tasksRunning": 0}
    status = build_status(observation, 1, [], "2026-01-01T00:00:00Z", previous_mesos=before)
    leader = next(c for c in status["conditions"] if c["type"] == "LeaderElected")
    return leader["status"], leader["reason"], status["mesos"]


def test_a_leader_that_has_not_recovered_its_registry_is_not_elected_in_status(
    zk_ensemble: ZkEnsemble, tmp_path: Path
) -> None:
    # Mesos: master/elected is 1 from the ZooKeeper election on (src/master/master.hpp), the
    # registry is recovered through a quorum of log replicas (src/master/registrar.cpp,
    # src/log/coordinator.cpp), and meanwhile /master/state is 200 and empty (http.cpp).
    # Kill the leader and a follower: the last master is elected, its own replica is
    # caught up, but it cannot recover the registry without a second replica.
    sim = SimCluster(
        zk_ensemble.connect_string, masters=3, agents=2, marathons=0, base_dir=tmp_path,
        master_flags=["--registry_fetch_timeout=120secs"],
    )  # fmt: skip
    with sim:
        assert _leader_elected(sim)[:2] == ("True", "Elected")
        leader = sim.leader_index()
        assert leader is not None
        follower = next(i for i in range(3) if i != leader)
        survivor = next(i for i in range(3) if i not in (leader, follower))
        sim.kill_master(leader)
        sim.kill_master(follower)
        sim.wait_for(lambda: sim.leader_index() == survivor, 60, "the survivor elected")
        sim.wait_for(
            lambda: sim.get(sim.master_url(survivor) + "/metrics/snapshot")["master/elected"],
            30, "the survivor reporting master/elected 1",
        )  # fmt: skip
        state = sim.get(sim.master_url(survivor) + "/master/state")
        assert state["slaves"] == [], "a recovering leader serves its empty state"
        status, reason, mesos = _leader_elected(sim)
        assert (status, reason) == ("False", "Recovering")
        assert mesos == {"agentsActive": 2, "frameworksActive": 0, "tasksRunning": 0}

        sim.start_master(follower)
        sim.wait_for_leader(timeout=90)
        assert _leader_elected(sim)[:2] == ("True", "Elected")
