"""The simulated agent's checkpoint and views, without a master or ZooKeeper (its tasks as
processes: tests/sim/test_agent_tasks.py)."""

from __future__ import annotations

import time
from pathlib import Path

from sim.agent import views
from sim.agent.checkpoint import Checkpoint
from sim.agent.server import AgentConfig, AgentProcess
from sim.tasks import KILLED, RUNNING, STAGING, Task
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


def test_an_agent_id_the_master_removed_is_forgotten_and_its_tasks_killed_at_once(
    tmp_path: Path,
) -> None:
    # The sim master answers 410 to a removed agent id; the agent kills its tasks without
    # grace (even one ignoring SIGTERM), wipes its checkpoint and registers afresh.
    from sim.agent.containers import alive

    agent = _agent(tmp_path)
    agent.agent_id = "S0"
    agent.launch(_task("stubborn", command="trap '' TERM; sleep 1000"))
    run = agent.runs[("fw", "stubborn")]
    assert alive(run)
    agent.forget()
    assert not alive(run)
    assert agent.agent_id is None and not agent.tasks
    assert [t.state for t in agent.completed] == [KILLED]
    assert _agent(tmp_path).agent_id is None
