"""Pure: how one Marathon app translates to Kubernetes, and what needs a person.

`assess(app)` takes a Marathon app as JSON, camelCase as `/v2/apps` answers it or as
`spec.app` of a MarathonApp holds it (`definition_json(spec.app)`), and returns one
`Finding` per feature that matters for the move, each in words, and a verdict:

- `Ready`: every feature has a Kubernetes equivalent the translation builds by itself;
- `NeedsReview`: it translates, but something only a person can judge changes on the way
  (a constraint without a clean affinity equivalent, a host port, a command health check,
  a Mesos-only setting that is dropped, a secret to put in a Secret ...);
- `Blocked`: the translation cannot run it as it is (persistent volumes, fetch URIs, a
  custom executor, a command run by the command executor with no image ...): the builder
  refuses it (`blocking`) until a person changes the app or sets what is missing
  (`spec.kubernetes.image`, which answers a missing image and fetched files).

The same table serves `orchestrator marathon plan`, `status.readiness` of each MarathonApp,
the UI, and the Kubernetes builder (which refuses what `blocking` returns).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    READY = "Ready"
    NEEDS_REVIEW = "NeedsReview"
    BLOCKED = "Blocked"


class Severity(StrEnum):
    INFO = "Info"  # translated by itself; said so the reader knows how
    REVIEW = "Review"  # translated, but a person must check or decide
    BLOCKER = "Blocker"  # not translated until a person changes something


class Feature(StrEnum):
    """The features the report names (the issue's words where it has them)."""

    CONSTRAINT = "constraint"  # mapped to affinity / node selector where clean
    CONSTRAINT_NO_AFFINITY = "constraint without a clean affinity equivalent"
    PERSISTENT_VOLUME = "persistent volume"
    EXTERNAL_VOLUME = "external volume"
    HOST_PATH_VOLUME = "host path volume"
    HOST_PORT = "host port"
    EXECUTOR = "executor-specific feature"
    MESOS_ONLY = "Mesos-only feature"
    COMMAND_HEALTH_CHECK = "command health check"
    HEALTH_CHECK = "health check"
    FETCH_URI = "fetch URI"
    ENV_SECRET = "secret in env"
    MARATHON_SECRET = "Marathon secret"
    DEPENDENCY = "dependency"
    USER = "user"
    NETWORK = "container network"
    GPU = "GPUs"
    READINESS_CHECK = "readiness check"
    PRIVILEGED = "privileged or docker parameters"
    # Import only (offramp/manifest.py): no manifest possible, or applying it changes the app.
    NOT_IMPORTABLE = "not importable"
    ADOPTION = "adoption changes the app"


@dataclass(frozen=True)
class Finding:
    feature: Feature
    severity: Severity
    message: str  # in words: what Marathon does, what Kubernetes gets, what a person does

    def as_json(self) -> dict[str, str]:
        return {
            "feature": str(self.feature),
            "severity": str(self.severity),
            "message": self.message,
        }


@dataclass(frozen=True)
class Readiness:
    app_id: str
    verdict: Verdict
    findings: tuple[Finding, ...]

    def as_status(self) -> dict[str, Any]:
        """`status.readiness` of a MarathonApp (and one row of `plan --json`)."""
        return {
            "appId": self.app_id,
            "verdict": str(self.verdict),
            "findings": [f.as_json() for f in self.findings],
            "summary": summary(self),
        }


# Environment names whose value is a secret (written to a Secret, never into git).
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PWD$|SECRET|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|ACCESS_?KEY|AUTH|CERT|_KEY$|^KEY$|DSN)",
    re.IGNORECASE,
)
# A value with credentials in it: scheme://user:password@host.
SECRET_VALUE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_REGEX_CHARS = re.compile(r"[\\^$.|?*+()\[\]{}]")
HOSTNAME_FIELDS = ("hostname", "@hostname")


def looks_secret(name: str, value: str) -> bool:
    """An env entry that must not be written into git in clear."""
    return bool(SECRET_NAME.search(name) or SECRET_VALUE.match(value))


def _node_label(field: str) -> str:
    return "kubernetes.io/hostname" if field in HOSTNAME_FIELDS else field.lstrip("@")


def _constraint(c: list[Any]) -> Finding:
    field = str(c[0]) if c else ""
    op = str(c[1]) if len(c) > 1 else ""
    value = str(c[2]) if len(c) > 2 else None
    shown = ":".join(str(x) for x in c)
    label = _node_label(field)
    literal = value is not None and not _REGEX_CHARS.search(value)
    clean = Severity.INFO
    if op == "UNIQUE":
        if field in HOSTNAME_FIELDS:
            return Finding(
                Feature.CONSTRAINT,
                clean,
                f"{shown}: required pod anti-affinity on {label} (one pod per node)",
            )
        return Finding(Feature.CONSTRAINT, clean,
                       f"{shown}: required pod anti-affinity on the node label {label} (nodes must"
                       f" carry it as the Mesos agents carry the attribute)")  # fmt: skip
    if op in ("IS", "CLUSTER") and value is not None:
        return Finding(
            Feature.CONSTRAINT,
            clean,
            f"{shown}: node selector {label}={value} (nodes must carry the label)",
        )
    if op == "LIKE" and literal:
        return Finding(
            Feature.CONSTRAINT,
            clean,
            f"{shown}: node selector {label}={value} (nodes must carry the label)",
        )
    if op == "UNLIKE" and literal:
        return Finding(Feature.CONSTRAINT, clean, f"{shown}: node affinity {label} NotIn [{value}]")
    if op == "CLUSTER":
        return Finding(
            Feature.CONSTRAINT_NO_AFFINITY,
            Severity.REVIEW,
            f"{shown}: all tasks on one value of {field}, whichever the first task"
            " got: Kubernetes has no such rule; pick the value for a node selector",
        )
    if op in ("LIKE", "UNLIKE"):
        return Finding(Feature.CONSTRAINT_NO_AFFINITY, Severity.REVIEW,
                       f"{shown}: a regular expression over {field}: node affinity takes a list"
                       f" of values, not a pattern; write the values it matches (In/NotIn on"
                       f" {label})")  # fmt: skip
    if op == "GROUP_BY":
        return Finding(
            Feature.CONSTRAINT_NO_AFFINITY,
            Severity.REVIEW,
            f"{shown}: spread evenly over {field}: becomes a topology spread"
            f" constraint on {label} with maxSkew 1 (soft, unlike Marathon's)",
        )
    if op == "MAX_PER":
        return Finding(
            Feature.CONSTRAINT_NO_AFFINITY,
            Severity.REVIEW,
            f"{shown}: at most {value} tasks per value of {field}: Kubernetes has no"
            f" per-domain maximum (a topology spread constraint only bounds the skew)",
        )
    return Finding(
        Feature.CONSTRAINT_NO_AFFINITY,
        Severity.REVIEW,
        f"{shown}: an operator Kubernetes has no equivalent for",
    )


def _container(app: Mapping[str, Any]) -> Mapping[str, Any]:
    container = app.get("container")
    return container if isinstance(container, Mapping) else {}


def _docker(app: Mapping[str, Any]) -> Mapping[str, Any]:
    docker = _container(app).get("docker")
    return docker if isinstance(docker, Mapping) else {}


def image_of(app: Mapping[str, Any]) -> str | None:
    image = _docker(app).get("image")
    return str(image) if image else None


def network_of(app: Mapping[str, Any]) -> str:
    """HOST, BRIDGE or USER: the legacy docker.network, else Marathon 1.5's networks[0].mode."""
    network = _docker(app).get("network")
    if network in ("HOST", "BRIDGE", "USER"):
        return str(network)
    networks = app.get("networks")
    if isinstance(networks, list) and networks and isinstance(networks[0], Mapping):
        mode = str(networks[0].get("mode", "host")).lower()
        return {"container/bridge": "BRIDGE", "container": "USER"}.get(mode, "HOST")
    return "HOST"


def _list(app: Mapping[str, Any], key: str) -> list[Any]:
    value = app.get(key)
    return list(value) if isinstance(value, list) else []


def _ports(app: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    mappings = _list(_docker(app), "portMappings") or _list(_container(app), "portMappings")
    for m in mappings:
        if isinstance(m, Mapping) and int(m.get("hostPort") or 0) > 0:
            out.append(Finding(Feature.HOST_PORT, Severity.REVIEW,
                               f"host port {m['hostPort']} (container port"
                               f" {m.get('containerPort', 0)}): a pod gets its own address; clients"
                               " that dial the agent's port must use the Service (or the pod a"
                               " hostPort, one pod per node)"))  # fmt: skip
    if app.get("requirePorts") and network_of(app) == "HOST":
        fixed = [str(p.get("port")) for p in _list(app, "portDefinitions")
                 if isinstance(p, Mapping) and int(p.get("port") or 0) > 0]  # fmt: skip
        out.append(Finding(Feature.HOST_PORT, Severity.REVIEW,
                           f"requirePorts: the task binds the agent's port(s) {', '.join(fixed)}"
                           " itself: in a pod it listens on its own address at the same port;"
                           " clients must use the Service"))  # fmt: skip
    return out


def _health(app: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for check in _list(app, "healthChecks"):
        if not isinstance(check, Mapping):
            continue
        protocol = str(check.get("protocol", "HTTP"))
        if protocol == "COMMAND":
            command = check.get("command")
            value = command.get("value") if isinstance(command, Mapping) else None
            out.append(Finding(Feature.COMMAND_HEALTH_CHECK, Severity.REVIEW,
                               f"command health check {value!r}: becomes an exec liveness probe run"
                               " inside the container; the command and what it needs must exist"
                               " in the image"))  # fmt: skip
        elif protocol in ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"):
            scheme = "HTTPS" if protocol.endswith("HTTPS") else "HTTP"
            out.append(Finding(Feature.HEALTH_CHECK, Severity.INFO,
                               f"{protocol} health check {check.get('path') or '/'}: httpGet"
                               f" liveness and readiness probes ({scheme})"))  # fmt: skip
        else:
            out.append(
                Finding(
                    Feature.HEALTH_CHECK,
                    Severity.INFO,
                    f"{protocol} health check: tcpSocket liveness and readiness probes",
                )
            )
    if _list(app, "readinessChecks"):
        out.append(
            Finding(
                Feature.READINESS_CHECK,
                Severity.INFO,
                "readiness checks: an httpGet readiness probe",
            )
        )
    return out


def _volumes(app: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for volume in _list(_container(app), "volumes"):
        if not isinstance(volume, Mapping):
            continue
        path = volume.get("containerPath")
        if isinstance(volume.get("persistent"), Mapping):
            size = volume["persistent"].get("size")
            out.append(Finding(Feature.PERSISTENT_VOLUME, Severity.BLOCKER,
                               f"persistent volume {path} ({size} MiB, a local volume on one agent,"
                               " the task resident there): needs a PersistentVolumeClaim and a"
                               " StatefulSet, and the data copied over by a person"))  # fmt: skip
        elif isinstance(volume.get("external"), Mapping):
            out.append(
                Finding(
                    Feature.EXTERNAL_VOLUME,
                    Severity.BLOCKER,
                    f"external volume {path} (a Mesos volume driver): needs a"
                    " PersistentVolume of the same storage, made by a person",
                )
            )
        elif volume.get("hostPath") is not None:
            out.append(
                Finding(
                    Feature.HOST_PATH_VOLUME,
                    Severity.BLOCKER,
                    f"host path volume {volume.get('hostPath')} at {path}: never"
                    " mounted (refused by the MarathonApp too)",
                )
            )
    return out


def _env(app: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    env = app.get("env")
    for name, value in env.items() if isinstance(env, Mapping) else []:
        if isinstance(value, Mapping) and "secret" in value:
            out.append(
                Finding(
                    Feature.MARATHON_SECRET,
                    Severity.REVIEW,
                    f"env {name} from Marathon secret {value['secret']!r} (the secrets"
                    " plugin): put the value in a Kubernetes Secret and refer to it",
                )
            )
        elif isinstance(value, Mapping) and "secretKeyRef" in value:
            ref = value["secretKeyRef"]
            where = f"{ref.get('name')}/{ref.get('key')}" if isinstance(ref, Mapping) else "?"
            out.append(
                Finding(
                    Feature.ENV_SECRET,
                    Severity.INFO,
                    f"env {name} from Secret {where}: secretKeyRef in the pod",
                )
            )
        elif isinstance(value, str) and looks_secret(str(name), value):
            out.append(
                Finding(
                    Feature.ENV_SECRET,
                    Severity.REVIEW,
                    f"env {name} looks secret and is in Marathon in clear: the import"
                    " writes a secretKeyRef; a person creates the Secret",
                )
            )
    if app.get("secrets"):
        out.append(
            Finding(
                Feature.MARATHON_SECRET,
                Severity.REVIEW,
                "secrets (Marathon's secrets plugin): each becomes a Kubernetes Secret"
                " a person creates",
            )
        )
    return out


def _mesos_only(app: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    executor = app.get("executor")
    if executor and executor != "//cmd":
        out.append(
            Finding(
                Feature.EXECUTOR,
                Severity.BLOCKER,
                f"custom executor {executor!r}: Kubernetes runs containers, not Mesos"
                " executors; the app must be packaged as an image",
            )
        )
    if app.get("residency"):
        out.append(
            Finding(
                Feature.EXECUTOR,
                Severity.BLOCKER,
                "residency (a resident task kept on its agent with its reservations):"
                " no Kubernetes equivalent short of a StatefulSet with local volumes",
            )
        )
    fetch = [str(f.get("uri")) for f in _list(app, "fetch") if isinstance(f, Mapping)]
    fetch += [str(u) for u in _list(app, "uris")]
    for uri in dict.fromkeys(fetch):
        out.append(Finding(Feature.FETCH_URI, Severity.BLOCKER,
                           f"fetch URI {uri}: the Mesos fetcher downloads it into the sandbox"
                           " before start; bake it into the image (or an init container) and"
                           " set spec.kubernetes.image"))  # fmt: skip
    if _container(app).get("type") == "MESOS" and image_of(app):
        out.append(
            Finding(
                Feature.MESOS_ONLY,
                Severity.INFO,
                "Mesos containerizer (UCR) with an image: the same image in a pod",
            )
        )
    roles = [r for r in _list(app, "acceptedResourceRoles") if r != "*"]
    if roles:
        out.append(Finding(Feature.MESOS_ONLY, Severity.REVIEW,
                           f"acceptedResourceRoles {roles}: Mesos roles and reservations have no"
                           " Kubernetes equivalent; use a node selector or taints if they"
                           " reserved nodes"))  # fmt: skip
    unreachable = app.get("unreachableStrategy")
    if isinstance(unreachable, Mapping) and any(unreachable.get(k) for k in unreachable):
        out.append(
            Finding(
                Feature.MESOS_ONLY,
                Severity.REVIEW,
                f"unreachableStrategy {dict(unreachable)} (Mesos' partition awareness):"
                " Kubernetes replaces pods of an unreachable node after its own"
                " tolerations (300 s by default); set tolerationSeconds if it matters",
            )
        )
    if _list(app, "storeUrls"):
        out.append(
            Finding(
                Feature.MESOS_ONLY,
                Severity.REVIEW,
                "storeUrls (Marathon's artifact store): no Kubernetes equivalent",
            )
        )
    if _list(app, "dependencies"):
        out.append(
            Finding(
                Feature.DEPENDENCY,
                Severity.REVIEW,
                f"dependencies {_list(app, 'dependencies')}: Marathon deploys them first;"
                " Kubernetes starts workloads in no order (the app must wait itself)",
            )
        )
    if app.get("user"):
        out.append(
            Finding(
                Feature.USER,
                Severity.REVIEW,
                f"user {app['user']!r}: the pod's securityContext takes a numeric"
                " runAsUser; a person finds the id in the image",
            )
        )
    if float(app.get("gpus") or 0) > 0:
        out.append(
            Finding(
                Feature.GPU,
                Severity.REVIEW,
                f"{app['gpus']} GPUs: needs a device plugin's resource"
                " (nvidia.com/gpu) on the nodes",
            )
        )
    if network_of(app) == "USER":
        out.append(
            Finding(
                Feature.NETWORK,
                Severity.REVIEW,
                "container (USER) network: every pod has its own address in"
                " Kubernetes; named networks and their policies are for a person",
            )
        )
    return out


def _runnable(app: Mapping[str, Any], image: str | None) -> list[Finding]:
    if image_of(app) or image:
        return []
    return [Finding(Feature.EXECUTOR, Severity.BLOCKER,
                    "a command with no image, run by Mesos' command executor on the agent's own"
                    " filesystem: a pod needs an image holding what the command uses; set"
                    " spec.kubernetes.image")]  # fmt: skip


def _privileged(app: Mapping[str, Any]) -> list[Finding]:
    docker = _docker(app)
    if docker.get("privileged") or docker.get("parameters"):
        return [
            Finding(
                Feature.PRIVILEGED,
                Severity.BLOCKER,
                "privileged container or docker parameters: refused (it would own the"
                " node); a person rewrites the app without them",
            )
        ]
    return []


def assess(app: Mapping[str, Any], image: str | None = None) -> Readiness:
    """The findings and verdict for one Marathon app (JSON, camelCase). `image`: the
    spec.kubernetes.image a person set, which answers a missing image and fetch URIs."""
    findings: list[Finding] = []
    findings += _privileged(app)
    findings += _runnable(app, image)
    findings += _volumes(app)
    findings += [_constraint(list(c)) for c in _list(app, "constraints") if isinstance(c, list)]
    findings += _ports(app)
    findings += _health(app)
    findings += _env(app)
    mesos = _mesos_only(app)
    if image:  # a person baked the fetched files into this image
        mesos = [f for f in mesos if f.feature != Feature.FETCH_URI]
    findings += mesos
    return Readiness(str(app.get("id") or ""), verdict_of(findings), tuple(findings))


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    severities = {f.severity for f in findings}
    if Severity.BLOCKER in severities:
        return Verdict.BLOCKED
    if Severity.REVIEW in severities:
        return Verdict.NEEDS_REVIEW
    return Verdict.READY


def blocking(readiness: Readiness) -> list[Finding]:
    """What keeps the translation from running (the builder refuses while any is left)."""
    return [f for f in readiness.findings if f.severity == Severity.BLOCKER]


def needs_person(readiness: Readiness) -> list[Finding]:
    return [f for f in readiness.findings if f.severity != Severity.INFO]


def summary(readiness: Readiness) -> str:
    """One line in words: the verdict and the features that need a person."""
    named = list(dict.fromkeys(str(f.feature) for f in needs_person(readiness)))
    if not named:
        return "Ready: every feature translates by itself"
    return f"{readiness.verdict}: " + ", ".join(named)
