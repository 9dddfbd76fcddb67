"""The simulator against a real 3-server ZooKeeper ensemble: election, failover, sessions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim import masterinfo
from sim.cluster import SimCluster
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]


@pytest.fixture
def cluster(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    with SimCluster(
        zk_ensemble.connect_string, masters=3, agents=2, marathons=1, base_dir=tmp_path
    ) as sim:
        yield sim


def _task_states(sim: SimCluster) -> dict[str, str]:
    return {t["id"]: t["state"] for t in sim.tasks()}


def test_lowest_json_info_leads_and_followers_redirect(cluster: SimCluster) -> None:
    children = cluster.zk.get_children(cluster.mesos_path)
    contenders = sorted(c for c in children if c.startswith("json.info_"))
    assert len(contenders) == 3
    assert len(cluster.zk.get_children(f"{cluster.mesos_path}/log_replicas")) == 3
    lowest, _ = cluster.zk.get(f"{cluster.mesos_path}/{contenders[0]}")
    leader = json.loads(lowest)
    assert leader["ip"] == masterinfo.ip_to_uint32("127.0.0.1")
    assert leader["pid"] == f"master@127.0.0.1:{leader['port']}"
    assert cluster.leader() == leader
    state = cluster.state()
    assert state["leader_info"] == leader
    assert state["leader"] == leader["pid"]
    assert state["elected_time"] >= state["start_time"]
    for i in range(3):
        snap = cluster.get(cluster.master_url(i) + "/metrics/snapshot")
        assert snap["master/elected"] == (1.0 if i == cluster.leader_index() else 0.0)
        with httpx.Client() as raw:
            redirect = raw.get(cluster.master_url(i) + "/master/redirect")
            assert redirect.status_code == 307
            assert redirect.headers["location"] == f"//127.0.0.1:{leader['port']}"
            if i != cluster.leader_index():
                follower = raw.get(cluster.master_url(i) + "/master/state")
                assert follower.status_code == 307
                assert follower.headers["location"].endswith("/master/state")
        assert httpx.get(cluster.master_url(i) + "/master/health").status_code == 200


def test_master_failover_keeps_tasks_running(cluster: SimCluster) -> None:
    marathon = cluster.marathon_url()
    app = {"id": "/web", "instances": 4, "cpus": 0.5, "mem": 64, "cmd": "sleep 1000"}
    assert httpx.post(marathon + "/v2/apps", json=app).status_code == 201
    cluster.wait_for_tasks("/web", 4)
    cluster.wait_for(lambda: len(cluster.tasks("TASK_RUNNING")) == 4, what="4 running at master")
    before = _task_states(cluster)
    framework_id = cluster.framework_id()
    spare = {"hostname": "spare-host", "ip": "10.0.0.9"}
    schedule = {
        "windows": [{"machine_ids": [spare], "unavailability": {"start": {"nanoseconds": 1}}}]
    }
    posted = httpx.post(cluster.leader_url() + "/master/maintenance/schedule", json=schedule)
    assert posted.status_code == 200
    old = cluster.leader()
    assert old is not None
    old_index = cluster.leader_index()
    assert old_index is not None

    agent_ids = [cluster.get(cluster.agent_url(j) + "/state")["id"] for j in range(2)]
    # Agent 1 is down while the master fails over: it is in the registry but must
    # re-register, and its tasks must not be given up meanwhile.
    cluster.kill_agent(1)
    cluster.kill_master(old_index)
    new = cluster.wait_for_leader(exclude=old["id"])
    assert new["id"] != old["id"]
    # Marathon 1.11 abdicates when its Mesos master changes (MarathonScheduler.disconnected
    # stops the driver): it exits 103 and is restarted, as its pod's container would be.
    cluster.wait_for(lambda: not cluster.marathons[0].running, what="Marathon to abdicate")
    assert cluster.marathons[0].returncode == 103
    cluster.start_marathon(0)
    cluster.wait_for(
        lambda: cluster.state()["frameworks"][0]["active"], what="Marathon re-registered"
    )
    cluster.wait_for_agents(1)
    state = cluster.state()
    assert [a["id"] for a in state["recovered_slaves"]] == [agent_ids[1]]
    deadline = time.monotonic() + 2.0  # several Marathon reconciliations against the new master
    while time.monotonic() < deadline:
        tasks = cluster.get(marathon + "/v2/apps/web/tasks")["tasks"]
        assert {t["id"] for t in tasks} == set(before)
        time.sleep(0.2)
    cluster.start_agent(1)
    cluster.wait_for_agents(2)
    cluster.wait_for(lambda: _task_states(cluster) == before, what="all tasks back, RUNNING")
    state = cluster.state()
    assert state["leader_info"]["id"] == new["id"]
    assert state["recovered_slaves"] == []
    assert [f["id"] for f in state["frameworks"]] == [framework_id]
    assert {a["id"] for a in state["slaves"]} == set(agent_ids)
    assert {t["id"] for t in cluster.wait_for_tasks("/web", 4)} == set(before)
    assert cluster.metrics()["master/tasks_running"] == 4.0
    assert cluster.metrics()["master/tasks_lost"] == 0.0
    # The maintenance schedule lives in the registry: the new leader has it.
    assert cluster.get(cluster.leader_url() + "/master/maintenance/schedule") == schedule

    # An agent crash and restart on the same work dir keeps its id and its tasks.
    agent_id = cluster.get(cluster.agent_url(0) + "/state")["id"]
    cluster.restart_agent(0)
    cluster.wait_for(
        lambda: cluster.get(cluster.agent_url(0) + "/metrics/snapshot")["slave/registered"],
        what="agent 0 re-registered",
    )
    assert cluster.get(cluster.agent_url(0) + "/state")["id"] == agent_id
    cluster.wait_for(lambda: _task_states(cluster) == before, what="tasks unchanged")
    assert len(cluster.wait_for_tasks("/web", 4)) == 4


def test_master_and_marathon_exit_when_zookeeper_is_lost(
    zk_ensemble: ZkEnsemble, tmp_path: Path
) -> None:
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=1, marathons=1, base_dir=tmp_path
    ) as sim:
        # Two of three servers down: no quorum, the survivor drops its clients.
        leader = zk_ensemble.leader_index()
        others = [i for i in range(3) if i != leader]
        zk_ensemble.kill_server(others[0])
        zk_ensemble.kill_server(leader if leader is not None else others[1])
        sim.wait_for(lambda: not sim.masters[0].running, timeout=60, what="the master to exit")
        assert sim.masters[0].returncode == 3
        assert "Timed out waiting to reconnect to ZooKeeper" in sim.masters[0].log_tail()
        sim.wait_for(lambda: not sim.marathons[0].running, timeout=30, what="Marathon to exit")
        # Marathon 1.11 RichCuratorFramework.ConnectionLostListener: any disconnection crashes
        # with CrashStrategy.ZookeeperConnectionLoss (101).
        assert sim.marathons[0].returncode == 101
        assert sim.agents[0].running  # agents keep running and wait for a master
