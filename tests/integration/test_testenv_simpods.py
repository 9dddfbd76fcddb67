"""SimPodRunner makes KWOK pods of Mesos components real: raw workloads (no operator) on the
local control plane get one simulator process per pod, registered in a real ZooKeeper; a
StatefulSet scale-down stops one master, a crashed master is restarted, a deleted agent pod
comes back (DaemonSet) and a DaemonSet rolling update with changed args replaces every agent,
each recovering its checkpoint (same agent id, same tasks)."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kazoo.client import KazooClient

from sim import masterinfo
from sim.contenders import detect
from testenv.kube import KubeTestEnv
from testenv.simpods import AGENT, MARATHON, MASTER, SimPodRunner
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(420)]


def _labels(app: str) -> dict[str, Any]:
    return {"selector": {"matchLabels": {"app": app}}}


def _template(app: str, image: str, args: list[str]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": app, "image": image, "args": args}
    if "$(NODE_NAME)" in " ".join(args):
        container["env"] = [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
        ]
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container]}}


def _workloads(namespace: str, mesos_zk: str, marathon_zk: str) -> list[dict[str, Any]]:
    meta = {"namespace": namespace}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "mesos-master", **meta},
            "spec": {
                **_labels("mesos-master"),
                "serviceName": "mesos-master",
                "replicas": 3,
                "podManagementPolicy": "Parallel",
                "template": _template(
                    "mesos-master",
                    "mesosphere/mesos-master:1.11.0",
                    [f"--zk={mesos_zk}", "--quorum=2", "--work_dir=/var/lib/mesos"],
                ),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "mesos-agent", **meta},
            "spec": {
                **_labels("mesos-agent"),
                "template": _template(
                    "mesos-agent",
                    "mesosphere/mesos-slave:1.11.0",
                    [f"--master={mesos_zk}", "--hostname=$(NODE_NAME)", "--recover=reconnect"],
                ),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "marathon", **meta},
            "spec": {
                **_labels("marathon"),
                "replicas": 1,
                "template": _template(
                    "marathon",
                    "mesosphere/marathon:v1.11.24",
                    ["--master", mesos_zk, "--zk", marathon_zk],
                ),
            },
        },
    ]


def _kubectl(env: KubeTestEnv, *args: str, input: str | None = None) -> str:
    result = env.kubectl_run(*args, input=input)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture
def zk(zk_ensemble: ZkEnsemble) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zk_ensemble.connect_string, timeout=10.0)
    client.start(timeout=30)
    yield client
    client.stop()
    client.close()


def _live(pods: SimPodRunner, component: str) -> dict[str, Any]:
    return {
        name: info
        for name, info in pods.processes().items()
        if info.component == component and info.alive and not info.terminating
    }


def test_workload_pods_run_as_simulated_mesos(
    kube_env: KubeTestEnv, zk_ensemble: ZkEnsemble, zk: KazooClient, tmp_path: Path
) -> None:
    namespace = f"simpods-{uuid.uuid4().hex[:6]}"
    mesos_path, marathon_path = f"/{namespace}/mesos-x", f"/{namespace}/marathon-x"
    mesos_zk = f"zk://{zk_ensemble.connect_string}{mesos_path}"
    marathon_zk = f"zk://{zk_ensemble.connect_string}{marathon_path}"
    manifests = _workloads(namespace, mesos_zk, marathon_zk)
    http = httpx.Client(timeout=5.0, follow_redirects=True)

    def get(url: str) -> Any:
        response = http.get(url)
        response.raise_for_status()
        return response.json()

    def state() -> dict[str, Any]:
        leader = pods.leader_url()
        assert leader is not None
        result: dict[str, Any] = get(leader + "/master/state")
        return result

    def contenders_now() -> list[str]:
        return [c for c in zk.get_children(mesos_path) if c.startswith("json.info_")]

    nodes = {f"kwok-node-{i}" for i in range(3)}
    with SimPodRunner(kube_env, namespace, base_dir=tmp_path / "simpods", grace=10.0) as pods:
        try:
            _kubectl(kube_env, "apply", "-f", "-", input=yaml.safe_dump_all(manifests))

            # Every pod gets its process: 3 masters, an agent per node, one Marathon.
            pods.wait_for(
                lambda: (
                    len(_live(pods, MASTER)) == 3
                    and {i.node for i in _live(pods, AGENT).values()} == nodes
                    and len(_live(pods, MARATHON)) == 1
                ),
                120,
                "a process for each pod",
            )
            masters = _live(pods, MASTER)
            assert set(masters) == {f"mesos-master-{i}" for i in range(3)}
            assert all(
                "--quorum=2" in i.args and f"--zk={mesos_zk}" in i.args for i in masters.values()
            )
            assert all(
                i.log_path == tmp_path / "simpods" / "logs" / f"{i.pod}.log"
                for i in pods.processes().values()
            )

            # A leader is elected: the lowest json.info_ under the cluster path, and that master
            # says it is elected.
            pods.wait_for(lambda: pods.leader_url() is not None, 60, "an elected master")
            leader = detect(zk, mesos_path).leader
            assert leader is not None
            assert masterinfo.base_url(leader) == pods.leader_url()
            pods.wait_for(lambda: len(contenders_now()) == 3, 30, "3 contenders in ZooKeeper")

            # Agents register with their node names; Marathon registers a framework.
            pods.wait_for(
                lambda: {s["hostname"] for s in state()["slaves"] if s["active"]} == nodes,
                60,
                "3 active agents named after their nodes",
            )
            pods.wait_for(
                lambda: any(f["name"] == "marathon" and f["active"] for f in state()["frameworks"]),
                60,
                "Marathon registered as a framework",
            )
            pods.wait_for(
                lambda: bool(get(pods.marathon_url() + "/v2/info")["frameworkId"]),
                30,
                "Marathon's /v2/info with its framework id",
            )

            # Three tasks through Marathon, one per agent (most free cpus first).
            created = http.post(
                pods.marathon_url() + "/v2/apps",
                json={"id": "/web", "instances": 3, "cpus": 1, "mem": 64, "cmd": "sleep 1000"},
            )
            assert created.status_code == 201, created.text

            def running_tasks() -> dict[str, str]:
                return {
                    t["id"]: t["slave_id"]
                    for f in state()["frameworks"]
                    for t in f["tasks"]
                    if t["state"] == "TASK_RUNNING"
                }

            pods.wait_for(lambda: len(running_tasks()) == 3, 60, "3 running tasks")

            # StatefulSet 3 -> 2: exactly one master process stops (the highest ordinal), the
            # others keep running, its znodes go away and a leader is still elected.
            assert pods.stopped() == []
            pids = {name: i.pid for name, i in masters.items()}
            _kubectl(kube_env, "-n", namespace, "scale", "statefulset/mesos-master", "--replicas=2")
            pods.wait_for(
                lambda: "mesos-master-2" not in pods.processes(), 60, "mesos-master-2 stopped"
            )
            stopped = pods.stopped()
            assert [(i.pod, i.component) for i in stopped] == [("mesos-master-2", MASTER)]
            assert stopped[0].returncode == 0  # SIGTERM: it closed its session and exited
            assert {n: i.pid for n, i in _live(pods, MASTER).items()} == {
                n: pids[n] for n in ("mesos-master-0", "mesos-master-1")
            }
            pods.wait_for(lambda: len(contenders_now()) == 2, 30, "2 contenders in ZooKeeper")
            pods.wait_for(lambda: pods.leader_url() is not None, 60, "an elected master")
            pods.wait_for(lambda: len(running_tasks()) == 3, 60, "3 running tasks")

            # A master that crashes while its pod lives is restarted, as a kubelet restarts a
            # container: same pod and port, a new process; a restart is not a stop.
            crashed = _live(pods, MASTER)["mesos-master-0"]
            assert crashed.pid is not None
            os.kill(crashed.pid, signal.SIGKILL)

            def restarted() -> bool:
                info = pods.processes()["mesos-master-0"]
                return info.restarts == 1 and info.alive

            pods.wait_for(restarted, 30, "mesos-master-0 restarted")
            again = pods.processes()["mesos-master-0"]
            assert (again.uid, again.port) == (crashed.uid, crashed.port)
            assert again.pid != crashed.pid
            assert len(pods.stopped()) == 1
            pods.wait_for(lambda: len(contenders_now()) == 2, 30, "2 contenders again")
            pods.wait_for(lambda: pods.leader_url() is not None, 60, "an elected master")
            pods.wait_for(lambda: len(running_tasks()) == 3, 60, "3 running tasks")

            # Delete one agent pod: the DaemonSet replaces it, the new pod's agent runs on the
            # same node, port and work dir, and recovers with the same agent id and tasks.
            agents = _live(pods, AGENT)
            old = next(i for i in agents.values() if i.node == "kwok-node-1")
            agent_id = get(pods.agent_url("kwok-node-1") + "/state")["id"]
            assert agent_id
            tasks_before = running_tasks()
            on_node = {t for t, slave in tasks_before.items() if slave == agent_id}
            assert on_node, tasks_before
            _kubectl(kube_env, "-n", namespace, "delete", "pod", old.pod, "--wait=false")

            def replaced() -> bool:
                new = [
                    i
                    for i in _live(pods, AGENT).values()
                    if i.node == "kwok-node-1" and i.uid != old.uid
                ]
                return len(new) == 1

            pods.wait_for(replaced, 90, "a replacement agent on kwok-node-1")
            new = next(i for i in _live(pods, AGENT).values() if i.node == "kwok-node-1")
            assert new.pod != old.pod and new.port == old.port and new.pid != old.pid
            assert [i.pod for i in pods.stopped()] == ["mesos-master-2", old.pod]
            pods.wait_for(
                lambda: get(new.url + "/state")["id"] == agent_id,
                30,
                "the new agent serving its checkpointed id",
            )

            def reregistered() -> bool:
                slaves = {s["id"]: s for s in state()["slaves"]}
                return agent_id in slaves and bool(slaves[agent_id]["active"])

            pods.wait_for(reregistered, 60, "the agent re-registered with its old id")
            assert len(state()["slaves"]) == 3
            pods.wait_for(lambda: running_tasks() == tasks_before, 30, "the same 3 tasks")

            # A DaemonSet rolling update with changed args: every agent pod is replaced, each new
            # agent runs the new args on its node's port and work dir and keeps its id and tasks.
            ids = {node: get(url + "/state")["id"] for node, url in pods.agent_urls().items()}
            uids = {i.uid for i in _live(pods, AGENT).values()}
            resources = "--resources=cpus:8;mem:4096;disk:10240"
            patch = [
                {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": resources}
            ]
            _kubectl(
                kube_env, "-n", namespace, "patch", "daemonset/mesos-agent", "--type=json",
                "-p", json.dumps(patch),
            )  # fmt: skip

            def rolled() -> bool:
                live = list(_live(pods, AGENT).values())
                return (
                    len(live) == 3
                    and not {i.uid for i in live} & uids
                    and all(resources in i.args for i in live)
                )

            pods.wait_for(rolled, 120, "every agent pod replaced, with the new args")

            def recovered() -> bool:
                return {
                    s["hostname"]: s["id"]
                    for s in state()["slaves"]
                    if s["active"] and s["resources"]["cpus"] == 8
                } == ids

            pods.wait_for(recovered, 60, "every agent re-registered with its id and 8 cpus")
            pods.wait_for(lambda: running_tasks() == tasks_before, 30, "the same 3 tasks")
        finally:
            for kind, name in (
                ("deployment", "marathon"),
                ("daemonset", "mesos-agent"),
                ("statefulset", "mesos-master"),
            ):
                kube_env.kubectl_run("-n", namespace, "delete", kind, name, "--wait=false")
            kube_env.kubectl_run("delete", "namespace", namespace, "--wait=false")
            http.close()
