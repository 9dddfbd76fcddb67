"""A MarathonApp's `spec.kubernetes` as a Deployment and a Service (issue 21, the off-ramp).

Pure: spec in, manifests out. What Marathon gives a task, the pod gets:

- `app.cpus`/`app.mem` -> the container's requests and limits (equal: a Mesos task gets what
  it asked for and its memory is capped there);
- `app.instances` (or `kubernetes.replicas`) -> replicas; `upgradeStrategy` ->
  `rollingUpdate`: maxUnavailable = 1 - minimumHealthCapacity, maxSurge =
  maximumOverCapacity, as percentages (Kubernetes rounds the first down and the second up,
  as Marathon keeps at least ceil(minimumHealthCapacity x instances) tasks healthy);
- ports (`portDefinitions`, else `container.docker.portMappings`) -> container ports and the
  Service's ports, named after the Marathon port name, else `port0`, `port1`, ...; the port a
  process listens on is the mapping's containerPort, else the definition's port, else
  8080 + its index; the env gets `PORT0..n`, `PORT` (= PORT0), `PORTS` and `HOST` (the pod's
  IP) as Marathon gives them (Marathon's docs, "Task Environment Variables");
- `env`: values as they are; `{secretKeyRef: {name, key}}` stays a secretKeyRef (the value is
  never copied);
- the first health check -> a readinessProbe (Marathon sends traffic to healthy tasks), a
  startupProbe covering `gracePeriodSeconds` and, when `maxConsecutiveFailures` > 0, a
  livenessProbe (Marathon kills a task after that many failures): HTTP/MESOS_HTTP ->
  httpGet, HTTPS/MESOS_HTTPS -> httpGet with scheme HTTPS, TCP/MESOS_TCP -> tcpSocket,
  COMMAND -> exec `sh -c <value>`;
- `labels` -> the pod's labels where they are valid Kubernetes labels, else annotations
  `marathon.orchestrator.dev/label.<key>`;
- constraints: `hostname` is the node label kubernetes.io/hostname, any other field a node
  label of that name; `F:UNIQUE` -> required pod anti-affinity over topology key F;
  `F:CLUSTER:v` and `F:IS:v` -> nodeSelector; `F:LIKE:a|b` / `F:UNLIKE:a|b` (literal
  alternatives only) -> node affinity In / NotIn; `F:GROUP_BY` -> a topology spread
  constraint (maxSkew 1, ScheduleAnyway: softer than Marathon's); the others (MAX_PER,
  CLUSTER without a value, regular expressions) are left out: the readiness report
  (operator/marathonapp/readiness.py) names them for a person;
- the pod and container are hardened: RuntimeDefault seccomp, no privilege escalation, every
  capability dropped, no ServiceAccount token, no service links. The image's user is kept
  (a Marathon Docker task ran as the image's user too).

Names: the Deployment and the Service are the MarathonApp's name, labelled
`orchestrator.dev/marathonapp: <name>` (also the selector) and managed-by orchestrator, with a
controller reference to the MarathonApp.
"""

from __future__ import annotations

import math
import re

from orchestrator_operator.common.manifest import Manifest, Owner, owner_reference
from orchestrator_operator.models import MARATHON_APP
from orchestrator_operator.models.marathonapp import (
    EnvSecret,
    HealthCheck,
    MarathonAppSpec,
)
from orchestrator_operator.operator.builders.meta import MANAGED_BY

APP_LABEL = "orchestrator.dev/marathonapp"
LABEL_ANNOTATION_PREFIX = "marathon.orchestrator.dev/label."
CONTAINER_NAME = "app"
DEFAULT_PORT = 8080
HOSTNAME_LABEL = "kubernetes.io/hostname"
_LITERALS = re.compile(r"^[A-Za-z0-9._-]+(\|[A-Za-z0-9._-]+)*$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def owner_of(name: str, namespace: str, uid: str) -> Owner:
    """The MarathonApp as the owner of its Deployment and Service."""
    return Owner(
        name=name,
        namespace=namespace,
        uid=uid,
        kind=MARATHON_APP.kind,
        api_version=MARATHON_APP.api_version,
        part_of="marathon",
    )


def is_label(key: str, value: str) -> bool:
    """A valid Kubernetes label: [prefix/]name, the value at most 63 characters."""
    prefix, _, name = key.rpartition("/")
    if prefix and not _DNS_SUBDOMAIN.match(prefix):
        return False
    return bool(_LABEL_NAME.match(name)) and bool(_LABEL_VALUE.match(value))


def _node_label(field: str) -> str:
    return HOSTNAME_LABEL if field in ("hostname", "@hostname") else field.lstrip("@")


def untranslatable(spec: MarathonAppSpec) -> list[str]:
    """What of spec.app this builder cannot build at all, in words (empty: it builds).

    Persistent volumes: a local Mesos volume has no PersistentVolumeClaim equivalent
    here. (operator/marathonapp/readiness.py's `blocking` is the full rule table the
    operator refuses by; constraints without a clean equivalent are not refused but left
    out, and that table reports them for review.)"""
    volumes = spec.app.container.volumes if spec.app.container else None
    if volumes:
        return ["persistent volumes: a local Mesos volume has no translation here"]
    return []


def translated(constraint: list[str]) -> bool:
    """Whether a constraint maps to node selection, affinity or a spread constraint."""
    field, operator = _node_label(constraint[0]), constraint[1]
    value = constraint[2] if len(constraint) == 3 else None
    if operator in ("UNIQUE", "GROUP_BY"):
        return is_label(field, "")
    if operator in ("CLUSTER", "IS") and value is not None:
        return is_label(field, value)
    if operator in ("LIKE", "UNLIKE") and value is not None and _LITERALS.match(value):
        return all(is_label(field, v) for v in value.split("|"))
    return False


def _ports(spec: MarathonAppSpec) -> list[tuple[str, int]]:
    """(name, container port) of each Marathon port, in order."""
    app = spec.app
    docker = app.container.docker if app.container else None
    chosen: list[tuple[str | None, int]] = []
    if app.port_definitions:
        chosen = [(d.name, d.port) for d in app.port_definitions]
    elif docker is not None and docker.port_mappings:
        chosen = [(m.name, m.container_port) for m in docker.port_mappings]
    taken = {port for _, port in chosen if port}
    ports: list[tuple[str, int]] = []
    for index, (name, port) in enumerate(chosen):
        if not port:  # Marathon would pick one: the first free from DEFAULT_PORT
            port = DEFAULT_PORT + index
            while port in taken:
                port += 1
            taken.add(port)
        ports.append((name or f"port{index}", port))
    return ports


def _env(spec: MarathonAppSpec, ports: list[tuple[str, int]]) -> list[Manifest]:
    env: list[Manifest] = [
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MARATHON_APP_ID", "value": spec.app.id},
    ]
    for index, (_, port) in enumerate(ports):
        env.append({"name": f"PORT{index}", "value": str(port)})
    if ports:
        env.append({"name": "PORT", "value": str(ports[0][1])})
        env.append({"name": "PORTS", "value": ",".join(str(p) for _, p in ports)})
    own = {e["name"] for e in env}
    for name, value in sorted((spec.app.env or {}).items()):
        if name in own:
            env = [e for e in env if e["name"] != name]
        if isinstance(value, EnvSecret):
            ref = value.secret_key_ref
            env.append(
                {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
            )
        else:
            env.append({"name": name, "value": value})
    return env


def _probe_action(check: HealthCheck, ports: list[tuple[str, int]]) -> Manifest:
    if check.protocol == "COMMAND":
        assert check.command is not None
        return {"exec": {"command": ["sh", "-c", check.command.value]}}
    port = ports[check.port_index or 0][1]
    if check.protocol in ("TCP", "MESOS_TCP"):
        return {"tcpSocket": {"port": port}}
    scheme = "HTTPS" if check.protocol in ("HTTPS", "MESOS_HTTPS") else "HTTP"
    return {"httpGet": {"path": check.path or "/", "port": port, "scheme": scheme}}


def probes(check: HealthCheck, ports: list[tuple[str, int]]) -> Manifest:
    """readinessProbe, startupProbe and (maxConsecutiveFailures > 0) livenessProbe."""
    action = _probe_action(check, ports)
    timing = {"periodSeconds": check.interval_seconds, "timeoutSeconds": check.timeout_seconds}
    result: Manifest = {
        "readinessProbe": {**action, **timing, "failureThreshold": 1, "successThreshold": 1},
        # Failures within the grace period do not count (Marathon's gracePeriodSeconds).
        "startupProbe": {
            **action,
            **timing,
            "failureThreshold": max(
                1, math.ceil(check.grace_period_seconds / check.interval_seconds)
            ),
        },
    }
    if check.max_consecutive_failures > 0:
        result["livenessProbe"] = {
            **action,
            **timing,
            "failureThreshold": check.max_consecutive_failures,
        }
    return result


def scheduling(spec: MarathonAppSpec, selector: dict[str, str]) -> Manifest:
    """nodeSelector, affinity and topologySpreadConstraints from the constraints that map."""
    node_selector: dict[str, str] = {}
    anti: list[Manifest] = []
    node_terms: list[Manifest] = []
    spread: list[Manifest] = []
    for constraint in [c for c in spec.app.constraints or [] if translated(c)]:
        field, operator = _node_label(constraint[0]), constraint[1]
        value = constraint[2] if len(constraint) == 3 else None
        if operator == "UNIQUE":
            anti.append({"labelSelector": {"matchLabels": selector}, "topologyKey": field})
        elif operator in ("CLUSTER", "IS") and value is not None:
            node_selector[field] = value
        elif operator in ("LIKE", "UNLIKE") and value and _LITERALS.match(value):
            node_terms.append(
                {
                    "key": field,
                    "operator": "In" if operator == "LIKE" else "NotIn",
                    "values": value.split("|"),
                }
            )
        elif operator == "GROUP_BY":
            spread.append(
                {
                    "maxSkew": 1,
                    "topologyKey": field,
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": selector},
                }
            )
    node_selector.update((spec.kubernetes.node_selector if spec.kubernetes else None) or {})
    result: Manifest = {}
    if node_selector:
        result["nodeSelector"] = dict(sorted(node_selector.items()))
    affinity: Manifest = {}
    if node_terms:
        affinity["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": node_terms}]
            }
        }
    if anti:
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": anti}
    if affinity:
        result["affinity"] = affinity
    if spread:
        result["topologySpreadConstraints"] = spread
    return result


def rolling_update(spec: MarathonAppSpec) -> Manifest:
    """Marathon's upgradeStrategy as the Deployment's surge and unavailability."""
    strategy = spec.app.upgrade_strategy
    unavailable = round((1 - strategy.minimum_health_capacity) * 100)
    surge = round(strategy.maximum_over_capacity * 100)
    if unavailable == 0 and surge == 0:  # Kubernetes refuses both 0: start one more
        surge = 1
        return {"maxUnavailable": 0, "maxSurge": surge}
    return {"maxUnavailable": f"{unavailable}%", "maxSurge": f"{surge}%"}


def image_of(spec: MarathonAppSpec) -> str:
    docker = spec.app.container.docker if spec.app.container else None
    image = spec.kubernetes.image if spec.kubernetes else None
    image = image or (docker.image if docker else None)
    if image is None:  # the model refuses it (KUBERNETES_IMAGE_MESSAGE)
        raise ValueError("spec.kubernetes.image is required for an app without a Docker image")
    return image


def _labels(owner: Owner) -> dict[str, str]:
    return {APP_LABEL: owner.name, "app.kubernetes.io/managed-by": MANAGED_BY}


def deployment(owner: Owner, spec: MarathonAppSpec) -> Manifest:
    kubernetes = spec.kubernetes
    ports = _ports(spec)
    selector = {APP_LABEL: owner.name}
    pod_labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for key, value in sorted((spec.app.labels or {}).items()):
        if is_label(key, value) and key not in (APP_LABEL, "app.kubernetes.io/managed-by"):
            pod_labels[key] = value
        else:
            annotations[LABEL_ANNOTATION_PREFIX + key.replace("/", "_")[:200]] = value
    container: Manifest = {
        "name": CONTAINER_NAME,
        "image": image_of(spec),
        "env": _env(spec, ports),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if kubernetes is not None and kubernetes.command:
        container["command"] = list(kubernetes.command)
    elif spec.app.cmd is not None:
        container["command"] = ["sh", "-c", spec.app.cmd]
    if spec.app.args is not None and not (kubernetes and kubernetes.command):
        container["args"] = list(spec.app.args)
    resources: dict[str, str] = {"cpu": f"{max(1, round(spec.app.cpus * 1000))}m"}
    if spec.app.mem > 0:
        resources["memory"] = f"{max(1, math.ceil(spec.app.mem))}Mi"
    container["resources"] = {"requests": dict(resources), "limits": dict(resources)}
    if ports:
        container["ports"] = [
            {
                "containerPort": port,
                "protocol": "TCP",
                **({"name": name} if len(name) <= 15 else {}),
            }
            for name, port in ports
        ]
    if spec.app.health_checks:
        container.update(probes(spec.app.health_checks[0], ports))
    pod: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        **scheduling(spec, selector),
    }
    if spec.app.task_kill_grace_period_seconds is not None:
        pod["terminationGracePeriodSeconds"] = spec.app.task_kill_grace_period_seconds
    template_meta: Manifest = {"labels": {**pod_labels, **_labels(owner)}}
    if annotations:
        template_meta["annotations"] = annotations
    replicas = kubernetes.replicas if kubernetes and kubernetes.replicas is not None else None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": _labels(owner),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "replicas": spec.app.instances if replicas is None else replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling_update(spec)},
            "template": {"metadata": template_meta, "spec": pod},
        },
    }


def service(owner: Owner, spec: MarathonAppSpec) -> Manifest | None:
    """The Service in front of the pods; None for an app without ports."""
    ports = _ports(spec)
    if not ports:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": _labels(owner),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {APP_LABEL: owner.name},
            "ports": [
                {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}
                for name, port in ports
            ],
        },
    }


def build(owner: Owner, spec: MarathonAppSpec) -> list[Manifest]:
    """The Deployment and (when the app has ports) the Service of `spec.kubernetes`.

    Raises ValueError naming what does not translate (see `untranslatable`)."""
    problems = untranslatable(spec)
    if problems:
        raise ValueError("; ".join(problems))
    built = [deployment(owner, spec)]
    svc = service(owner, spec)
    if svc is not None:
        built.append(svc)
    return built
