"""The optional addons of a MesosCluster: Mesos-DNS and marathon-lb."""

from __future__ import annotations

import hashlib
import json

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.credentials import secret_volume
from orchestrator_operator.operator.builders.marathon import COMPONENT as MARATHON_COMPONENT
from orchestrator_operator.operator.builders.marathon import PORT as MARATHON_PORT
from orchestrator_operator.operator.builders.masters import COMPONENT as MASTERS_COMPONENT
from orchestrator_operator.operator.builders.masters import PORT as MASTER_PORT
from orchestrator_operator.operator.builders.masters import mesos_zk_url
from orchestrator_operator.operator.builders.meta import (
    metadata,
    pod_defaults,
    pod_disruption_budget,
    resources,
    selector_labels,
)

MESOS_DNS = "mesos-dns"
DNS_PORT, DNS_HTTP_PORT = 53, 8123
CONFIG_DIR = "/config"

MARATHON_LB = "marathon-lb"
HTTP_PORT, HTTPS_PORT, STATS_PORT = 80, 443, 9090


def mesos_dns_config(
    owner: Owner, spec: MesosClusterSpec, masters_component: str = MASTERS_COMPONENT
) -> Manifest:
    """config.json: the leader from ZooKeeper, the masters Service as the fallback."""
    dns = spec.addons.mesos_dns
    config: Manifest = {
        "zk": mesos_zk_url(owner, spec),
        "masters": [f"{owner.child_name(masters_component)}.{owner.namespace}.svc:{MASTER_PORT}"],
        "refreshSeconds": dns.refresh_seconds,
        "ttl": dns.refresh_seconds,
        "domain": dns.domain,
        "port": DNS_PORT,
        "timeout": 5,
        "listener": "0.0.0.0",
        "dnson": True,
        "httpon": True,
        "httpport": DNS_HTTP_PORT,
        "externalon": True,
        "SOAMname": f"ns1.{dns.domain}",
        "SOARname": f"root.ns1.{dns.domain}",
        "IPSources": ["netinfo", "mesos", "host"],
    }
    if dns.resolvers:  # none: Mesos-DNS forwards to the nameserver of its resolv.conf
        config["resolvers"] = list(dns.resolvers)
    return config


def mesos_dns(
    owner: Owner, spec: MesosClusterSpec, masters_component: str = MASTERS_COMPONENT
) -> list[Manifest]:
    """ConfigMap (config.json), Service (53 udp/tcp, 8123) and Deployment."""
    dns = spec.addons.mesos_dns
    name = owner.child_name(MESOS_DNS)
    config = json.dumps(mesos_dns_config(owner, spec, masters_component), indent=2) + "\n"
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, MESOS_DNS, MESOS_DNS, dns.version),
        "data": {"config.json": config},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, MESOS_DNS, MESOS_DNS),
        "spec": {
            "selector": selector_labels(owner, MESOS_DNS),
            "ports": [
                {"name": "dns-udp", "port": DNS_PORT, "targetPort": DNS_PORT, "protocol": "UDP"},
                {"name": "dns-tcp", "port": DNS_PORT, "targetPort": DNS_PORT, "protocol": "TCP"},
                {"name": "http", "port": DNS_HTTP_PORT, "targetPort": DNS_HTTP_PORT},
            ],
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, MESOS_DNS, MESOS_DNS, dns.version),
        "spec": {
            "replicas": dns.replicas,
            "selector": {"matchLabels": selector_labels(owner, MESOS_DNS)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {
                    "labels": metadata(owner, MESOS_DNS, MESOS_DNS, dns.version)["labels"],
                    # A changed config.json rolls the pods (Mesos-DNS reads it once).
                    "annotations": {"orchestrator.dev/config-hash": _digest(config)},
                },
                "spec": {
                    **pod_defaults(spec.service_account_name),
                    "containers": [
                        {
                            "name": MESOS_DNS,
                            "image": dns.image_ref,
                            "command": ["/mesos-dns"],
                            "args": [f"-config={CONFIG_DIR}/config.json"],
                            "ports": [
                                {"name": "dns-udp", "containerPort": DNS_PORT, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"},
                                {"name": "http", "containerPort": DNS_HTTP_PORT},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/v1/version", "port": DNS_HTTP_PORT},
                                "periodSeconds": 10,
                            },
                            "resources": resources(dns.resources),
                            "volumeMounts": [
                                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": name}}],
                },
            },
        },
    }
    return [config_map, service, deployment]


def marathon_url(owner: Owner) -> str:
    """The cluster's Marathon Service (any Marathon proxies to the leader)."""
    return f"http://{owner.child_name(MARATHON_COMPONENT)}.{owner.namespace}.svc:{MARATHON_PORT}"


# Marathon's 'user:password' as a file (marathon-lb >= 1.1's --marathon-auth-credential-file,
# common.py): --auth-credentials would put the password in the process's argv.
LB_CREDENTIALS_DIR = "/etc/marathon-lb/credentials"
LB_CREDENTIALS_FILE = f"{LB_CREDENTIALS_DIR}/marathon"


def marathon_lb_args(owner: Owner, spec: MesosClusterSpec) -> list[str]:
    args = ["sse", "--marathon", marathon_url(owner), "--group", spec.addons.marathon_lb.group]
    if spec.marathon.credentials_secret_ref:
        args += ["--marathon-auth-credential-file", LB_CREDENTIALS_FILE]
    return args


def marathon_lb(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    """Service (80, 443, stats and the service ports), PDB and Deployment."""
    lb = spec.addons.marathon_lb
    fixed = [("http", HTTP_PORT), ("https", HTTPS_PORT), ("stats", STATS_PORT)]
    service_ports = range(lb.service_ports.start, lb.service_ports.end + 1)
    ports = fixed + [(f"svc-{port}", port) for port in service_ports]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, MARATHON_LB, MARATHON_LB),
        "spec": {
            "type": lb.service_type,
            "selector": selector_labels(owner, MARATHON_LB),
            "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports],
        },
    }
    env: list[Manifest] = [
        # The run script refuses to start without the ports HAProxy binds.
        {"name": "PORTS", "value": ",".join(str(p) for _, p in fixed)},
    ]
    volumes: list[Manifest] = []
    mounts: list[Manifest] = []
    if spec.marathon.credentials_secret_ref:
        volumes.append(
            secret_volume("marathon-credentials", spec.marathon.credentials_secret_ref, "marathon")
        )
        mounts.append(
            {"name": "marathon-credentials", "mountPath": LB_CREDENTIALS_DIR, "readOnly": True}
        )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, MARATHON_LB, MARATHON_LB, lb.version),
        "spec": {
            "replicas": lb.replicas,
            "selector": {"matchLabels": selector_labels(owner, MARATHON_LB)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {
                    "labels": metadata(owner, MARATHON_LB, MARATHON_LB, lb.version)["labels"]
                },
                "spec": {
                    **pod_defaults(spec.service_account_name),
                    "hostNetwork": False,
                    "containers": [
                        {
                            "name": MARATHON_LB,
                            "image": lb.image_ref,
                            "args": marathon_lb_args(owner, spec),
                            "env": env,
                            "ports": [{"name": n, "containerPort": p} for n, p in fixed],
                            "readinessProbe": {
                                "httpGet": {"path": "/_haproxy_health_check", "port": STATS_PORT},
                                "periodSeconds": 5,
                            },
                            "resources": resources(lb.resources),
                            **({"volumeMounts": mounts} if mounts else {}),
                        }
                    ],
                    **({"volumes": volumes} if volumes else {}),
                },
            },
        },
    }
    return [service, pod_disruption_budget(owner, MARATHON_LB, MARATHON_LB), deployment]


def build(
    owner: Owner, spec: MesosClusterSpec, masters_component: str = MASTERS_COMPONENT
) -> list[Manifest]:
    """The enabled addons' children; `masters_component` names the masters Service that
    Mesos-DNS falls back to (a ZkMigration may have moved the masters to `master-b`)."""
    children: list[Manifest] = []
    if spec.addons.mesos_dns.enabled:
        children += mesos_dns(owner, spec, masters_component)
    if spec.addons.marathon_lb.enabled:
        children += marathon_lb(owner, spec)
    return children


def all_enabled(spec: MesosClusterSpec) -> MesosClusterSpec:
    """The same spec with every addon enabled: every object an addon can have."""
    addons = spec.addons.model_copy(
        update={
            "mesos_dns": spec.addons.mesos_dns.model_copy(update={"enabled": True}),
            "marathon_lb": spec.addons.marathon_lb.model_copy(update={"enabled": True}),
        }
    )
    return spec.model_copy(update={"addons": addons})


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
