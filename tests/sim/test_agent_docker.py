"""Conformance: the docker containerizer runs a task as a container on a real Docker Engine.

Each test names the Mesos 1.11 source or doc it follows. The engine is the test's own
(tests/fixtures/docker.py); the agent drives it with the `docker` CLI, as Mesos does.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim.cluster import SimCluster
from sim.tasks import FAILED, KILLED, RUNNING
from testenv.docker import DockerEngine
from testenv.zookeeper import ZkEnsemble
from tests.sim.agent_support import Framework, agent, agent_tasks

pytestmark = [pytest.mark.zookeeper, pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.fixture
def cluster(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=0, marathons=0, base_dir=tmp_path
    ) as sim:
        yield sim


def _docker_cli() -> str:
    cli = shutil.which("docker")
    assert cli, "the docker CLI is needed: Mesos' docker containerizer runs it (--docker)"
    return cli


def _state(url: str, task_id: str) -> str:
    return str(agent_tasks(url).get(task_id, {}).get("state", ""))


def test_a_docker_task_is_a_container_with_the_tasks_cpus_and_mem(
    cluster: SimCluster, docker_engine: DockerEngine, busybox_image: str
) -> None:
    # src/slave/containerizer/docker.cpp (container name "mesos-" + container id; recovery
    # finds the containers again by name), src/docker/docker.cpp (Docker::RunOptions::create:
    # --cpu-shares max(1024 x cpus, 2), --memory max(mem, 32 MB), a shell command runs with
    # --entrypoint /bin/sh ... -c <cmd>), src/launcher/executor.cpp-like states (exit 0
    # finished, else failed; a kill is TASK_KILLED), docs/agent-recovery.md (reconnect).
    flags = [
        "--containerizers=docker,mesos",
        f"--docker={_docker_cli()}",
        f"--docker_socket={docker_engine.socket_path}",
    ]
    proc, url = agent(cluster, "node-d", *flags)
    proc.start()
    client = docker_engine.client()
    try:
        cluster.wait_for_agents(1)
        fw = Framework(cluster)
        container = {"type": "DOCKER", "docker": {"image": busybox_image}}
        fw.launch("web", "sleep 1000", cpus=0.5, mem=64, container=container)
        fw.launch("bad", "exit 3", cpus=0.1, mem=16, container=container)
        cluster.wait_for(lambda: _state(url, "web") == RUNNING, 60, "the docker task running")
        info = agent_tasks(url)["web"]
        assert info["container"] == container
        executor_container = _executor(url, "web")["container"]
        inspected = client.api.inspect_container(f"mesos-{executor_container}")
        assert inspected["State"]["Running"]
        assert inspected["HostConfig"]["CpuShares"] == 512
        assert inspected["HostConfig"]["Memory"] == 64 * 1024 * 1024
        started_at = inspected["State"]["StartedAt"]

        cluster.wait_for(lambda: _state(url, "bad") == FAILED, 60, "the failing container")
        assert agent_tasks(url)["bad"]["statuses"][-1]["message"] == (
            "Command exited with status 3"
        )
        others = [
            c
            for c in client.api.containers(all=True)
            if c["Names"] != [f"/mesos-{executor_container}"]
        ]
        assert [c["Names"][0].startswith("/mesos-") for c in others] == [True]
        small = client.api.inspect_container(others[0]["Id"])["HostConfig"]
        assert small["Memory"] == 32 * 1024 * 1024 and small["CpuShares"] == 102

        # The agent crashes and comes back: the container ran on, and is found again.
        proc.kill()
        proc.start()
        cluster.wait_for_agents(1)
        cluster.wait_for(lambda: _state(url, "web") == RUNNING, 60, "the task recovered")
        again = client.api.inspect_container(f"mesos-{executor_container}")
        assert again["State"]["Running"] and again["State"]["StartedAt"] == started_at

        fw.kill("web")
        cluster.wait_for(lambda: _state(url, "web") == KILLED, 60, "the docker task killed")
        assert not client.api.inspect_container(f"mesos-{executor_container}")["State"]["Running"]
    finally:
        proc.stop()
        proc.kill_tasks()
        client.close()


def test_a_docker_task_on_an_agent_without_the_docker_containerizer_fails(
    cluster: SimCluster,
) -> None:
    # src/slave/slave.cpp (launch NOT_SUPPORTED): "None of the enabled containerizers (mesos)
    # could create a container for the provided TaskInfo/ExecutorInfo message".
    proc, url = agent(cluster, "node-m")
    proc.start()
    try:
        cluster.wait_for_agents(1)
        fw = Framework(cluster)
        container = {"type": "DOCKER", "docker": {"image": "busybox"}}
        fw.launch("web", "sleep 1000", container=container)
        cluster.wait_for(lambda: _state(url, "web") == FAILED, 30, "the task failed")
        message = agent_tasks(url)["web"]["statuses"][-1]["message"]
        assert message.startswith("None of the enabled containerizers (mesos)")
    finally:
        proc.stop()


def test_an_agent_whose_docker_engine_is_unreachable_exits(tmp_path: Path) -> None:
    # src/slave/containerizer/docker.cpp DockerContainerizer::create -> Docker::create checks
    # the engine's version; a failure stops the agent ("Failed to create a containerizer").
    import asyncio

    from sim.agent.server import AgentConfig, AgentProcess
    from sim.zkurl import ZkUrl

    config = AgentConfig(
        zk=ZkUrl.parse("zk://127.0.0.1:1/mesos"),
        port=5051,
        work_dir=tmp_path / "w",
        containerizers=("docker", "mesos"),
        docker=_docker_cli(),
        docker_socket=str(tmp_path / "no-engine.sock"),
    )
    with pytest.raises(SystemExit) as exited:
        asyncio.run(AgentProcess(config).run())
    assert exited.value.code == 1


def _executor(url: str, task_id: str) -> dict[str, str]:
    state = httpx.get(url + "/state").json()
    for framework in state["frameworks"]:
        for executor in framework["executors"] + framework["completed_executors"]:
            if executor["id"] == task_id:
                return dict(executor)
    raise KeyError(task_id)


def test_a_marathon_docker_app_runs_its_tasks_as_containers(
    zk_ensemble: ZkEnsemble, tmp_path: Path, docker_engine: DockerEngine, busybox_image: str
) -> None:
    # Marathon's app `container` (docs: application-basics, native-docker) becomes the task's
    # ContainerInfo; src/slave/containerizer/docker.cpp runs it as mesos-<container id>.
    flags = [
        "--containerizers=docker,mesos",
        f"--docker={_docker_cli()}",
        f"--docker_socket={docker_engine.socket_path}",
    ]
    with SimCluster(
        zk_ensemble.connect_string,
        masters=1,
        agents=1,
        marathons=1,
        base_dir=tmp_path,
        agent_flags=flags,
    ) as sim:
        client = docker_engine.client()
        try:
            app = {
                "id": "/web",
                "instances": 2,
                "cpus": 0.25,
                "mem": 48,
                "cmd": "sleep 1000",
                "container": {"type": "DOCKER", "docker": {"image": busybox_image}},
            }
            created = httpx.post(sim.marathon_url() + "/v2/apps", json=app, timeout=10)
            assert created.status_code == 201, created.text
            sim.wait_for_tasks("/web", 2, timeout=90)
            running = [
                client.api.inspect_container(c["Id"])
                for c in client.api.containers()
                if c["Names"][0].startswith("/mesos-")
            ]
            assert len(running) == 2
            assert {c["HostConfig"]["CpuShares"] for c in running} == {256}
            assert {c["HostConfig"]["Memory"] for c in running} == {48 * 1024 * 1024}
        finally:
            client.close()


def test_a_bridge_app_publishes_its_port_mappings_and_gets_its_env(
    zk_ensemble: ZkEnsemble, tmp_path: Path, docker_engine: DockerEngine, busybox_image: str
) -> None:
    # Marathon: a BRIDGE portMapping with hostPort 0 gets a host port from the offer
    # (TaskBuilder), PORT0 is that host port (EnvironmentHelper); Mesos src/docker/docker.cpp
    # runs the container with `--net bridge -p <host>:<container>/tcp` and the env.
    flags = [
        "--containerizers=docker,mesos",
        f"--docker={_docker_cli()}",
        f"--docker_socket={docker_engine.socket_path}",
        "--hostname=127.0.0.1",
    ]
    with SimCluster(
        zk_ensemble.connect_string,
        masters=1,
        agents=1,
        marathons=1,
        base_dir=tmp_path,
        agent_flags=flags,
    ) as sim:
        app = {
            "id": "/bridged",
            "instances": 1,
            "cpus": 0.1,
            "mem": 32,
            "cmd": "mkdir -p /www && echo $PORT0 $MARATHON_APP_ID > /www/index.html"
            " && exec httpd -f -p 8080 -h /www",
            "container": {
                "type": "DOCKER",
                "docker": {
                    "image": busybox_image,
                    "network": "BRIDGE",
                    "portMappings": [{"containerPort": 8080, "hostPort": 0}],
                },
            },
        }
        created = httpx.post(sim.marathon_url() + "/v2/apps", json=app, timeout=10)
        assert created.status_code == 201, created.text
        task = sim.wait_for_tasks("/bridged", 1, timeout=90)[0]
        host_port = task["ports"][0]
        assert task["servicePorts"][0] >= 10000
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{host_port}/index.html", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the published port never answered"
                time.sleep(0.5)
        assert page.text.split() == [str(host_port), "/bridged"]
