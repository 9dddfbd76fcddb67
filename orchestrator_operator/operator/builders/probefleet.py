"""ProbeFleet: the probe DaemonSet, the app Deployment and Service, their RBAC, the app's
Ingress NetworkPolicy."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models import PROBE_FLEET
from orchestrator_operator.models.base import image_ref
from orchestrator_operator.models.probefleet import NetworkPeer, ProbeFleetSpec
from orchestrator_operator.operator.builders.meta import metadata, resources, selector_labels

PROBE, APP = "probe", "app"
# The probe's identity toward the app: a projected ServiceAccount token for this audience,
# bound to the probe's pod (and so to its node), rotated by the kubelet; the app checks it with
# a TokenReview (monitor/app/auth.py). Ten minutes, the shortest the API server issues.
PROBE_AUDIENCE = "orchestrator-monitor"
PROBE_TOKEN_DIR = "/var/run/secrets/orchestrator.dev/monitor"
PROBE_TOKEN_SECONDS = 600


def fleet_owner(name: str, namespace: str, uid: str) -> Owner:
    return Owner(
        name=name,
        namespace=namespace,
        uid=uid,
        kind=PROBE_FLEET.kind,
        api_version=PROBE_FLEET.api_version,
        part_of="monitoring",
    )


# Where the app reads its certificate, and the probes the app's CA and their own certificate.
APP_TLS_DIR = "/etc/orchestrator/tls"
APP_CA_DIR = "/etc/orchestrator/app-ca"
PROBE_TLS_DIR = "/etc/orchestrator/probe-tls"
IMAGE_GROUP = 10001  # the image's user and group (Dockerfile)


def app_url(owner: Owner, spec: ProbeFleetSpec) -> str:
    """The app's Service; https when `app.tls` is set (its certificate names this host)."""
    scheme = "https" if spec.app.tls else "http"
    return f"{scheme}://{owner.child_name(APP)}.{owner.namespace}.svc:{spec.app.port}"


def _secret_volume(name: str, secret: str, keys: tuple[str, ...] = ()) -> Manifest:
    source: Manifest = {"secretName": secret, "defaultMode": 0o440}
    if keys:  # only these keys: the probes get the CA, never the app's private key
        source["items"] = [{"key": key, "path": key} for key in keys]
    return {"name": name, "secret": source}


def probe_tls(spec: ProbeFleetSpec) -> tuple[list[str], list[Manifest], list[Manifest]]:
    """The probe's TLS flags, mounts and volumes (none without `app.tls`)."""
    tls = spec.app.tls
    if tls is None:
        return [], [], []
    args = ["--tls-ca", f"{APP_CA_DIR}/ca.crt"]
    mounts: list[Manifest] = [{"name": "app-ca", "mountPath": APP_CA_DIR, "readOnly": True}]
    volumes = [_secret_volume("app-ca", tls.secret_name, ("ca.crt",))]
    if tls.probe_secret_name:
        args += ["--tls-client-dir", PROBE_TLS_DIR]
        mounts.append({"name": "probe-tls", "mountPath": PROBE_TLS_DIR, "readOnly": True})
        volumes.append(_secret_volume("probe-tls", tls.probe_secret_name, ("tls.crt", "tls.key")))
    return args, mounts, volumes


def cluster_role_name(owner: Owner, component: str = PROBE) -> str:
    return f"orchestrator-{component}-{owner.namespace}-{owner.name}"


# On the fleet's ClusterRoles and bindings: whose they are. Their names alone do not say
# ("orchestrator-probe-a-b-c" is fleet c in namespace a-b and fleet b-c in namespace a).
FLEET_ANNOTATION = "orchestrator.dev/probefleet"


def fleet_key(owner: Owner) -> str:
    return f"{owner.namespace}/{owner.name}"


def cluster_scoped_owner(obj: Manifest, binding: Manifest | None) -> str | None:
    """The fleet (`namespace/name`) a ClusterRole or binding of a fleet's names belongs to:
    its annotation, or, made before the annotation, its binding's ServiceAccount's namespace
    and the instance label; None when it is not a fleet's (made by someone else)."""
    meta = obj.get("metadata", {})
    annotated = (meta.get("annotations") or {}).get(FLEET_ANNOTATION)
    if annotated:
        return str(annotated)
    instance = (meta.get("labels") or {}).get("app.kubernetes.io/instance")
    subjects = (binding or {}).get("subjects") or []
    if instance and subjects and subjects[0].get("namespace"):
        return f"{subjects[0]['namespace']}/{instance}"
    return None


CLUSTER_RULES = {
    # The probe's Kubernetes collector reads pods and services.
    PROBE: [{"apiGroups": [""], "resources": ["pods", "services"],
             "verbs": ["get", "list", "watch"]}],
    # The app's platform pages read MesosClusters, ZkMigrations and MarathonApps.
    # The app checks probes' tokens (TokenReview) and people's access to its own resources
    # (SubjectAccessReview on monitor.orchestrator.dev), and records controls as Events.
    APP: [{"apiGroups": ["orchestrator.dev"],
           "resources": ["mesosclusters", "zkmigrations", "marathonapps"],
           "verbs": ["get", "list"]},
          {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
           "verbs": ["create"]},
          {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
           "verbs": ["create"]}],
}  # fmt: skip
# In the fleet's namespace only: the audit Events of container controls.
APP_NAMESPACE_RULES = [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]


def rbac(owner: Owner) -> list[Manifest]:
    """A ServiceAccount, ClusterRole and binding for the probe and for the app, nothing more.

    ClusterRoles and bindings are cluster-scoped: a namespaced owner cannot own them, so the
    handler deletes them itself when the ProbeFleet goes.
    """
    manifests: list[Manifest] = []
    for component, rules in CLUSTER_RULES.items():
        account = metadata(owner, component, f"orchestrator-{component}")
        role_meta = {k: v for k, v in account.items() if k not in ("namespace", "ownerReferences")}
        role_meta["name"] = cluster_role_name(owner, component)
        role_meta["annotations"] = {FLEET_ANNOTATION: fleet_key(owner)}
        manifests += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": account},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": role_meta, "rules": rules},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": role_meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role_meta["name"]},
                "subjects": [{"kind": "ServiceAccount", "name": account["name"],
                              "namespace": owner.namespace}],
            },
        ]  # fmt: skip
    app_account = metadata(owner, APP, "orchestrator-app")
    events = {**app_account, "name": owner.child_name("app-events")}
    manifests += [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": events,
         "rules": APP_NAMESPACE_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": events,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": events["name"]},
         "subjects": [{"kind": "ServiceAccount", "name": app_account["name"],
                       "namespace": owner.namespace}]},
    ]  # fmt: skip
    return manifests


def probe_daemonset(owner: Owner, spec: ProbeFleetSpec) -> Manifest:
    probe = spec.probe
    collectors = probe.collectors
    args = ["probe", "--app", app_url(owner, spec), "--interval", str(probe.interval_seconds),
            "--hostname", "$(NODE_NAME)", "--token-file", f"{PROBE_TOKEN_DIR}/token"]  # fmt: skip
    if collectors.pods:
        args.append("--kubernetes")  # pods on this node, with the ServiceAccount below
    if not collectors.containers:
        args.append("--no-docker")
    if not collectors.processes:
        args.append("--no-processes")
    if not collectors.connections:
        args.append("--no-connections")
    tls_args, tls_mounts, tls_volumes = probe_tls(spec)
    args += tls_args
    mounts: list[Manifest] = [
        {"name": "monitor-token", "mountPath": PROBE_TOKEN_DIR, "readOnly": True},
        *tls_mounts,
    ]
    volumes: list[Manifest] = [
        {"name": "monitor-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": PROBE_AUDIENCE, "expirationSeconds": PROBE_TOKEN_SECONDS,
            "path": "token"}}]}},
        *tls_volumes,
    ]  # fmt: skip
    if collectors.containers:
        mounts.append({"name": "docker-socket", "mountPath": "/var/run/docker.sock"})
        volumes.append(
            {"name": "docker-socket",
             "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}
        )  # fmt: skip
    # Least privilege per collector. Host processes, and the sockets and fds of host
    # processes, are only visible in the host's PID namespace; container CPU and memory are
    # read through /proc/<container pid>/cgroup, a host pid too. Pods come from the API alone.
    host_pids = collectors.processes or collectors.connections or collectors.containers
    # SYS_PTRACE and DAC_READ_SEARCH: list other users' /proc/<pid>/fd (socket owners, open
    # fd counts) and read their ns links. SYS_ADMIN: setns for sock_diag in other network
    # namespaces. Process names, command lines, CPU, memory and cgroups need none of them.
    fds = collectors.processes or collectors.connections
    wanted = (("SYS_PTRACE", fds), ("SYS_ADMIN", collectors.connections), ("DAC_READ_SEARCH", fds))
    capabilities = [name for name, needed in wanted if needed]
    # Root to read every /proc/<pid> and use the Docker socket; else the image's user (10001).
    security: Manifest = {"runAsUser": 0} if host_pids else {"runAsNonRoot": True}
    security.update(
        readOnlyRootFilesystem=True,
        allowPrivilegeEscalation=False,
        capabilities={"drop": ["ALL"], **({"add": capabilities} if capabilities else {})},
    )
    pod: Manifest = {
        "serviceAccountName": owner.child_name(PROBE),
        # The host's PID namespace only for the collectors that read host /proc (above).
        "hostPID": host_pids,
        # Always: the report's host addresses are the interfaces of the probe's network
        # namespace, which must be the host's.
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "tolerations": [t.model_dump(by_alias=True, exclude_none=True) for t in probe.tolerations]
        or [{"operator": "Exists"}],  # a probe belongs on every node, tainted ones too
        "containers": [
            {
                "name": "probe",
                "image": image_ref(probe.image, probe.version, probe.digest),
                "args": args,
                "env": [
                    {
                        "name": "NODE_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                    },
                ],
                "resources": resources(probe.resources)
                or {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                # The least that works for the collectors switched on (see above); with all
                # of them: root, SYS_PTRACE, DAC_READ_SEARCH and SYS_ADMIN, nothing else.
                "securityContext": security,
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    # RuntimeDefault: Docker's and containerd's default profiles allow setns to a process
    # holding CAP_SYS_ADMIN (tests/integration/test_delivery_image.py runs the probe so)
    pod["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if tls_volumes:
        pod["securityContext"]["fsGroup"] = IMAGE_GROUP  # the mounted keys, mode 0440
    if probe.node_selector:
        pod["nodeSelector"] = dict(probe.node_selector)
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata(owner, PROBE, "orchestrator-probe", probe.version),
        "spec": {
            "selector": {"matchLabels": selector_labels(owner, PROBE)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": metadata(owner, PROBE, "orchestrator-probe")["labels"]},
                "spec": pod,
            },
        },
    }


def app_workload(owner: Owner, spec: ProbeFleetSpec) -> list[Manifest]:
    app = spec.app
    # Kubernetes identities: the probes' pod-bound tokens, people through RBAC on
    # monitor.orchestrator.dev (docs/security.md); no shared token.
    args = ["app", "--listen", "0.0.0.0", "--port", str(app.port), "--identities", "kubernetes",
            "--probe-service-account", f"{owner.namespace}:{owner.child_name(PROBE)}",
            "--audience", PROBE_AUDIENCE]  # fmt: skip
    if app.metrics_auth:
        args.append("--metrics-auth")
    env: list[Manifest] = [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    mounts: list[Manifest] = []
    volumes: list[Manifest] = []
    health: Manifest = {"httpGet": {"path": "/healthz", "port": app.port}}
    port_name = "http"
    if app.tls is not None:
        args += ["--tls-dir", APP_TLS_DIR]
        if app.tls.client_auth != "none":
            args += ["--tls-client-auth", app.tls.client_auth]
        mounts.append({"name": "tls", "mountPath": APP_TLS_DIR, "readOnly": True})
        volumes.append(_secret_volume("tls", app.tls.secret_name))
        port_name = "https"
        # The kubelet has no client certificate: with mutual TLS required it checks the port.
        health = (
            {"tcpSocket": {"port": app.port}}
            if app.tls.client_auth == "required"
            else {"httpGet": {"path": "/healthz", "port": app.port, "scheme": "HTTPS"}}
        )
    deployment: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, APP, "orchestrator-monitoring-app", app.version),
        "spec": {
            "replicas": app.replicas,
            "selector": {"matchLabels": selector_labels(owner, APP)},
            "template": {
                "metadata": {
                    "labels": metadata(owner, APP, "orchestrator-monitoring-app")["labels"]
                },
                "spec": {
                    "serviceAccountName": owner.child_name(APP),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                        # the mounted certificate's key, mode 0440, readable by the app's group
                        **({"fsGroup": IMAGE_GROUP} if volumes else {}),
                    },
                    "containers": [
                        {
                            "name": "app",
                            "image": image_ref(app.image, app.version, app.digest),
                            "args": args,
                            "env": env,
                            "ports": [{"name": port_name, "containerPort": app.port}],
                            "readinessProbe": {**health, "periodSeconds": 5},
                            "livenessProbe": {**health, "initialDelaySeconds": 10},
                            "resources": resources(app.resources)
                            or {"requests": {"cpu": "200m", "memory": "256Mi"}},
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            **({"volumeMounts": mounts} if mounts else {}),
                        }
                    ],
                    **({"volumes": volumes} if volumes else {}),
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, APP, "orchestrator-monitoring-app"),
        "spec": {
            "type": app.service_type,
            "selector": selector_labels(owner, APP),
            "ports": [{"name": port_name, "port": app.port, "targetPort": app.port}],
        },
    }
    return [deployment, service]


ANYWHERE = ("0.0.0.0/0", "::/0")


def _peer(peer: NetworkPeer) -> Manifest:
    """A NetworkPolicy peer as the user wrote it (an empty selector stays `{}`)."""
    dumped: Manifest = peer.model_dump(by_alias=True, exclude_defaults=True)
    return dumped


def app_network_policy(owner: Owner, spec: ProbeFleetSpec) -> list[Manifest]:
    """The app's Ingress NetworkPolicy (none with `app.networkPolicy.enabled: false`).

    Who reaches the app's one port (the UI, the API, the probes' ingest and control
    WebSocket and /metrics are all served there, `monitor/app/server.py`):

    - the probes: they always run with the node's network (the report's addresses are the
      host's), so their connections come from the nodes' addresses, `nodeCidrs`; the kubelet's
      readiness and liveness checks come from the node too;
    - the operator (`operatorNamespace`): its ProbeFleet timer reads `/healthz` for the
      number of reporting probes (`operator/probefleet/observe.py`);
    - Prometheus (`monitoringNamespaceLabels`, the label the operator's own policy and the
      chart use): `/metrics` has no port of its own;
    - the UI's and API's users (`allowFrom`; unset: the pods of the fleet's namespace, so an
      ingress controller elsewhere must be named). `kubectl port-forward` enters the pod's
      network namespace through the kubelet and is not subject to the policy.
    """
    policy = spec.app.network_policy
    if not policy.enabled:
        return []
    port = [{"port": spec.app.port, "protocol": "TCP"}]
    nodes = [{"ipBlock": {"cidr": cidr}} for cidr in policy.node_cidrs or ANYWHERE]
    operator = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": policy.operator_namespace}
        }
    }
    ingress: list[Manifest] = [
        {"from": nodes, "ports": port},
        {"from": [operator], "ports": port},
    ]
    if policy.monitoring_namespace_labels:
        prometheus = {
            "namespaceSelector": {"matchLabels": dict(policy.monitoring_namespace_labels)}
        }
        ingress.append({"from": [prometheus], "ports": port})
    users = (
        [{"podSelector": {}}]
        if policy.allow_from is None
        else [_peer(peer) for peer in policy.allow_from]
    )
    if users:
        ingress.append({"from": users, "ports": port})
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata(owner, APP, "orchestrator-network-policy"),
            "spec": {
                "podSelector": {"matchLabels": selector_labels(owner, APP)},
                "policyTypes": ["Ingress"],
                "ingress": ingress,
            },
        }
    ]


def build_children(owner: Owner, spec: ProbeFleetSpec) -> list[Manifest]:
    """Every child; no shared token: probes and people use Kubernetes identities."""
    return [
        *rbac(owner),
        *app_workload(owner, spec),
        probe_daemonset(owner, spec),
        *app_network_policy(owner, spec),
    ]


def stale_children(owner: Owner, spec: ProbeFleetSpec) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of what an earlier spec may have made and this one does not
    want: the app's NetworkPolicy once `app.networkPolicy.enabled` is false."""
    if spec.app.network_policy.enabled:
        return []
    return [("networking.k8s.io/v1", "NetworkPolicy", owner.child_name(APP))]
