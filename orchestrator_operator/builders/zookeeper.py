"""The managed ZooKeeper ensemble of a MesosCluster."""

from __future__ import annotations

from ..models.mesoscluster import MesosClusterSpec
from .meta import (
    Manifest,
    Owner,
    metadata,
    pod_disruption_budget,
    resources,
    selector_labels,
    volume_claim,
)
from .meta import service as build_service

COMPONENT = "zookeeper"
CLIENT_PORT, PEER_PORT, ELECTION_PORT = 2181, 2888, 3888
FOUR_LETTER_WORDS = "ruok,mntr,srvr,stat,conf,isro"


def connect_string(owner: Owner, spec: MesosClusterSpec) -> str:
    """What Mesos, Marathon and the operator connect to (without a chroot path)."""
    if spec.zookeeper.external:
        return spec.zookeeper.external.connect_string
    return f"{owner.child_name(COMPONENT)}-client.{owner.namespace}.svc:{CLIENT_PORT}"


def server_lines(owner: Owner, replicas: int) -> list[str]:
    """`server.N=` lines; N = pod ordinal + 1, each peer by its stable headless DNS name."""
    sts, domain = owner.child_name(COMPONENT), f"{owner.namespace}.svc.cluster.local"
    return [
        f"server.{ordinal + 1}={sts}-{ordinal}.{sts}-headless.{domain}"
        f":{PEER_PORT}:{ELECTION_PORT};{CLIENT_PORT}"
        for ordinal in range(replicas)
    ]


def zoo_cfg(owner: Owner, replicas: int) -> str:
    lines = [
        "tickTime=2000",
        "initLimit=10",
        "syncLimit=5",
        "dataDir=/data",
        f"clientPort={CLIENT_PORT}",
        "standaloneEnabled=false",
        "reconfigEnabled=true",
        "admin.enableServer=false",
        f"4lw.commands.whitelist={FOUR_LETTER_WORDS}",
        "autopurge.snapRetainCount=5",
        "autopurge.purgeInterval=1",
        *server_lines(owner, replicas),
    ]
    return "\n".join(lines) + "\n"


def build(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    """ConfigMap (zoo.cfg), headless and client Services, PDB and the StatefulSet."""
    zk = spec.zookeeper
    if zk.external:
        return []
    replicas = zk.managed_replicas
    name = owner.child_name(COMPONENT)
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, COMPONENT, "zookeeper", zk.version),
        "data": {"zoo.cfg": zoo_cfg(owner, replicas)},
    }
    ports = [("client", CLIENT_PORT), ("peer", PEER_PORT), ("election", ELECTION_PORT)]
    headless = build_service(owner, COMPONENT, "zookeeper", ports, headless=True)
    client = build_service(owner, COMPONENT, "zookeeper", [("client", CLIENT_PORT)])
    client["metadata"]["name"] = f"{name}-client"
    # The server id comes from the pod ordinal, so a rescheduled pod keeps its identity.
    start = (
        "echo $(( ${HOSTNAME##*-} + 1 )) > /data/myid && "
        "cp /config/zoo.cfg /data/zoo.cfg && exec zkServer.sh start-foreground /data/zoo.cfg"
    )
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(owner, COMPONENT, "zookeeper", zk.version),
        "spec": {
            "serviceName": f"{name}-headless",
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            # The operator rolls members itself, followers first, leader last.
            "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": spec.pvc_retention_policy,
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector_labels(owner, COMPONENT)},
            "template": {
                "metadata": {
                    "labels": metadata(owner, COMPONENT, "zookeeper", zk.version)["labels"]
                },
                "spec": {
                    "containers": [
                        {
                            "name": "zookeeper",
                            "image": f"{zk.image}:{zk.version}",
                            "command": ["sh", "-c", start],
                            "ports": [{"name": n, "containerPort": p} for n, p in ports],
                            "readinessProbe": {
                                "exec": {"command": ["zkServer.sh", "status", "/data/zoo.cfg"]},
                                "periodSeconds": 10,
                                "timeoutSeconds": 5,
                            },
                            "livenessProbe": {
                                "tcpSocket": {"port": CLIENT_PORT},
                                "initialDelaySeconds": 30,
                            },
                            "resources": resources(zk.resources),
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "config", "mountPath": "/config"},
                            ],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": name}}],
                },
            },
            "volumeClaimTemplates": [volume_claim("data", zk.storage)],
        },
    }
    pdb = pod_disruption_budget(owner, COMPONENT, "zookeeper")
    return [config_map, headless, client, pdb, statefulset]
