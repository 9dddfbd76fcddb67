"""The operator's maintenance step against the simulator in a real ZooKeeper ensemble: a
master failover must not turn an unseen agent's machine DOWN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.operator.mesoscluster.maintenance import run_maintenance
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
