"""Every workload a MesosCluster or a ZkMigration makes runs under the runtime's default
seccomp profile, and no container but the privileged Mesos agent may gain privileges."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.zkmigration import ManagedEnsemble
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.builders.cluster import build_children
from orchestrator_operator.operator.zkmigration.machine import routing_for

OWNER = Owner(name="prod", namespace="mesos", uid="1234")
# Every component and addon, with every credential (each adds volumes or init containers).
SPEC = MesosClusterSpec.model_validate({
    "masters": {"credentialsSecretRef": {"name": "mesos", "key": "credentials"}},
    "agents": {"credentialSecretRef": {"name": "agent", "key": "credential"}},
    "marathon": {
        "credentialsSecretRef": {"name": "marathon", "key": "http"},
        "mesosAuthentication": {"principal": "marathon", "secretRef": {"name": "m", "key": "s"}},
    },
    "addons": {"mesosDns": {"enabled": True}, "marathonLb": {"enabled": True}},
})  # fmt: skip
# ZooKeeper credentials add an init container to every component that writes them.
ZK_AUTH = {"external": {"connectString": "zk-a:2181", "authSecretRef": {"name": "zk", "key": "a"}}}
WORKLOADS = ("StatefulSet", "Deployment", "DaemonSet")


def _workloads(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in children if c["kind"] in WORKLOADS}


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _containers_of(children: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    pods = [c["spec"]["template"]["spec"] for c in children if c["kind"] in WORKLOADS]
    return [container for pod in pods for container in pod.get(key, [])]


def test_every_pod_has_runtime_default_seccomp_and_no_container_escalates() -> None:
    mid_migration = routing_for(2, "move", "zk-b:2181", 3, "master")
    with_auth = MesosClusterSpec.model_validate({"zookeeper": ZK_AUTH}).zookeeper
    children = [
        *build_children(OWNER, SPEC),
        *build_children(OWNER, SPEC, mid_migration),
        *zookeeper.build_migration_target(OWNER, ManagedEnsemble(), SPEC),
        *build_children(OWNER, SPEC.model_copy(update={"zookeeper": with_auth})),
    ]
    assert _containers_of(children, "initContainers"), "the ZooKeeper credentials' init containers"
    workloads = _workloads(children)
    assert {"prod-zookeeper", "prod-master", "prod-agent", "prod-marathon"} <= set(workloads)
    assert {"prod-mesos-dns", "prod-marathon-lb", "prod-master-b"} <= set(workloads)
    for workload in (c for c in children if c["kind"] in WORKLOADS):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in _containers(workload):
            security = container["securityContext"]
            if name == "prod-agent" and container["name"] == "mesos-agent":
                # Mesos' containerizers mount, make cgroups and run Docker: privileged.
                assert security == {"privileged": True}
            else:
                assert security["allowPrivilegeEscalation"] is False, (name, container["name"])
                assert not security.get("privileged"), (name, container["name"])


def test_a_builders_own_pod_security_is_kept() -> None:
    marathon = _workloads(build_children(OWNER, SPEC))["prod-marathon"]
    assert marathon["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 65534


def test_zookeeper_runs_as_the_images_own_user_without_capabilities() -> None:
    """Issue 17, point 12: the managed ensemble (and a migration's ensemble B) runs as the
    official image's zookeeper user (1000), its data volume given to that group, with every
    capability dropped; the seccomp default is merged in, not lost."""
    for children in (
        build_children(OWNER, SPEC),
        zookeeper.build_migration_target(OWNER, ManagedEnsemble(), SPEC),
    ):
        (workload,) = [c for c in children if c["kind"] == "StatefulSet" and "zookeeper" in
                       c["metadata"]["name"]]  # fmt: skip
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        }  # fmt: skip
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        }  # fmt: skip


# Issue 17, point 12: the containers that run with a read-only root file system, and the
# paths each may still write (an emptyDir each, or its own volume).
READ_ONLY = {
    ("prod-zookeeper", "zookeeper"): {"/data", "/tmp", "/logs"},
    ("prod-master", "mesos-master"): {"/var/lib/mesos/master", "/tmp"},
    ("prod-master", "zk-url"): {"/run/orchestrator/zk"},
    ("prod-agent", "zk-url"): {"/run/orchestrator/zk"},
    ("prod-marathon", "marathon"): {"/tmp"},
    ("prod-marathon", "zk-url"): {"/run/orchestrator/zk"},
    ("prod-mesos-dns", "mesos-dns"): set(),
}
# Writable on purpose: the privileged agent (a read-only root binds nothing there) and
# marathon-lb (its image rewrites its HAProxy configuration in place).
WRITABLE = {("prod-agent", "mesos-agent"), ("prod-marathon-lb", "marathon-lb")}


def test_read_only_root_file_systems_with_an_empty_dir_per_written_path() -> None:
    with_auth = MesosClusterSpec.model_validate({"zookeeper": ZK_AUTH}).zookeeper
    seen: set[tuple[str, str]] = set()
    for children in (
        build_children(OWNER, SPEC),
        build_children(OWNER, SPEC.model_copy(update={"zookeeper": with_auth})),
        zookeeper.build_migration_target(OWNER, ManagedEnsemble(), SPEC),
    ):
        for name, workload in _workloads(children).items():
            pod = workload["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for container in _containers(workload):
                key = (name, container["name"])
                seen.add(key)
                read_only = container["securityContext"].get("readOnlyRootFilesystem")
                if key in WRITABLE:
                    assert not read_only, key
                    continue
                assert read_only is True, key
                writable = {
                    m["mountPath"]: volumes.get(m["name"], {"claim": m["name"]})
                    for m in container.get("volumeMounts", [])
                    if not m.get("readOnly") and "configMap" not in volumes.get(m["name"], {})
                }
                assert set(writable) == READ_ONLY[key], key
                for path in {"/tmp", "/logs"} & set(writable):
                    assert writable[path]["emptyDir"] == {"sizeLimit": "1Gi"}, key
    assert seen == set(READ_ONLY) | WRITABLE


def test_a_builders_own_read_only_choice_is_kept() -> None:
    from orchestrator_operator.operator.builders.hardening import harden

    workload = {
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [
            {"name": "marathon", "securityContext": {"readOnlyRootFilesystem": False}},
        ]}}},
    }  # fmt: skip
    (container,) = harden(workload)["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    assert "volumeMounts" not in container
