"""Marathon in HA: replicas electing a leader under their own ZooKeeper path."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.masters import mesos_zk_url
from orchestrator_operator.operator.builders.meta import (
    metadata,
    resources,
    selector_labels,
    service,
)
from orchestrator_operator.operator.builders.zookeeper import connect_string

COMPONENT = "marathon"
PORT = 8080


def marathon_args(owner: Owner, spec: MesosClusterSpec) -> list[str]:
    return [
        "--master",
        mesos_zk_url(owner, spec),
        "--zk",
        f"zk://{connect_string(owner, spec)}{spec.marathon.zk_path}",
        "--hostname",
        "$(POD_IP)",
        "--http_port",
        str(PORT),
    ]


def build(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    marathon = spec.marathon
    pod_labels = metadata(owner, COMPONENT, "marathon", marathon.version)["labels"]
    env: list[Manifest] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    ]
    if marathon.credentials_secret_ref:
        ref = marathon.credentials_secret_ref
        env.append(
            {
                "name": "MARATHON_HTTP_CREDENTIALS",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, COMPONENT, "marathon", marathon.version),
        "spec": {
            "replicas": marathon.replicas,
            "selector": {"matchLabels": selector_labels(owner, COMPONENT)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [
                        {
                            "name": "marathon",
                            "image": marathon.image_ref,
                            "args": marathon_args(owner, spec),
                            "env": env,
                            "ports": [{"name": "http", "containerPort": PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/ping", "port": PORT},
                                "periodSeconds": 5,
                            },
                            "resources": resources(marathon.resources),
                        }
                    ]
                },
            },
        },
    }
    return [service(owner, COMPONENT, "marathon", [("http", PORT)]), deployment]
