"""Mesos masters: a StatefulSet electing its leader through ZooKeeper."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.credentials import (
    secret_volume,
    zk_auth_parts,
    zk_url_file,
)
from orchestrator_operator.operator.builders.meta import (
    metadata,
    pod_defaults,
    pod_disruption_budget,
    resources,
    selector_labels,
    service,
    volume_claim,
)
from orchestrator_operator.operator.builders.zookeeper import connect_string

COMPONENT = "master"
PORT = 5050
WORK_DIR = "/var/lib/mesos/master"
CREDENTIALS_DIR = "/etc/orchestrator/mesos-credentials"


def zk_auth(spec: MesosClusterSpec) -> SecretKeyRef | None:
    """The ZooKeeper digest credentials every component connects with, if any."""
    return spec.zookeeper.external.auth_secret_ref if spec.zookeeper.external else None


def mesos_zk_hosts(owner: Owner, spec: MesosClusterSpec) -> str:
    """`hosts/path` of the masters' election (the zk:// URL without scheme and credentials)."""
    return f"{connect_string(owner, spec)}{spec.masters.zk_path}"


def mesos_zk_url(owner: Owner, spec: MesosClusterSpec) -> str:
    """`zk://hosts/path`: where masters register and agents and frameworks find the leader."""
    return f"zk://{mesos_zk_hosts(owner, spec)}"


def mesos_zk_flag(owner: Owner, spec: MesosClusterSpec) -> str:
    """The value of the masters' `--zk` and the agents' `--master`: the URL, or with
    ZooKeeper credentials the file the init container writes it to (credentials.py)."""
    return zk_url_file("mesos") if zk_auth(spec) else mesos_zk_url(owner, spec)


def master_args(owner: Owner, spec: MesosClusterSpec) -> list[str]:
    masters = spec.masters
    return [
        f"--zk={mesos_zk_flag(owner, spec)}",
        f"--quorum={masters.effective_quorum}",
        f"--work_dir={WORK_DIR}",
        f"--cluster={owner.name}",
        f"--port={PORT}",
        "--ip=$(POD_IP)",
        "--hostname=$(POD_IP)",
        "--registry=replicated_log",
        *(
            [
                "--authenticate_frameworks",
                "--authenticate_agents",
                f"--credentials={CREDENTIALS_DIR}/credentials",
            ]
            if masters.credentials_secret_ref
            else []
        ),
    ]


def build(owner: Owner, spec: MesosClusterSpec, component: str = COMPONENT) -> list[Manifest]:
    """One masters set; a ZkMigration runs a second (`master-b`) on the other ensemble."""
    masters = spec.masters
    pod_labels = metadata(owner, component, "mesos-master", masters.version)["labels"]
    mounts: list[Manifest] = [{"name": "work-dir", "mountPath": WORK_DIR}]
    volumes: list[Manifest] = []
    init_containers: list[Manifest] = []
    if masters.credentials_secret_ref:
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
        volumes.append(secret_volume("credentials", masters.credentials_secret_ref, "credentials"))
    if auth := zk_auth(spec):
        init, zk_volumes, zk_mounts = zk_auth_parts(
            auth, masters.image_ref, {"mesos": mesos_zk_hosts(owner, spec)}
        )
        init_containers.append(init)
        volumes += zk_volumes
        mounts += zk_mounts
    pod_spec: Manifest = {
        **pod_defaults(spec.service_account_name),
        "containers": [
            {
                "name": "mesos-master",
                "image": masters.image_ref,
                # Explicit: an image without an entrypoint runs the master too.
                "command": ["mesos-master"],
                "args": master_args(owner, spec),
                "env": [
                    {
                        "name": "POD_IP",
                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                    }
                ],
                "ports": [{"name": "http", "containerPort": PORT}],
                "readinessProbe": {
                    "httpGet": {"path": "/health", "port": PORT},
                    "periodSeconds": 5,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/health", "port": PORT},
                    "initialDelaySeconds": 30,
                },
                "resources": resources(masters.resources),
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(owner, component, "mesos-master", masters.version),
        "spec": {
            "serviceName": f"{owner.child_name(component)}-headless",
            "replicas": masters.replicas,
            # The replicated log needs a quorum of masters up at once to start.
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": spec.pvc_retention_policy,
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector_labels(owner, component)},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
            "volumeClaimTemplates": [volume_claim("work-dir", masters.storage)],
        },
    }
    return [
        service(owner, component, "mesos-master", [("http", PORT)], headless=True),
        service(owner, component, "mesos-master", [("http", PORT)]),
        pod_disruption_budget(owner, component, "mesos-master"),
        statefulset,
    ]
