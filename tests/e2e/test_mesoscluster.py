"""MesosCluster against the real control plane and a real ZooKeeper ensemble: children with
owner references, deletion by the retention policy, and a status that tells the truth."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv, node_manifest
from testenv.operator import OperatorProcess
from testenv.zookeeper import ZkEnsemble
from tests.e2e.support import PodSampler, eventually, get_json

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper]
REPO = Path(__file__).resolve().parents[2]


def _apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr


def _cluster(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


class _Samples:
    """Prometheus samples of the operator's /metrics, looked up by name and labels."""

    def __init__(self, text: str) -> None:
        self._values = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def __getitem__(self, key: tuple[str, dict[str, str]]) -> float:
        return self._values[(key[0], tuple(sorted(key[1].items())))]


def _metric_samples(operator: OperatorProcess) -> _Samples:
    status, text = operator.get("/metrics")
    assert status == 200
    return _Samples(text)


def _condition(env: KubeTestEnv, name: str, type_: str) -> dict[str, Any] | None:
    obj = get_json(env, "mesoscluster", name) or {}
    for condition in obj.get("status", {}).get("conditions", []):
        if condition["type"] == type_:
            return dict(condition)
    return None


CHILDREN = [
    ("configmap", "demo-zookeeper"),
    ("service", "demo-zookeeper-headless"),
    ("service", "demo-zookeeper-client"),
    ("poddisruptionbudget", "demo-zookeeper"),
    ("statefulset", "demo-zookeeper"),
    ("service", "demo-master-headless"),
    ("service", "demo-master"),
    ("poddisruptionbudget", "demo-master"),
    ("statefulset", "demo-master"),
    ("daemonset", "demo-agent"),
    ("service", "demo-marathon"),
    ("deployment", "demo-marathon"),
]


def test_example_creates_every_child_with_an_owner_reference(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    manifest = yaml.safe_load((REPO / "examples" / "mesoscluster.yaml").read_text())
    _apply(kube_env, manifest)
    uid = (get_json(kube_env, "mc", "demo") or {}).get("metadata", {}).get("uid")
    for kind, name in CHILDREN:
        child = eventually(functools.partial(get_json, kube_env, kind, name), 60, f"{kind}/{name}")
        owners = child["metadata"].get("ownerReferences", [])
        assert [(o["kind"], o["uid"], o.get("controller")) for o in owners] == [
            ("MesosCluster", uid, True)
        ], f"{kind}/{name}"

    masters = get_json(kube_env, "statefulset", "demo-master")
    assert masters is not None
    args = masters["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--zk=zk://demo-zookeeper-client.default.svc:2181/mesos" in args
    assert "--quorum=2" in args
    agents = get_json(kube_env, "daemonset", "demo-agent")
    assert agents is not None
    agent_args = agents["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--containerizers=docker,mesos" in agent_args
    assert "--isolation=cgroups/cpu,cgroups/mem" in agent_args
    assert "--recover=reconnect" in agent_args

    # KWOK runs the agent pods on every node, so the DaemonSet counts are real.
    def ready_agents() -> bool:
        status = (get_json(kube_env, "daemonset", "demo-agent") or {}).get("status", {})
        return bool(status.get("numberReady") == 3)

    eventually(ready_agents, 60, "3 ready agents")

    # Moving to an external ensemble retires the managed one.
    external = {"zookeeper": {"replicas": None, "external": {"connectString": "zk:2181"}}}
    patched = kube_env.kubectl_run(
        "patch", "mc", "demo", "--type=merge", "-p", json.dumps({"spec": external})
    )
    assert patched.returncode == 0, patched.stderr
    eventually(lambda: get_json(kube_env, "statefulset", "demo-zookeeper") is None, 60,
                "the managed ensemble removed")  # fmt: skip
    assert get_json(kube_env, "service", "demo-zookeeper-client") is None
    masters_now = get_json(kube_env, "statefulset", "demo-master") or {}
    assert (
        "--zk=zk://zk:2181/mesos"
        in masters_now["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_status_names_the_leader_and_follows_a_failover(
    kube_env: KubeTestEnv, operator: OperatorProcess, zk_ensemble: ZkEnsemble
) -> None:
    # An agent per KWOK node: a ready agent pod counts once an agent is registered.
    with SimCluster(zk_ensemble.connect_string, masters=3, agents=3, marathons=1) as sim:
        _apply(kube_env, _cluster("external", {
            "zookeeper": {"external": {"connectString": zk_ensemble.connect_string}},
            "masters": {"replicas": 3, "zkPath": sim.mesos_path},
            "marathon": {"replicas": 1, "zkPath": sim.marathon_path},
        }))  # fmt: skip

        def status() -> dict[str, Any]:
            return dict((get_json(kube_env, "mc", "external") or {}).get("status", {}))

        first = sim.leader()
        assert first is not None
        first_address = f"{first['address']['ip']}:{first['address']['port']}"
        eventually(lambda: status().get("phase") == "Ready", 90, "phase Ready")
        assert status()["leadingMaster"] == first_address
        assert status()["mesos"]["agentsActive"] == 3
        assert status()["mesos"]["frameworksActive"] == 1
        elected = _condition(kube_env, "external", "LeaderElected")
        assert elected and elected["status"] == "True" and first_address in elected["message"]
        zk = _condition(kube_env, "external", "ZookeeperReady") or {}
        zk_leader = zk_ensemble.servers[zk_ensemble.wait_for_leader()]
        assert zk["message"].endswith(
            f"3/3 servers answer srvr, leader 127.0.0.1:{zk_leader.client_port}"
        ), zk["message"]

        # SIGKILL: the znode lives until the master's ZooKeeper session expires (4 s).
        leader_index = sim.leader_index()
        assert leader_index is not None
        killed_at = time.monotonic()
        sim.kill_master(leader_index)

        def moved() -> bool:
            leader = status().get("leadingMaster")
            condition = _condition(kube_env, "external", "LeaderElected") or {}
            return bool(leader and leader != first_address and condition.get("status") == "True")

        eventually(moved, 10, "LeaderElected on the new leader")
        new_leader = sim.leader()
        assert new_leader is not None and status()["leadingMaster"] == (
            f"{new_leader['address']['ip']}:{new_leader['address']['port']}"
        )
        assert time.monotonic() - killed_at < 10
        samples = _metric_samples(operator)
        cluster = {"namespace": "default", "name": "external"}
        assert samples[("orchestrator_mesoscluster_leader_changes_total", cluster)] == 1
        leader_elected = {**cluster, "condition": "LeaderElected"}
        assert samples[("orchestrator_mesoscluster_condition", leader_elected)] == 1


def test_unreachable_zookeeper_is_a_condition_not_a_crash(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    _apply(
        kube_env, _cluster("nowhere", {"zookeeper": {"external": {"connectString": "127.0.0.1:1"}}})
    )
    condition = eventually(lambda: _condition(kube_env, "nowhere", "ZookeeperReady"), 60,
                            "a ZookeeperReady condition")  # fmt: skip
    assert condition["status"] == "False"
    assert condition["reason"] == "Unreachable"
    assert "cannot reach ZooKeeper at 127.0.0.1:1" in condition["message"]
    assert (get_json(kube_env, "mc", "nowhere") or {})["status"]["phase"] == "Degraded"
    assert operator.process.poll() is None, "the operator must keep running"


def test_a_tls_ensemble_without_the_operators_client_certificate_says_which_setting(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    # Issue 17, point 7: the operator reads a managed ensemble with spec.zookeeper.tls on its
    # TLS port only; started without --zookeeper-client-tls-dir (as the session's operator
    # is), it says so in the condition at once instead of timing out on 2181 or 2281.
    _apply(kube_env, _cluster("tls-zk", {
        "zookeeper": {"replicas": 1, "tls": {"secretName": "tls-zk-zookeeper-tls"}},
        "masters": {"replicas": 1}, "marathon": {"replicas": 0},
    }))  # fmt: skip

    def named() -> dict[str, Any] | None:
        condition = _condition(kube_env, "tls-zk", "ZookeeperReady") or {}
        return condition if "zookeeper-client-tls-dir" in condition.get("message", "") else None

    condition = eventually(named, 90, "ZookeeperReady naming the missing client certificate")
    assert (condition["status"], condition["reason"]) == ("False", "Unreachable")
    assert condition["message"] == (
        "ZooKeeper at tls-zk-zookeeper-0.tls-zk-zookeeper-headless.default.svc.cluster.local:2281"
        " is reached over TLS (spec.zookeeper.tls) and the operator has no client certificate:"
        " set --zookeeper-client-tls-dir (ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR) to a mounted"
        " Secret with tls.crt, tls.key and ca.crt from the ensemble's issuer"
    )
    # Mesos keeps 2181: its ZooKeeper client has no TLS
    masters = get_json(kube_env, "statefulset", "tls-zk-master") or {}
    assert "zk://tls-zk-zookeeper-client.default.svc:2181/" in json.dumps(masters)
    assert ":2281" not in json.dumps(masters)
    assert operator.process.poll() is None


def test_unreachable_zookeeper_shows_no_component_that_depends_on_it_ready(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    # Issue 18: KWOK marks the pods ready, yet no master can register in a ZooKeeper that
    # cannot be read: the status said Degraded while masters, agents and Marathon showed
    # "3/3 ready".
    _apply(kube_env, _cluster("blind", {
        "zookeeper": {"external": {"connectString": "127.0.0.1:1"}},
        "masters": {"replicas": 3}, "marathon": {"replicas": 1},
    }))  # fmt: skip

    def status() -> dict[str, Any]:
        return dict((get_json(kube_env, "mc", "blind") or {}).get("status", {}))

    def pods_ready() -> bool:
        counts = status()
        return all(
            (counts.get(c) or {}).get("desired", 0) > 0
            and counts[c]["ready"] == counts[c]["desired"]
            for c in ("masters", "agents", "marathon")
        )

    eventually(pods_ready, 90, "every master, agent and Marathon pod ready")
    for component in ("MastersReady", "AgentsReady", "MarathonReady"):
        condition = _condition(kube_env, "blind", component) or {}
        assert (condition.get("status"), condition.get("reason")) == ("False", "Unknown"), (
            component, condition,
        )  # fmt: skip
        assert "ZooKeeper cannot be read" in condition["message"], condition
    assert status()["phase"] == "Degraded"


def test_an_agent_pod_the_scheduler_cannot_place_says_why(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    # Two clusters on the same nodes with the same agent port: the second one's agent pods
    # cannot be scheduled (the host port is taken) and AgentsReady says so.
    spec = {"zookeeper": {"external": {"connectString": "127.0.0.1:1"}},
            "masters": {"replicas": 1}, "marathon": {"replicas": 0}}  # fmt: skip
    _apply(kube_env, _cluster("port-first", spec))
    eventually(
        lambda: ((get_json(kube_env, "mc", "port-first") or {}).get("status", {})
                 .get("agents", {}).get("ready", 0)) > 0,
        60, "the first cluster's agents running",
    )  # fmt: skip
    _apply(kube_env, _cluster("port-second", spec))

    def stuck() -> dict[str, Any] | None:
        condition = _condition(kube_env, "port-second", "AgentsReady") or {}
        return condition if "cannot be scheduled" in condition.get("message", "") else None

    condition = eventually(stuck, 90, "AgentsReady naming the unschedulable pods")
    # NoneScheduled while the DaemonSet has placed none of its pods yet, Unschedulable once
    # some are placed: either way False, with the scheduler's reason in the message.
    assert condition["status"] == "False", condition
    assert condition["reason"] in ("Unschedulable", "NoneScheduled"), condition
    # The scheduler's own words, e.g. "0/3 nodes are available: 3 node(s) didn't have free
    # ports for the requested pod ports."
    assert "free ports" in condition["message"], condition


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion_follows_the_pvc_retention_policy(
    kube_env: KubeTestEnv, operator: OperatorProcess, policy: str
) -> None:
    name = f"retain-{policy.lower()}"
    _apply(kube_env, _cluster(name, {"pvcRetentionPolicy": policy, "masters": {"replicas": 1},
                                     "zookeeper": {"replicas": 1}}))  # fmt: skip
    claim = f"work-dir-{name}-master-0"
    eventually(lambda: (get_json(kube_env, "pvc", claim) or {}).get("status", {}).get("phase")
                == "Bound", 90, f"PVC {claim} bound")  # fmt: skip
    assert kube_env.kubectl_run("delete", "mc", name, "--wait=true").returncode == 0
    eventually(lambda: get_json(kube_env, "statefulset", f"{name}-master") is None, 60,
                "the masters' StatefulSet garbage-collected")  # fmt: skip
    if policy == "Delete":
        eventually(lambda: get_json(kube_env, "pvc", claim) is None, 60, "the PVC deleted")
    else:
        time.sleep(3)  # give the garbage collector time to (wrongly) act
        assert get_json(kube_env, "pvc", claim) is not None, "a retained PVC was deleted"


def _set_pod_ready(env: KubeTestEnv, pod: str, ready: bool) -> None:
    """What a kubelet writes when a readinessProbe starts or stops passing (KWOK sets Ready
    only on a pending pod, so a running pod keeps what is written here)."""
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    patched = env.kubectl_run(
        "patch", "pod", pod, "-n", "default", "--subresource=status", "--type=strategic",
        "-p", json.dumps({"status": {"conditions": [condition]}}),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr


def test_image_change_rolls_masters_one_at_a_time_never_below_quorum(
    kube_env: KubeTestEnv, operator: OperatorProcess, zk_ensemble: ZkEnsemble
) -> None:
    spec: dict[str, Any] = {
        "zookeeper": {"external": {"connectString": zk_ensemble.connect_string}},
        "masters": {"replicas": 3, "version": "1.11.0"},
        "marathon": {"replicas": 0},
    }
    _apply(kube_env, _cluster("roll", spec))

    def statefulset() -> dict[str, Any]:
        return get_json(kube_env, "statefulset", "roll-master") or {}

    eventually(lambda: statefulset().get("status", {}).get("readyReplicas") == 3, 90,
                "3 ready masters")  # fmt: skip
    with PodSampler(kube_env, "roll", "master") as sampler:
        # KWOK makes a new pod Ready the moment it runs, faster than any real member rejoins,
        # so the wait for readiness is shown on a member held not Ready: nothing restarts.
        _set_pod_ready(kube_env, "roll-master-0", False)
        spec["masters"]["version"] = "1.11.1"
        _apply(kube_env, _cluster("roll", spec))
        eventually(lambda: "waiting for it to rejoin" in str(
            ((get_json(kube_env, "mc", "roll") or {}).get("status") or {}).get("rollout")),
            60, "the roll waiting for the member that is not ready")  # fmt: skip
        time.sleep(2)
        assert len({p.uid for sample in sampler.samples for p in sample}) == 3, (
            "a member was restarted while another was not ready"
        )
        _set_pod_ready(kube_env, "roll-master-0", True)

        def rolled() -> bool:
            sts = statefulset()
            status = sts.get("status", {})
            return bool(
                sts["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.11.1")
                and status.get("observedGeneration") == sts["metadata"]["generation"]
                and status.get("updatedReplicas") == 3
                and status.get("readyReplicas") == 3
            )

        try:
            eventually(rolled, 180, "all three masters on the new template")
        except AssertionError as error:
            mc = (get_json(kube_env, "mc", "roll") or {}).get("status")
            raise AssertionError(
                f"{error}\nstatus: {mc}\nsts: {statefulset().get('status')}"
            ) from None
        time.sleep(0.5)

    first, last = sampler.samples[0], sampler.samples[-1]
    assert len(first) == 3 and len(last) == 3
    assert not {p.uid for p in first} & {p.uid for p in last}, "every pod replaced"
    quorum = 2
    for sample in sampler.samples:
        ready = sum(1 for p in sample if p.ready)
        assert ready >= quorum, f"below quorum: {sample}"
    # One member at a time: every state has at most one member missing or not ready (above),
    # and every member was replaced. (Not counted per member: KWOK deletes pods by name, so a
    # stale delete of a replaced pod may hit its successor, which the StatefulSet remakes.)
    first_uids = {p.uid for p in first}
    replaced = {p.name for sample in sampler.samples for p in sample if p.uid not in first_uids}
    assert sorted(replaced) == ["roll-master-0", "roll-master-1", "roll-master-2"]


def _agent_pod_uid(env: KubeTestEnv, cluster: str, node: str) -> str | None:
    """The uid of the cluster's agent pod on `node` (None: there is none)."""
    listed = env.kubectl_run(
        "get", "pods", "-n", "default", "-o", "json",
        "-l", f"app.kubernetes.io/instance={cluster},app.kubernetes.io/component=agent",
        f"--field-selector=spec.nodeName={node}",
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    pods = [
        p for p in json.loads(listed.stdout)["items"] if not p["metadata"].get("deletionTimestamp")
    ]
    return str(pods[0]["metadata"]["uid"]) if pods else None


def test_cordoning_a_node_drains_its_agent_through_the_maintenance_api(
    kube_env: KubeTestEnv, operator: OperatorProcess, zk_ensemble: ZkEnsemble
) -> None:
    with SimCluster(zk_ensemble.connect_string, masters=3, agents=2, marathons=1) as sim:
        # A Kubernetes node for each sim agent (agents are named after their node).
        # The agent pods only there: a ready agent pod counts once its agent is registered.
        nodes = [node_manifest(sim.agent_hostname(j), 90 + j) for j in range(2)]
        for node in nodes:
            node["metadata"]["labels"]["orchestrator.dev/test-sim-agent"] = "true"
        kube_env.apply_objects(nodes)
        try:
            _apply(kube_env, _cluster("maint", {
                "zookeeper": {"external": {"connectString": zk_ensemble.connect_string}},
                "masters": {"replicas": 3, "zkPath": sim.mesos_path},
                "agents": {"nodeSelector": {"orchestrator.dev/test-sim-agent": "true"}},
                "marathon": {"replicas": 1, "zkPath": sim.marathon_path},
            }))  # fmt: skip
            created = sim.http.post(
                sim.marathon_url() + "/v2/apps",
                json={"id": "/web", "instances": 4, "cpus": 0.5, "mem": 64, "cmd": "sleep 3600"},
            )
            assert created.status_code == 201, created.text
            before = {t["id"] for t in sim.wait_for_tasks("/web", 4)}
            drained = sim.agent_hostname(0)
            assert kube_env.kubectl_run("cordon", drained).returncode == 0

            def maintenance() -> list[dict[str, Any]]:
                status = (get_json(kube_env, "mc", "maint") or {}).get("status", {})
                return list(status.get("maintenance") or [])

            eventually(lambda: maintenance() == [{"node": drained, "state": "Down", "tasks": 0}],
                        60, "the cordoned node's agent drained and down")  # fmt: skip
            mesos_status = sim.get(sim.leader_url() + "/master/maintenance/status")
            assert [m["hostname"] for m in mesos_status["down_machines"]] == [drained]
            tasks = sim.wait_for_tasks("/web", 4)
            assert all(t["host"] != drained for t in tasks), "a task still runs on the node"
            assert sim.metrics()["master/tasks_lost"] == 0, "draining must not lose tasks"
            assert sim.metrics()["master/tasks_failed"] == 0
            assert len(before) == 4

            agents = eventually(lambda: _condition(kube_env, "maint", "AgentsReady"), 30,
                                "AgentsReady")  # fmt: skip
            eventually(lambda: f"machines DOWN for maintenance ({drained})" in str(
                (_condition(kube_env, "maint", "AgentsReady") or {}).get("message")), 30,
                "AgentsReady naming the DOWN machine")  # fmt: skip
            assert agents["status"] == "True"
            # A real agent on a DOWN machine exits on the master's shutdown message each
            # time it registers, so its pod sits in crash-loop back-off (up to 5 minutes):
            # once the machine is up the operator replaces the pod so it starts at once.
            agent_pod = eventually(lambda: _agent_pod_uid(kube_env, "maint", drained), 60,
                                   "the agent pod on the drained node")  # fmt: skip
            assert kube_env.kubectl_run("uncordon", drained).returncode == 0
            eventually(lambda: maintenance() == [], 60, "the machine back up")
            mesos_status = sim.get(sim.leader_url() + "/master/maintenance/status")
            assert mesos_status.get("down_machines", []) == []
            eventually(lambda: _agent_pod_uid(kube_env, "maint", drained) not in (None, agent_pod),
                       60, "the agent pod on the node replaced after machine/up")  # fmt: skip
        finally:
            for j in range(2):
                kube_env.kubectl_run("delete", "node", sim.agent_hostname(j), "--wait=true")


def test_egress_policies_are_made_on_request_and_deleted_when_switched_off(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    """Issue 17 point 12: `networkPolicies.egress` makes the masters' and Marathon's Egress
    policies (an external ensemble: no ZooKeeper pods to select), owned by the cluster and
    stored as built; switching it off deletes them and keeps the Ingress ones."""
    spec = {
        "zookeeper": {"external": {"connectString": "zk-1.example:2181,zk-2.example:2182"}},
        "networkPolicies": {"egress": True, "nodeCidrs": ["10.0.0.0/16"],
                            "zookeeperCidrs": ["192.0.2.0/28"]},
    }  # fmt: skip
    _apply(kube_env, _cluster("walled", spec))
    uid = (get_json(kube_env, "mc", "walled") or {})["metadata"]["uid"]
    try:
        for name in ("walled-master-egress", "walled-marathon-egress"):
            policy = eventually(
                functools.partial(get_json, kube_env, "networkpolicy", name), 60, name
            )
            assert [o["uid"] for o in policy["metadata"]["ownerReferences"]] == [uid]
            assert policy["spec"]["policyTypes"] == ["Egress"]
            to_zookeeper = [r for r in policy["spec"]["egress"]
                            if {"port": 2182, "protocol": "TCP"} in r.get("ports", [])]  # fmt: skip
            assert [r["to"] for r in to_zookeeper] == [[{"ipBlock": {"cidr": "192.0.2.0/28"}}]]
        assert get_json(kube_env, "networkpolicy", "walled-zookeeper-egress") is None
        off = {"spec": {"networkPolicies": {"egress": False}}}
        patched = kube_env.kubectl_run("patch", "mc", "walled", "--type=merge",
                                       "-p", json.dumps(off))  # fmt: skip
        assert patched.returncode == 0, patched.stderr
        for name in ("walled-master-egress", "walled-marathon-egress"):
            eventually(lambda n=name: get_json(kube_env, "networkpolicy", n) is None, 60,  # type: ignore[misc]
                       f"{name} deleted")  # fmt: skip
        assert get_json(kube_env, "networkpolicy", "walled-master") is not None
    finally:
        kube_env.kubectl_run("delete", "mc", "walled", "--wait=false")
