"""Conformance: the agent runs a task as a real process, and its state follows the process.

The agent here runs in-process without a master (its launch, kill and polling are what the
master's calls drive); its tasks are real `sh -c` processes on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.agent.containers import MIN_MEMORY, alive, proc_start_time
from sim.agent.server import AgentConfig, AgentProcess
from sim.procs import kill_agent_tasks, wait_until
from sim.tasks import FAILED, FINISHED, KILLED, KILLING, RUNNING, STAGING, Task
from sim.zkurl import ZkUrl

CGROUPS = Path("/sys/fs/cgroup")


def _agent(work_dir: Path, **kwargs: object) -> AgentProcess:
    config = AgentConfig(
        zk=ZkUrl.parse("zk://127.0.0.1:1/mesos"),
        port=5051,
        work_dir=work_dir,
        hostname="a0",
        resources="cpus:2;mem:1024",
        **kwargs,  # type: ignore[arg-type]
    )
    agent = AgentProcess(config)
    agent.agent_id = agent.agent_id or "S0"
    agent.setup()
    return agent


def _task(task_id: str, command: str, cpus: float = 0.5, mem: float = 64) -> Task:
    task = Task(task_id, task_id, "fw", "S0", resources={"cpus": cpus, "mem": mem}, command=command)
    task.set_state(STAGING)
    return task


def _settle(agent: AgentProcess, task_id: str, states: set[str], timeout: float = 20.0) -> Task:
    def reached() -> bool:
        agent.progress()
        return agent.tasks[("fw", task_id)].state in states

    wait_until(reached, timeout, f"task {task_id} in {states}")
    return agent.tasks[("fw", task_id)]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _pids_of(sandbox: str) -> list[int]:
    """Processes whose working directory is the sandbox (the command and its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == sandbox and proc_start_time(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def work_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    kill_agent_tasks(tmp_path)  # the test's tasks never outlive it


def test_a_command_task_is_a_process_and_its_exit_decides_its_state(work_dir: Path) -> None:
    # src/launcher/executor.cpp (the command executor): `sh -c <cmd>` in the sandbox; exit 0
    # is TASK_FINISHED, any other exit or a signal TASK_FAILED, with the message
    # "Command exited with status N" / "Command terminated with signal <name>".
    agent = _agent(work_dir)
    agent.launch(_task("long", "echo started; sleep 1000"))
    agent.launch(_task("ok", "true"))
    agent.launch(_task("bad", "exit 3"))
    agent.launch(_task("crash", "kill -KILL $$"))
    agent.launch(_task("missing", "no-such-command-here"))

    long = agent.tasks[("fw", "long")]
    assert long.state == RUNNING
    run = agent.runs[("fw", "long")]
    assert alive(run)
    wait_until(lambda: "sleep 1000" in " ".join(_cmdline(p) for p in _pids_of(run.sandbox)),
               10, "the task's sleep process")  # fmt: skip
    wait_until(lambda: (Path(run.sandbox) / "stdout").read_text() == "started\n", 10, "stdout")
    assert "/frameworks/fw/executors/long/runs/" in run.sandbox

    assert _settle(agent, "ok", {FINISHED}).message == "Command exited with status 0"
    assert _settle(agent, "bad", {FAILED}).message == "Command exited with status 3"
    assert _settle(agent, "crash", {FAILED}).message == "Command terminated with signal Killed"
    assert _settle(agent, "missing", {FAILED}).message == "Command exited with status 127"
    agent.progress()
    assert agent.tasks[("fw", "long")].state == RUNNING


def test_a_killed_task_is_killed_and_escalates_to_sigkill(work_dir: Path) -> None:
    # src/launcher/executor.cpp: a kill sends SIGTERM, escalates to SIGKILL after the kill
    # policy's grace period (3 s by default), and the task ends TASK_KILLED.
    agent = _agent(work_dir)
    agent.launch(_task("polite", "sleep 1000"))
    agent.launch(_task("stubborn", "trap '' TERM; sleep 1000"))
    polite_run = agent.runs[("fw", "polite")]
    stubborn_run = agent.runs[("fw", "stubborn")]
    stubborn_box = stubborn_run.sandbox
    wait_until(lambda: len(_pids_of(stubborn_box)) >= 2, 10, "the stubborn task's processes")
    agent.kill("fw", "polite")
    agent.kill("fw", "stubborn")
    assert agent.tasks[("fw", "polite")].state == KILLING
    polite = _settle(agent, "polite", {KILLED})
    assert polite.message == "Command terminated with signal Terminated"
    assert not alive(polite_run)
    stubborn = _settle(agent, "stubborn", {KILLED})
    assert stubborn.message == "Command terminated with signal Killed"
    assert _pids_of(stubborn_box) == []


def test_tasks_outlive_an_agent_restart_with_reconnect(work_dir: Path) -> None:
    # docs/agent-recovery.md: with --recover=reconnect a restarted agent recovers its
    # checkpointed tasks, which kept running; src/launcher/executor.cpp decides their end.
    agent = _agent(work_dir)
    agent.launch(_task("long", "sleep 1000"))
    agent.launch(_task("short", "sleep 2; exit 4"))
    pid = agent.runs[("fw", "long")].pid
    del agent  # the agent process is gone; its tasks are not

    again = _agent(work_dir)
    assert again.agent_id == "S0"
    assert again.runs[("fw", "long")].pid == pid
    again.progress()
    assert again.tasks[("fw", "long")].state == RUNNING
    # The restarted agent is not the parent, yet learns how a task ended.
    assert _settle(again, "short", {FAILED}).message == "Command exited with status 4"
    again.kill("fw", "long")
    assert _settle(again, "long", {KILLED}).state == KILLED
    assert proc_start_time(pid) is None


def test_recover_cleanup_kills_the_tasks_and_exits(work_dir: Path) -> None:
    # src/slave/flags.cpp `--recover`: "cleanup: Kill any old live executors and exit";
    # src/slave/slave.cpp `Slave::__recover` terminates the agent in cleanup mode.
    import asyncio

    agent = _agent(work_dir)
    agent.launch(_task("long", "sleep 1000"))
    run = agent.runs[("fw", "long")]
    cleaner = _agent(work_dir, recover="cleanup")
    with pytest.raises(SystemExit) as exited:
        asyncio.run(cleaner.run())
    assert exited.value.code == 0
    assert not alive(run) and _pids_of(run.sandbox) == []
    assert _agent(work_dir).tasks == {}


def _procs(cgroup: Path) -> list[int]:
    return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]


def _v1_writable() -> str:
    for subsystem, marker in (("cpu", "cpu.shares"), ("memory", "memory.limit_in_bytes")):
        if not (CGROUPS / subsystem / marker).exists():
            return f"{CGROUPS / subsystem} is not a cgroup v1 hierarchy"
        if not os.access(CGROUPS / subsystem, os.W_OK):
            return f"{CGROUPS / subsystem} is not writable"
    return ""


def test_cgroups_isolation_puts_the_task_under_its_cpu_and_memory_limits(
    work_dir: Path,
) -> None:
    # src/slave/containerizer/mesos/isolators/cgroups/ (constants.hpp, subsystems/cpu.cpp,
    # subsystems/memory.cpp): <hierarchy>/<subsystem>/<cgroups_root>/<container id>,
    # cpu.shares = 1024 x cpus, cfs quota with --cgroups_enable_cfs, memory limit = max(mem,
    # 32 MB). Mesos 1.11 supports cgroups v1 only. This machine must offer it: the test fails
    # (never skips) where it does not, with the reason.
    reason = _v1_writable()
    assert not reason, f"cgroups v1 cpu/memory needed for this test: {reason}"
    root = f"sim-test-{os.getpid()}"
    agent = _agent(
        work_dir,
        isolation="cgroups/cpu,cgroups/mem",
        cgroups_root=root,
        cgroups_enable_cfs=True,
    )
    try:
        agent.launch(_task("small", "sleep 1000", cpus=0.5, mem=64))
        agent.launch(_task("tiny", "sleep 1000", cpus=0.01, mem=1))
        agent.launch(_task("hog", "a=x; while :; do a=$a$a; done", cpus=0.1, mem=40))
        small = agent.runs[("fw", "small")]
        cpu = CGROUPS / "cpu" / root / small.container_id
        mem = CGROUPS / "memory" / root / small.container_id
        assert (cpu / "cpu.shares").read_text().strip() == "512"
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert int((mem / "memory.limit_in_bytes").read_text()) == 64 * 1024 * 1024
        # The task's process enters its cgroups before it runs the command.
        wait_until(lambda: small.pid in _procs(cpu) and small.pid in _procs(mem), 10, "cgroups")
        tiny = agent.runs[("fw", "tiny")]
        tiny_mem = CGROUPS / "memory" / root / tiny.container_id / "memory.limit_in_bytes"
        assert int(tiny_mem.read_text()) == MIN_MEMORY
        # Over its memory limit, the kernel kills the command: TASK_FAILED.
        hog = _settle(agent, "hog", {FAILED}, timeout=60)
        assert hog.message == "Command terminated with signal Killed"
        agent.kill("fw", "small")
        _settle(agent, "small", {KILLED})
        assert not cpu.exists() and not mem.exists()  # destroyed with the container
    finally:
        kill_agent_tasks(work_dir)
        for subsystem in ("cpu", "memory"):
            path = CGROUPS / subsystem / root
            for child in path.glob("*-*"):
                child.rmdir()
            path.rmdir()


def test_an_agent_whose_cgroups_cannot_serve_its_isolation_fails_to_start(
    tmp_path: Path,
) -> None:
    # src/slave/containerizer/mesos/isolators/cgroups/cgroups.cpp: the isolator prepares
    # each subsystem's hierarchy; a failure fails the containerizer's creation and
    # src/slave/main.cpp exits ("Failed to create a containerizer"). Mesos 1.11 needs v1.
    import asyncio

    from sim.agent.containers import ContainerizerError

    fake = tmp_path / "cgroup2-only"
    fake.mkdir()
    (fake / "cgroup.controllers").write_text("cpu memory\n")
    config = AgentConfig(
        zk=ZkUrl.parse("zk://127.0.0.1:1/mesos"),
        port=5051,
        work_dir=tmp_path / "work",
        isolation="cgroups/cpu,cgroups/mem",
        cgroups_hierarchy=fake,
    )
    agent = AgentProcess(config)
    with pytest.raises(ContainerizerError, match="cgroups v1"):
        agent.setup()
    with pytest.raises(SystemExit) as exited:
        asyncio.run(agent.run())
    assert exited.value.code == 1


def test_processes_do_not_leak_past_kill_agent_tasks(tmp_path: Path) -> None:
    # Test hygiene (no Mesos source): what SimCluster's cleanup relies on.
    agent = _agent(tmp_path)
    agent.launch(_task("bg", "sleep 1000 & sleep 1000"))
    run = agent.runs[("fw", "bg")]
    wait_until(lambda: len(_pids_of(run.sandbox)) >= 3, 10, "the task's processes")
    assert kill_agent_tasks(tmp_path) == 1
    wait_until(lambda: _pids_of(run.sandbox) == [], 10, "no process left")
