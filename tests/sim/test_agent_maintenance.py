"""Conformance: agents on machines in maintenance, and how a MachineID matches an agent.

Each test names the Mesos 1.11 source or doc it follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim import maintenance as mt
from sim.cluster import SimCluster
from sim.procs import SimProcess
from sim.tasks import KILLED, LOST, RUNNING
from testenv.zookeeper import ZkEnsemble
from tests.sim.agent_support import Framework, agent, agent_tasks, log_text, pids_in

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]


# --- matching: include/mesos/type_utils.hpp (operator== on MachineID), docs/maintenance.md


def test_a_machine_matches_an_agent_only_by_hostname_and_ip() -> None:
    # type_utils.hpp: MachineIDs are equal when hostname (lower-cased) and ip are equal,
    # each also in whether it is set; master.cpp builds an agent's MachineID from its
    # hostname and IP. docs/maintenance.md: "both the `hostname` and `ip` fields must match".
    full = mt.machine_key({"hostname": "Node-1", "ip": "10.0.0.1"})
    assert mt.matches(full, "node-1", "10.0.0.1")
    assert mt.matches(full, "NODE-1", "10.0.0.1")  # hostname case-insensitive
    assert not mt.matches(full, "node-1", "10.0.0.2")
    assert not mt.matches(full, "node-2", "10.0.0.1")
    # Only one of the two: accepted in a schedule, but it is another machine than any agent's.
    assert not mt.matches(mt.machine_key({"hostname": "node-1"}), "node-1", "10.0.0.1")
    assert not mt.matches(mt.machine_key({"ip": "10.0.0.1"}), "node-1", "10.0.0.1")


@pytest.mark.parametrize(
    ("machine", "message"),
    [
        ({}, "Both 'hostname' and 'ip' for a machine are empty"),
        ({"hostname": "", "ip": ""}, "Both 'hostname' and 'ip' for a machine are empty"),
        ({"hostname": "n", "ip": "10.0.0"}, "Failed to parse IP"),
        ({"ip": "node-1"}, "Failed to parse IP"),
    ],
)
def test_a_machine_id_is_validated(machine: dict[str, str], message: str) -> None:
    # src/master/maintenance.cpp validation::machine: at least one field, a well-formed IP.
    with pytest.raises(mt.MaintenanceError, match=message):
        mt.machine_key(machine)


# --- agents on DOWN machines: src/master/http.cpp (machineDown), src/master/master.cpp
# (registerSlave / reregisterSlave on a DOWN machine), src/slave/slave.cpp (Slave::shutdown),
# src/slave/main.cpp (exit status), docs/maintenance.md


@pytest.fixture
def cluster(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=0, marathons=0, base_dir=tmp_path
    ) as sim:
        yield sim


def _post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, json=body)


def _schedule(*machines: dict[str, str]) -> dict[str, Any]:
    unavailability = {"start": {"nanoseconds": 1}}
    return {"windows": [{"machine_ids": list(machines), "unavailability": unavailability}]}


def _running_task(cluster: SimCluster, url: str, fw: Framework, task_id: str) -> list[int]:
    fw.launch(task_id, "sleep 1000")
    cluster.wait_for(
        lambda: agent_tasks(url).get(task_id, {}).get("state") == RUNNING, what="task running"
    )
    sandbox = agent_tasks(url)[task_id]["directory"]
    cluster.wait_for(lambda: len(pids_in(sandbox)) >= 2, what="the task's processes")
    return pids_in(sandbox)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _master_task_states(cluster: SimCluster, task_id: str) -> list[str]:
    state = cluster.state()
    tasks = [t for f in state["frameworks"] for t in f["tasks"] + f["completed_tasks"]]
    return [t["state"] for t in tasks if t["id"] == task_id]


def _exits(cluster: SimCluster, proc: SimProcess) -> int | None:
    cluster.wait_for(lambda: not proc.running, 60, f"{proc.name} to exit")
    return proc.returncode


def test_an_agent_on_a_machine_taken_down_kills_its_tasks_and_exits_on_every_start(
    cluster: SimCluster,
) -> None:
    # http.cpp machineDown: each agent on the machine gets a ShutdownMessage ("Operator
    # initiated 'Machine DOWN'") and is removed (its tasks TASK_LOST); slave.cpp
    # Slave::shutdown logs "Agent asked to shut down by <master> because '<message>'", shuts
    # its frameworks down (the executors and their tasks are killed) and terminates;
    # main.cpp returns EXIT_SUCCESS. master.cpp (re)registerSlave: an agent on a DOWN machine
    # is refused with a ShutdownMessage "Machine is `DOWN`", so it exits again, every start.
    proc, url = agent(cluster, "node-a")
    proc.start()
    cluster.wait_for_agents(1)
    fw = Framework(cluster)
    pids = _running_task(cluster, url, fw, "t1")
    machine = {"hostname": "node-a", "ip": "127.0.0.1"}
    master = cluster.leader_url()
    assert _post(master + "/master/maintenance/schedule", _schedule(machine)).status_code == 200
    assert _post(master + "/master/machine/down", [machine]).status_code == 200

    assert _exits(cluster, proc) == 0
    text = log_text(proc)
    assert "Agent asked to shut down by" in text and "Machine DOWN" in text
    assert "Agent terminating" in text
    cluster.wait_for(lambda: not any(_alive(pid) for pid in pids), what="the task killed")
    assert _master_task_states(cluster, "t1") == [LOST]  # removed with its agent

    # Restarted (as its pod would be) while the machine is DOWN: shut down again.
    before = len(log_text(proc))
    proc.start()
    assert _exits(cluster, proc) == 0
    again = log_text(proc)[before:]
    assert "Agent asked to shut down by" in again and "Machine is `DOWN`" in again
    assert cluster.metrics()["master/slaves_active"] == 0.0

    # Up again: a restarted agent registers (and runs tasks) again.
    assert _post(master + "/master/machine/up", [machine]).status_code == 200
    proc.start()
    cluster.wait_for_agents(1)
    _running_task(cluster, url, fw, "t2")
    proc.stop()
    proc.kill_tasks()


def test_a_machine_id_without_the_ip_does_not_take_the_agent_down(cluster: SimCluster) -> None:
    # type_utils.hpp operator== / http.cpp machineDown (master->machines[id].slaves): the
    # agent's machine is {hostname, ip}; a MachineID with the hostname only is another one.
    proc, url = agent(cluster, "node-b")
    proc.start()
    try:
        cluster.wait_for_agents(1)
        fw = Framework(cluster)
        pids = _running_task(cluster, url, fw, "t1")
        master = cluster.leader_url()
        hostname_only = {"hostname": "NODE-B"}
        schedule = _schedule(hostname_only)
        assert _post(master + "/master/maintenance/schedule", schedule).status_code == 200
        status = httpx.get(master + "/master/maintenance/status").json()
        assert status.get("draining_machines", [])[0]["id"] == {"hostname": "node-b"}
        assert _post(master + "/master/machine/down", [hostname_only]).status_code == 200
        # The agent is not on that machine: it keeps running and keeps its task.
        fw.launch("probe", "true")  # a round trip through the master and the agent
        cluster.wait_for(lambda: "probe" in agent_tasks(url), what="the probe task")
        assert proc.running
        assert agent_tasks(url)["t1"]["state"] == RUNNING
        assert all(_alive(pid) for pid in pids)
        assert cluster.metrics()["master/slaves_active"] == 1.0
        fw.kill("t1")
        cluster.wait_for(lambda: agent_tasks(url)["t1"]["state"] == KILLED, what="t1 killed")
    finally:
        proc.stop()
        proc.kill_tasks()
