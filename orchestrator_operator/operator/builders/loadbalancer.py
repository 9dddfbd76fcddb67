"""The load balancer of a MesosCluster (`spec.loadBalancer`, docs/loadbalancer.md): a
Deployment `<cluster>-lb` running HAProxy and `orchestrator lb` side by side, its Service,
and a ServiceAccount whose Role reads only ConfigMaps and EndpointSlices of the namespace."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.base import image_ref
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.credentials import (
    secret_volume,
    zk_auth_parts,
    zk_url_file,
)
from orchestrator_operator.operator.builders.marathon import marathon_zk_hosts
from orchestrator_operator.operator.builders.masters import zk_auth
from orchestrator_operator.operator.builders.meta import metadata, resources, selector_labels

COMPONENT = "lb"
RUN_DIR = "/var/run/lb"
TLS_DIR = "/etc/orchestrator/lb-tls"
MARATHON_CREDENTIALS_DIR = "/etc/orchestrator/marathon"
# Unprivileged container ports (the official image runs HAProxy as a non-root user); the
# Service maps 80 and 443 onto them.
HTTP_PORT, HTTPS_PORT, STATS_PORT, METRICS_PORT = 8080, 8443, 9090, 9091
NOBODY = 65534
# The haproxy container waits for the lb's first config, then runs HAProxy's master; the
# lb reloads it through the master socket (`reload`).
HAPROXY_START = (
    f"until [ -s {RUN_DIR}/haproxy.cfg ]; do sleep 0.2; done;"
    f" exec haproxy -W -db -S {RUN_DIR}/master.sock,mode,600 -f {RUN_DIR}/haproxy.cfg"
)


def lb_args(owner: Owner, spec: MesosClusterSpec) -> list[str]:
    lb = spec.load_balancer
    zk = zk_url_file("marathon") if zk_auth(spec) else f"zk://{marathon_zk_hosts(owner, spec)}"
    args = [
        "lb",
        f"--marathon-zk={zk}",
        f"--namespace={owner.namespace}",
        f"--cluster={owner.name}",
        f"--run-dir={RUN_DIR}",
        f"--http-port={HTTP_PORT}",
        f"--https-port={HTTPS_PORT}",
        f"--stats-port={STATS_PORT}",
        f"--metrics-port={METRICS_PORT}",
    ]
    args += [f"--group={group}" for group in lb.groups]
    if lb.tls_secret_ref is not None:
        args.append(f"--tls-dir={TLS_DIR}")
    if spec.marathon.credentials_secret_ref is not None:
        args.append(f"--marathon-credentials-file={MARATHON_CREDENTIALS_DIR}/credentials")
    return args


def rbac(owner: Owner) -> list[Manifest]:
    """ServiceAccount, Role (read ConfigMaps and EndpointSlices, nothing else), RoleBinding."""
    name = owner.child_name(COMPONENT)
    meta = metadata(owner, COMPONENT, "load-balancer")
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
        },
    ]


def build(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    """Nothing unless `spec.loadBalancer.enabled`."""
    lb = spec.load_balancer
    if not lb.enabled:
        return []
    name = owner.child_name(COMPONENT)
    meta = metadata(owner, COMPONENT, "load-balancer", lb.version)
    run_mount = {"name": "run", "mountPath": RUN_DIR}
    volumes: list[Manifest] = [{"name": "run", "emptyDir": {"medium": "Memory"}}]
    lb_mounts: list[Manifest] = [run_mount]
    init_containers: list[Manifest] = []
    lb_image = image_ref(lb.lb_image, lb.lb_version, None)
    if lb.tls_secret_ref is not None:
        volumes.append(
            {
                "name": "tls",
                "secret": {"secretName": lb.tls_secret_ref.name, "defaultMode": 0o440},
            }
        )
        lb_mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
    if spec.marathon.credentials_secret_ref is not None:
        ref = spec.marathon.credentials_secret_ref
        volumes.append(secret_volume("marathon-credentials", ref, "credentials", 0o440))
        mount = {"name": "marathon-credentials", "mountPath": MARATHON_CREDENTIALS_DIR}
        lb_mounts.append({**mount, "readOnly": True})
    if auth := zk_auth(spec):
        urls = {"marathon": marathon_zk_hosts(owner, spec)}
        init, zk_volumes, zk_mounts = zk_auth_parts(auth, lb_image, urls, 0o440)
        init_containers.append(init)
        volumes += zk_volumes
        lb_mounts += zk_mounts
    haproxy: Manifest = {
        "name": "haproxy",
        "image": lb.image_ref,
        "command": ["/bin/sh", "-c", HAPROXY_START],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "https", "containerPort": HTTPS_PORT},
            {"name": "stats", "containerPort": STATS_PORT},
        ],
        "volumeMounts": [run_mount],
        "resources": resources(lb.resources),
        "securityContext": {"readOnlyRootFilesystem": True},
    }
    controller: Manifest = {
        "name": "lb",
        "image": lb_image,
        "args": lb_args(owner, spec),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "volumeMounts": lb_mounts,
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": METRICS_PORT},
            "periodSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": METRICS_PORT},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "96Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {"readOnlyRootFilesystem": True},
    }
    pod_spec: Manifest = {
        "serviceAccountName": name,
        "automountServiceAccountToken": True,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "fsGroup": NOBODY,
        },
        "containers": [haproxy, controller],
        "volumes": volumes,
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    ports = [
        {"name": "http", "port": 80, "targetPort": HTTP_PORT},
        {"name": "https", "port": 443, "targetPort": HTTPS_PORT},
        {"name": "stats", "port": STATS_PORT, "targetPort": STATS_PORT},
        {"name": "lb-metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT},
    ]
    ports += [
        {"name": f"svc-{port}", "port": port, "targetPort": port}
        for port in range(lb.service_ports.start, lb.service_ports.end + 1)
    ]
    service: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, COMPONENT, "load-balancer"),
        "spec": {
            "type": lb.service_type,
            "selector": selector_labels(owner, COMPONENT),
            "ports": ports,
        },
    }
    deployment: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": lb.replicas,
            "selector": {"matchLabels": selector_labels(owner, COMPONENT)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": meta["labels"]},
                "spec": pod_spec,
            },
        },
    }
    return [*rbac(owner), service, deployment]


def enabled(spec: MesosClusterSpec) -> MesosClusterSpec:
    """`spec` with the load balancer on (to list what an earlier spec may have made)."""
    lb = spec.load_balancer.model_copy(update={"enabled": True})
    return spec.model_copy(update={"load_balancer": lb})
