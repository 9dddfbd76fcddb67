"""Simulated Marathon against a real ZooKeeper: apps, HA failover, maintenance draining."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from sim.marathon import layout
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]


@pytest.fixture
def cluster(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=2, marathons=2, base_dir=tmp_path
    ) as sim:
        yield sim


def _post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, json=body, timeout=10)


def test_app_tasks_survive_a_marathon_leader_failover(cluster: SimCluster) -> None:
    leader = cluster.marathon_index()
    assert leader is not None
    follower = 1 - leader
    # A follower proxies to the leader.
    created = _post(
        cluster.marathon_instance_url(follower) + "/v2/apps",
        {"id": "/prod/api", "instances": 3, "cpus": 0.5, "mem": 64, "cmd": "sleep 1000"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["deployments"]
    tasks = cluster.wait_for_tasks("/prod/api", 3)
    cluster.wait_for(lambda: cluster.get(cluster.marathon_url() + "/v2/deployments") == [])
    info = cluster.get(cluster.marathon_url() + "/v2/info")
    framework_id = info["frameworkId"]
    assert info["zookeeper_config"]["zk"] == cluster.marathon_zk
    assert info["marathon_config"]["master"] == cluster.mesos_zk
    assert cluster.framework_id() == framework_id
    raw_id = cluster.zk.get(f"{cluster.marathon_path}/state/framework-id/{layout.bucket('id')}/id")[
        0
    ]
    assert (
        _post(cluster.marathon_url() + "/v2/apps", {"id": "/prod/api", "cmd": "x"}).status_code
        == 409
    )
    invalid = _post(cluster.marathon_url() + "/v2/apps", {"id": "/Bad_Id", "cmd": "x"})
    assert invalid.status_code == 422
    assert _post(cluster.marathon_url() + "/v2/apps", {"id": "/nocmd"}).status_code == 422
    state_dirs = set(cluster.zk.get_children(f"{cluster.marathon_path}/state"))
    assert {"apps", "group", "instance", "deployment", "framework-id"} <= state_dirs

    cluster.kill_marathon(leader)
    cluster.wait_for(lambda: cluster.marathon_index() == follower, what="the follower to lead")
    cluster.wait_for_marathon()
    info = cluster.get(cluster.marathon_url() + "/v2/info")
    assert info["frameworkId"] == framework_id
    assert info["leader"] == f"127.0.0.1:{cluster.marathon_ports[follower]}"
    assert (
        cluster.zk.get(f"{cluster.marathon_path}/state/framework-id/{layout.bucket('id')}/id")[0]
        == raw_id
    )
    after = cluster.wait_for_tasks("/prod/api", 3)
    assert {t["id"] for t in after} == {t["id"] for t in tasks}
    state = cluster.state()
    assert [f["id"] for f in state["frameworks"]] == [framework_id]

    # Scale by PUT, then delete.
    scaled = httpx.put(cluster.marathon_url() + "/v2/apps/prod/api", json={"instances": 1})
    assert scaled.status_code == 200 and scaled.json()["deploymentId"]
    cluster.wait_for_tasks("/prod/api", 1)
    assert len(cluster.get(cluster.marathon_url() + "/v2/tasks")["tasks"]) == 1
    assert httpx.delete(cluster.marathon_url() + "/v2/apps/prod/api").status_code == 200
    cluster.wait_for(lambda: not cluster.tasks(), what="all tasks killed")
    assert httpx.get(cluster.marathon_url() + "/v2/apps/prod/api").status_code == 404


def _status(sim: SimCluster) -> dict[str, Any]:
    status: dict[str, Any] = sim.get(sim.leader_url() + "/master/maintenance/status")
    return status


def _window(*machines: dict[str, str]) -> dict[str, Any]:
    unavailability = {"start": {"nanoseconds": 1}, "duration": {"nanoseconds": 3600 * 10**9}}
    return {"windows": [{"machine_ids": list(machines), "unavailability": unavailability}]}


def test_maintenance_drains_an_agent_before_it_goes_down(cluster: SimCluster) -> None:
    master = cluster.leader_url()
    app = {"id": "/svc", "instances": 2, "cpus": 1, "mem": 64, "cmd": "sleep 1000"}
    assert _post(cluster.marathon_url() + "/v2/apps", app).status_code == 201
    tasks = cluster.wait_for_tasks("/svc", 2)
    agent_ids = [cluster.get(cluster.agent_url(j) + "/state")["id"] for j in range(2)]
    assert {t["slaveId"] for t in tasks} == set(agent_ids)  # spread over both agents

    m0, m1 = cluster.agent_machine(0), cluster.agent_machine(1)
    with httpx.Client() as raw:
        assert raw.post(master + "/master/machine/down", json=[m0]).status_code == 400
        assert (
            raw.post(master + "/master/maintenance/schedule", json=_window(m0)).status_code == 200
        )
    assert cluster.get(master + "/master/maintenance/schedule") == _window(m0)

    def drained() -> bool:
        machines = _status(cluster)["draining_machines"]
        return bool(machines[0]["tasks"] == [] and machines[0]["id"] == m0)

    cluster.wait_for(drained, what="Marathon to move its task off the draining agent")
    tasks = cluster.wait_for_tasks("/svc", 2)
    assert {t["slaveId"] for t in tasks} == {agent_ids[1]}
    assert _post(master + "/master/machine/down", [m0]).status_code == 200
    status = _status(cluster)
    assert status["down_machines"] == [m0] and status["draining_machines"] == []
    cluster.wait_for(lambda: cluster.metrics()["master/slaves_active"] == 1.0)
    assert cluster.metrics()["master/tasks_lost"] == 0.0  # drained first: nothing lost
    assert cluster.get(cluster.agent_url(0) + "/metrics/snapshot")["slave/registered"] == 0.0

    # Not drained: agent 1 is the only place left, so its tasks go TASK_LOST when it goes down.
    assert _post(master + "/master/maintenance/schedule", _window(m0, m1)).status_code == 200
    assert _post(master + "/master/machine/down", [m1]).status_code == 200
    cluster.wait_for(lambda: cluster.metrics()["master/tasks_lost"] == 2.0, what="2 tasks lost")
    cluster.wait_for(
        lambda: cluster.zk.get_children(f"{cluster.marathon_path}/state/taskFailures"),
        what="Marathon to record the task failure",
    )

    # Both machines up again: the agents (which exited when shut down, as Mesos agents do,
    # and are restarted as their pods would be) register afresh; Marathon restores the app.
    assert _post(master + "/master/machine/up", [m0, m1]).status_code == 200
    assert cluster.get(master + "/master/maintenance/schedule") == {"windows": []}
    for j in range(2):
        cluster.wait_for(lambda j=j: not cluster.agents[j].running, what=f"agent {j} to exit")
        cluster.start_agent(j)
    cluster.wait_for_agents(2)
    cluster.wait_for_tasks("/svc", 2)
