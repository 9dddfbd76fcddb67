"""Mesos masters: a StatefulSet electing its leader through ZooKeeper."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.meta import (
    metadata,
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


def mesos_zk_url(owner: Owner, spec: MesosClusterSpec) -> str:
    """`zk://hosts/path`: where masters register and agents and frameworks find the leader."""
    return f"zk://{connect_string(owner, spec)}{spec.masters.zk_path}"


def master_args(owner: Owner, spec: MesosClusterSpec) -> list[str]:
    masters = spec.masters
    return [
        f"--zk={mesos_zk_url(owner, spec)}",
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
                "--credentials=/etc/mesos/credentials",
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
    if masters.credentials_secret_ref:
        ref = masters.credentials_secret_ref
        mounts.append({"name": "credentials", "mountPath": "/etc/mesos", "readOnly": True})
        volumes.append(
            {
                "name": "credentials",
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": "credentials"}],
                },
            }
        )
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
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [
                        {
                            "name": "mesos-master",
                            "image": masters.image_ref,
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
                },
            },
            "volumeClaimTemplates": [volume_claim("work-dir", masters.storage)],
        },
    }
    return [
        service(owner, component, "mesos-master", [("http", PORT)], headless=True),
        service(owner, component, "mesos-master", [("http", PORT)]),
        pod_disruption_budget(owner, component, "mesos-master"),
        statefulset,
    ]
