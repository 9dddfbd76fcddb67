"""The simulated agent's checkpoint and task lifecycle, without a master or ZooKeeper."""

from __future__ import annotations

import time
from pathlib import Path

from sim.agent import views
from sim.agent.checkpoint import Checkpoint
from sim.agent.server import AgentConfig, AgentProcess
from sim.tasks import FAILED, KILLED, RUNNING, STAGING, Task
from sim.zkurl import ZkUrl


def _agent(work_dir: Path, recover: str = "reconnect") -> AgentProcess:
    config = AgentConfig(
        zk=ZkUrl.parse("zk://127.0.0.1:1/mesos"),
        port=5051,
        work_dir=work_dir,
        hostname="a0",
        resources="cpus:2;mem:100",
        recover=recover,
    )
    return AgentProcess(config)


def _task(task_id: str, command: str = "sleep 1000") -> Task:
    task = Task(task_id, task_id, "fw", "S0", resources={"cpus": 1.0}, command=command)
    task.set_state(STAGING, time.time() - 10)
    return task


def test_checkpoint_round_trip_with_latest_link(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path)
    assert checkpoint.load() == (None, [])
    checkpoint.save("S0", [_task("t1")])
    assert (tmp_path / "meta" / "slaves" / "latest").resolve().name == "S0"
    agent_id, tasks = checkpoint.load()
    assert agent_id == "S0" and [t.task_id for t in tasks] == ["t1"]
    checkpoint.save("S1", [])
    assert checkpoint.load() == ("S1", [])
    checkpoint.wipe()
    assert checkpoint.load() == (None, [])


def test_tasks_progress_and_survive_a_restart_with_reconnect(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    agent.agent_id = "S0"
    agent.launch(_task("long"))
    agent.launch(_task("bad", command="exit 2"))
    agent.progress()
    assert {t.task_id: t.state for t in agent.tasks.values()} == {"long": RUNNING, "bad": RUNNING}
    agent.tasks[("fw", "bad")].statuses[-1]["timestamp"] -= 10
    agent.progress()
    assert agent.tasks[("fw", "bad")].state == FAILED
    agent.acknowledge(["bad"])
    assert list(agent.tasks) == [("fw", "long")]

    again = _agent(tmp_path)
    assert again.agent_id == "S0"
    assert [t.state for t in again.tasks.values()] == [RUNNING]
    again.kill("fw", "long")
    assert again.tasks[("fw", "long")].state == KILLED

    cleaned = _agent(tmp_path, recover="cleanup")
    assert cleaned.agent_id is None and not cleaned.tasks


def test_shutdown_kills_tasks_and_forgets_the_agent_id(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    agent.agent_id = "S0"
    agent.launch(_task("t"))
    agent.shutdown()
    assert agent.agent_id is None and not agent.tasks
    assert [t.state for t in agent.completed] == [KILLED]
    assert _agent(tmp_path).agent_id is None


def test_agent_views(tmp_path: Path) -> None:
    task = _task("t")
    task.set_state(RUNNING)
    state = views.state(
        agent_id="S0",
        ip="127.0.0.1",
        port=5051,
        hostname="a0",
        resources={"cpus": 2.0},
        master=None,
        start_time=1.0,
        flags={},
        tasks=[task],
        completed=[],
    )
    assert state["pid"] == "slave(1)@127.0.0.1:5051"
    assert state["frameworks"][0]["executors"][0]["tasks"][0]["state"] == RUNNING
    snap = views.metrics(
        registered=True, uptime=3.0, resources={"cpus": 2.0}, tasks=[task], completed=[]
    )
    assert snap["slave/registered"] == 1.0
    assert snap["slave/tasks_running"] == 1.0
    assert snap["slave/cpus_used"] == 1.0
    assert snap["slave/cpus_percent"] == 0.5
