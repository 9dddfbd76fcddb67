"""Mesos agents: a DaemonSet with the Docker containerizer, cgroups isolation and
checkpointing on a host path so tasks survive an agent pod restart."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import AgentResources, MesosClusterSpec
from orchestrator_operator.operator.builders.credentials import secret_volume, zk_auth_parts
from orchestrator_operator.operator.builders.masters import mesos_zk_flag, mesos_zk_hosts, zk_auth
from orchestrator_operator.operator.builders.meta import (
    metadata,
    pod_defaults,
    resources,
    selector_labels,
)

COMPONENT = "agent"
DOCKER_SOCKET = "/var/run/docker.sock"
CREDENTIAL_DIR = "/etc/orchestrator/mesos-credential"


def offered_resources(offered: AgentResources) -> str | None:
    """Mesos' `--resources` value, e.g. `cpus:4;mem:8192;ports:[31000-32000]`."""
    parts = []
    if offered.cpus is not None:
        parts.append(f"cpus:{offered.cpus:g}")
    if offered.mem_mb is not None:
        parts.append(f"mem:{offered.mem_mb}")
    if offered.disk_mb is not None:
        parts.append(f"disk:{offered.disk_mb}")
    if offered.ports is not None:
        parts.append(f"ports:{offered.ports}")
    return ";".join(parts) or None


def agent_args(owner: Owner, spec: MesosClusterSpec) -> list[str]:
    agents = spec.agents
    args = [
        f"--master={mesos_zk_flag(owner, spec)}",
        f"--containerizers={','.join(agents.containerizers)}",
        f"--work_dir={agents.work_dir}",
        f"--port={agents.port}",
        "--hostname=$(NODE_NAME)",
        "--ip=$(HOST_IP)",
        # Tasks keep running while the agent restarts and reconnect to the new agent.
        "--recover=reconnect",
        "--strict=false",
        "--systemd_enable_support=false",
    ]
    if agents.credential_secret_ref:
        args.append(f"--credential={CREDENTIAL_DIR}/credential")
    if agents.isolation:
        args.append(f"--isolation={','.join(agents.isolation)}")
    if "docker" in agents.containerizers:
        args += [
            f"--docker_socket={DOCKER_SOCKET}",
            # The agent runs in a container: executors must run in one too, or they die
            # with the agent's container.
            f"--docker_mesos_image={agents.image_ref}",
        ]
    offered = offered_resources(agents.offered)
    if offered:
        args.append(f"--resources={offered}")
    if agents.attributes:
        args.append(
            "--attributes=" + ";".join(f"{k}:{v}" for k, v in sorted(agents.attributes.items()))
        )
    return args


def build(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    agents = spec.agents
    pod_labels = metadata(owner, COMPONENT, "mesos-agent", agents.version)["labels"]
    host_paths = [
        ("work-dir", agents.work_dir, "DirectoryOrCreate"),
        ("cgroup", "/sys/fs/cgroup", "Directory"),
    ]
    if "docker" in agents.containerizers:
        host_paths.append(("docker-socket", DOCKER_SOCKET, "Socket"))
    mounts: list[Manifest] = [{"name": name, "mountPath": path} for name, path, _ in host_paths]
    volumes: list[Manifest] = [
        {"name": name, "hostPath": {"path": path, "type": kind}} for name, path, kind in host_paths
    ]
    init_containers: list[Manifest] = []
    if agents.credential_secret_ref:
        mounts.append({"name": "credential", "mountPath": CREDENTIAL_DIR, "readOnly": True})
        volumes.append(secret_volume("credential", agents.credential_secret_ref, "credential"))
    if auth := zk_auth(spec):
        init, zk_volumes, zk_mounts = zk_auth_parts(
            auth, agents.image_ref, {"mesos": mesos_zk_hosts(owner, spec)}
        )
        init_containers.append(init)
        volumes += zk_volumes
        mounts += zk_mounts
    pod_spec: Manifest = {
        **pod_defaults(spec.service_account_name),
        # Mesos offers the node's ports and addresses: the agent lives in the host's network.
        "hostNetwork": True,
        "hostPID": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "terminationGracePeriodSeconds": 60,
        "containers": [
            {
                "name": "mesos-agent",
                "image": agents.image_ref,
                # Explicit: an image without an entrypoint runs the agent too. With the
                # docker containerizer the image must also ship the docker CLI (see
                # docs/mesoscluster.md): the agent and its executors run it.
                "command": ["mesos-agent"],
                "args": agent_args(owner, spec),
                "env": [
                    {
                        "name": "NODE_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                    },
                    {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                ],
                "ports": [{"name": "http", "containerPort": agents.port, "hostPort": agents.port}],
                # cgroups isolation and the Docker containerizer need the host's cgroups.
                "securityContext": {"privileged": True},
                "readinessProbe": {
                    "httpGet": {"path": "/health", "port": agents.port},
                    "periodSeconds": 5,
                },
                "resources": resources(agents.resources),
                # A fatal start-up error (e.g. an isolator the node's cgroups cannot serve)
                # reaches the pod's status, where the operator reads it into AgentsReady.
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    if agents.node_selector:
        pod_spec["nodeSelector"] = dict(agents.node_selector)
    if agents.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in agents.tolerations
        ]
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata(owner, COMPONENT, "mesos-agent", agents.version),
        "spec": {
            "selector": {"matchLabels": selector_labels(owner, COMPONENT)},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": agents.max_unavailable},
            },
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }
    return [daemonset]
