"""The pure builders turn a MesosCluster spec into the manifests a user would expect."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import AgentResources, MesosClusterSpec
from orchestrator_operator.operator.builders import agents, masters, zookeeper
from orchestrator_operator.operator.builders.cluster import build_children, stale_children

OWNER = Owner(name="prod", namespace="mesos", uid="1234")


def _spec(raw: dict[str, Any]) -> MesosClusterSpec:
    return MesosClusterSpec.model_validate(raw)


def _by_kind_and_name(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def test_default_cluster_has_every_component_owned_by_the_cluster() -> None:
    children = build_children(OWNER, _spec({}))
    assert sorted(_by_kind_and_name(children)) == sorted([
        ("ConfigMap", "prod-zookeeper"), ("Service", "prod-zookeeper-headless"),
        ("Service", "prod-zookeeper-client"), ("PodDisruptionBudget", "prod-zookeeper"),
        ("StatefulSet", "prod-zookeeper"), ("Service", "prod-master-headless"),
        ("Service", "prod-master"), ("PodDisruptionBudget", "prod-master"),
        ("StatefulSet", "prod-master"), ("DaemonSet", "prod-agent"),
        ("Service", "prod-marathon"), ("Deployment", "prod-marathon"),
    ])  # fmt: skip
    for child in children:
        assert child["metadata"]["namespace"] == "mesos"
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("MesosCluster", "1234", True)
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "orchestrator"


def test_zoo_cfg_lists_every_member_by_stable_dns_name() -> None:
    cfg = zookeeper.zoo_cfg(OWNER, 5)
    servers = [line for line in cfg.splitlines() if line.startswith("server.")]
    assert servers[0] == (
        "server.1=prod-zookeeper-0.prod-zookeeper-headless.mesos.svc.cluster.local:2888:3888;2181"
    )
    assert [s.split("=")[0] for s in servers] == [f"server.{i}" for i in range(1, 6)]
    assert "reconfigEnabled=true" in cfg
    assert "4lw.commands.whitelist=ruok,mntr,srvr,stat,conf,isro" in cfg


def test_external_zookeeper_builds_no_ensemble_and_points_everyone_at_it() -> None:
    spec = _spec({"zookeeper": {"external": {"connectString": "zk1:2181,zk2:2181"}}})
    children = _by_kind_and_name(build_children(OWNER, spec))
    assert not [key for key in children if "zookeeper" in key[1]]
    assert masters.mesos_zk_url(OWNER, spec) == "zk://zk1:2181,zk2:2181/mesos"


def test_master_flags_carry_quorum_and_zk_path() -> None:
    spec = _spec({"masters": {"replicas": 5, "zkPath": "/mesos-prod"}})
    args = masters.master_args(OWNER, spec)
    assert "--quorum=3" in args
    assert "--zk=zk://prod-zookeeper-client.mesos.svc:2181/mesos-prod" in args
    statefulset = _by_kind_and_name(build_children(OWNER, spec))[("StatefulSet", "prod-master")]
    assert statefulset["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_agents_get_containerizers_isolation_checkpoints_and_placement() -> None:
    spec = _spec({
        "agents": {
            "isolation": ["cgroups/cpu", "cgroups/mem", "cgroups/pids"],
            "offered": {"cpus": 2.5, "memMb": 4096, "ports": "[31000-32000]"},
            "nodeSelector": {"mesos": "yes"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "mesos",
                             "effect": "NoSchedule"}],
            "attributes": {"rack": "r1", "zone": "a"},
        }
    })  # fmt: skip
    args = agents.agent_args(OWNER, spec)
    assert "--containerizers=docker,mesos" in args
    assert "--isolation=cgroups/cpu,cgroups/mem,cgroups/pids" in args
    assert "--recover=reconnect" in args
    assert "--resources=cpus:2.5;mem:4096;ports:[31000-32000]" in args
    assert "--attributes=rack:r1;zone:a" in args
    assert "--docker_mesos_image=mesosphere/mesos-slave:1.11.0" in args
    (daemonset,) = agents.build(OWNER, spec)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"mesos": "yes"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    host_paths = {v["hostPath"]["path"] for v in pod["volumes"]}
    assert host_paths == {"/var/lib/mesos/agent", "/sys/fs/cgroup", "/var/run/docker.sock"}


def test_mesos_only_agents_do_not_mount_the_docker_socket() -> None:
    spec = _spec({"agents": {"containerizers": ["mesos"]}})
    (daemonset,) = agents.build(OWNER, spec)
    volumes = daemonset["spec"]["template"]["spec"]["volumes"]
    assert "/var/run/docker.sock" not in {v["hostPath"]["path"] for v in volumes}
    assert not [a for a in agents.agent_args(OWNER, spec) if a.startswith("--docker")]


def test_offered_resources_empty_means_autodetect() -> None:
    assert agents.offered_resources(AgentResources()) is None


def test_a_change_to_one_component_leaves_the_others_byte_for_byte() -> None:
    before = _by_kind_and_name(build_children(OWNER, _spec({})))
    after = _by_kind_and_name(build_children(OWNER, _spec({"agents": {"version": "1.11.1"}})))
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed == [("DaemonSet", "prod-agent")]


def _stale_core(spec: MesosClusterSpec) -> list[tuple[str, str, str]]:
    """Stale children other than the disabled addons (always listed, see test_builders_addons)."""
    return [
        c
        for c in stale_children(OWNER, spec)
        if "mesos-dns" not in c[2] and "marathon-lb" not in c[2]
    ]


def test_moving_to_an_external_ensemble_retires_the_managed_one() -> None:
    assert _stale_core(_spec({})) == []
    external = _spec({"zookeeper": {"external": {"connectString": "zk:2181"}}})
    assert sorted(kind for _, kind, _ in _stale_core(external)) == [
        "ConfigMap", "PodDisruptionBudget", "Service", "Service", "StatefulSet",
    ]  # fmt: skip
