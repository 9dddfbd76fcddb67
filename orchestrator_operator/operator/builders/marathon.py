"""Marathon in HA: replicas electing a leader under their own ZooKeeper path."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.credentials import (
    MARATHON_ZK_WRAPPER,
    ZK_URL_DIR,
    secret_volume,
    zk_auth_parts,
)
from orchestrator_operator.operator.builders.masters import mesos_zk_hosts, mesos_zk_url, zk_auth
from orchestrator_operator.operator.builders.meta import (
    metadata,
    pod_defaults,
    resources,
    selector_labels,
    service,
)
from orchestrator_operator.operator.builders.zookeeper import connect_string

COMPONENT = "marathon"
PORT = 8080
LAUNCHER = "/marathon/bin/marathon"  # the mesosphere/marathon image's start script
MESOS_SECRET_DIR = "/etc/orchestrator/mesos-authentication"
# The image runs as nobody (65534): the Secret files are given its group.
NOBODY = 65534


def marathon_zk_hosts(owner: Owner, spec: MesosClusterSpec) -> str:
    return f"{connect_string(owner, spec)}{spec.marathon.zk_path}"


def marathon_args(owner: Owner, spec: MesosClusterSpec) -> list[str]:
    """Marathon's options; with ZooKeeper credentials `--master` and `--zk` come from the
    environment the start command sets (credentials.MARATHON_ZK_WRAPPER), not from argv."""
    args = []
    if not zk_auth(spec):
        args += ["--master", mesos_zk_url(owner, spec)]
        args += ["--zk", f"zk://{marathon_zk_hosts(owner, spec)}"]
    args += ["--hostname", "$(POD_IP)", "--http_port", str(PORT)]
    if authentication := spec.marathon.mesos_authentication:
        args += [
            "--mesos_authentication",
            "--mesos_authentication_principal",
            authentication.principal,
            "--mesos_authentication_secret_file",
            f"{MESOS_SECRET_DIR}/secret",
        ]
    return args


def build(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    marathon = spec.marathon
    pod_labels = metadata(owner, COMPONENT, "marathon", marathon.tag)["labels"]
    env: list[Manifest] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    ]
    # /ping answers 401 without credentials once --http_credentials is on, and a probe
    # carrying them would put the secret into the pod spec: then the port is probed.
    readiness: Manifest = {"httpGet": {"path": "/ping", "port": PORT}, "periodSeconds": 5}
    if marathon.credentials_secret_ref:
        ref = marathon.credentials_secret_ref
        env.append(
            {
                "name": "MARATHON_HTTP_CREDENTIALS",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
        readiness = {"tcpSocket": {"port": PORT}, "periodSeconds": 5}
    command = [LAUNCHER]
    mounts: list[Manifest] = []
    volumes: list[Manifest] = []
    init_containers: list[Manifest] = []
    if marathon.mesos_authentication:
        ref = marathon.mesos_authentication.secret_ref
        mounts.append({"name": "mesos-secret", "mountPath": MESOS_SECRET_DIR, "readOnly": True})
        volumes.append(secret_volume("mesos-secret", ref, "secret", 0o440))
    if auth := zk_auth(spec):
        urls = {"mesos": mesos_zk_hosts(owner, spec), "marathon": marathon_zk_hosts(owner, spec)}
        init, zk_volumes, zk_mounts = zk_auth_parts(auth, marathon.image_ref, urls, 0o440)
        init_containers.append(init)
        volumes += zk_volumes
        mounts += zk_mounts
        env.append({"name": "ZK_URL_DIR", "value": ZK_URL_DIR})
        command = ["/bin/sh", "-c", MARATHON_ZK_WRAPPER, LAUNCHER]
    container: Manifest = {
        "name": "marathon",
        "image": marathon.image_ref,
        # Explicit: an image without an entrypoint runs Marathon too.
        "command": command,
        "args": marathon_args(owner, spec),
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": readiness,
        "resources": resources(marathon.resources),
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod_spec: Manifest = {**pod_defaults(spec.service_account_name), "containers": [container]}
    if volumes:
        pod_spec["volumes"] = volumes
        pod_spec["securityContext"] = {"fsGroup": NOBODY}
    if init_containers:
        pod_spec["initContainers"] = init_containers
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, COMPONENT, "marathon", marathon.tag),
        "spec": {
            "replicas": marathon.replicas,
            "selector": {"matchLabels": selector_labels(owner, COMPONENT)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }
    return [service(owner, COMPONENT, "marathon", [("http", PORT)]), deployment]
