"""Pure: a MarathonApp manifest from an app as a live Marathon reports it (`/v2/apps`).

What Marathon answers is its app definition plus what it keeps for itself (`version`,
`versionInfo`, the task counts, `executor`, `fetch`, `networks` ...). The manifest keeps the
fields a MarathonApp's `spec.app` carries (models/marathonapp.py), with Marathon's values,
and leaves out those equal to the model's defaults; the rest stays Marathon's and is named
by the readiness report (operator/marathonapp/readiness.py) where it matters.

Adoption: the operator PUTs nothing when the definition it would send
(status.app_definition) already matches Marathon's (status.drift_fields is empty). `build`
checks that here, with Marathon's own env values, so a manifest that would change the app
says so (`changes`) instead of restarting it by surprise.

Env values that look secret (readiness.looks_secret) are never written: the manifest gets
`secretKeyRef: {name: <name>-env, key: <NAME>}` and the comment at its top names the Secret a
person creates (labelled orchestrator.dev/marathonapp-env=true) with the value from Marathon.
Imported apps get `deletionPolicy: Orphan`: removing the file from git must not stop a
running app by accident (set Delete when the app is truly the MarathonApp's).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator_operator.models import API_GROUP, API_VERSION
from orchestrator_operator.models.marathonapp import ENV_LABEL, MarathonAppSpec
from orchestrator_operator.operator.marathonapp.readiness import (
    Feature,
    Finding,
    Readiness,
    Severity,
    assess,
    looks_secret,
    verdict_of,
)
from orchestrator_operator.operator.marathonapp.status import app_definition, drift_fields

GROUP_LABEL = "orchestrator.dev/marathon-group"
IMPORTED_ANNOTATION = "orchestrator.dev/imported-from"
MAX_NAME = 63

# The fields of spec.app, each with the sub-fields kept (None: the value as it is).
_PORT = ("containerPort", "hostPort", "servicePort", "protocol", "name", "labels")
_HEALTH = (
    "protocol",
    "path",
    "portIndex",
    "command",
    "gracePeriodSeconds",
    "intervalSeconds",
    "timeoutSeconds",
    "maxConsecutiveFailures",
)
_TOP = (
    "id",
    "cmd",
    "args",
    "container",
    "cpus",
    "mem",
    "disk",
    "instances",
    "env",
    "labels",
    "portDefinitions",
    "constraints",
    "healthChecks",
    "upgradeStrategy",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "killSelection",
    "unreachableStrategy",
    "taskKillGracePeriodSeconds",
)


def name_for(app_id: str) -> str:
    """The MarathonApp's name (and file name) from the app id: /team/web -> team-web; a
    DNS label, with a digest suffix when it had to be shortened."""
    name = re.sub(r"[^a-z0-9-]+", "-", app_id.strip("/").lower()).strip("-") or "app"
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(app_id.encode()).hexdigest()[:8]
        name = name[: MAX_NAME - 9].rstrip("-") + "-" + digest
    return name


def group_of(app_id: str) -> str | None:
    """The Marathon group of an app, as a label value: /team/api/web -> team.api."""
    parts = app_id.strip("/").split("/")[:-1]
    return ".".join(parts)[:MAX_NAME].strip(".-") or None


def _pick(value: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(value, Mapping):
        return value
    return {k: value[k] for k in keys if value.get(k) is not None}


def _container(container: Any, app: Mapping[str, Any]) -> dict[str, Any] | None:
    if not isinstance(container, Mapping):
        return None
    out: dict[str, Any] = {"type": container.get("type") or "DOCKER"}
    docker = container.get("docker")
    if isinstance(docker, Mapping):
        kept: dict[str, Any] = _pick(
            docker, ("image", "network", "forcePullImage", "privileged", "parameters")
        )
        mappings = docker.get("portMappings")
        if mappings is None:
            mappings = container.get("portMappings")  # Marathon 1.5+ keeps them here
        if isinstance(mappings, list) and mappings:
            kept["portMappings"] = [_pick(m, _PORT) for m in mappings]
        if not kept.get("parameters"):
            kept.pop("parameters", None)
        out["docker"] = kept
    volumes = container.get("volumes")
    if isinstance(volumes, list) and volumes:
        out["volumes"] = [
            _pick(v, ("containerPath", "mode", "hostPath", "persistent")) for v in volumes
        ]
    return out


def spec_app(app: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """spec.app from Marathon's app (camelCase), and the env entries moved to a Secret
    (name -> Marathon's value, which never goes into the manifest)."""
    out: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for key in _TOP:
        value = app.get(key)
        if value is None or (isinstance(value, list | dict) and not value and key != "env"):
            continue
        if key == "container":
            value = _container(value, app)
        elif key == "healthChecks":
            value = [_pick(c, _HEALTH) for c in value]
        elif key == "portDefinitions":
            value = [_pick(p, ("port", "protocol", "name", "labels")) for p in value]
        elif key == "unreachableStrategy" and not isinstance(value, Mapping):
            continue  # "disabled": Marathon's own default
        elif key == "env":
            if not value:
                continue
            env: dict[str, Any] = {}
            for name, item in value.items():
                if isinstance(item, str) and looks_secret(name, item):
                    secrets[name] = item
                    env[name] = {"secretKeyRef": {"name": "", "key": name}}
                else:
                    env[name] = item
            value = env
        if value is not None:
            out[key] = value
    return out, secrets


@dataclass(frozen=True)
class Imported:
    """One app: its manifest (None when it cannot be one), the file, what needs a person."""

    app_id: str
    name: str
    file_name: str
    manifest: dict[str, Any] | None
    text: str | None
    secret_name: str | None
    secret_keys: tuple[str, ...]
    changes: tuple[str, ...]  # fields applying the manifest would change in Marathon
    readiness: Readiness
    problem: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _dump_app(spec: MarathonAppSpec) -> dict[str, Any]:
    body = spec.app.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")
    body["id"] = spec.app.id
    body["instances"] = spec.app.instances
    ordered = {k: body[k] for k in _TOP if k in body}
    return ordered


def _header(
    app_id: str,
    version: Any,
    secret: str | None,
    keys: list[str],
    changes: list[str],
    namespace: str,
) -> list[str]:
    lines = [
        f"# Imported from Marathon app {app_id} (version {version})"
        " by orchestrator marathon import."
    ]
    if keys:
        lines += [
            f"# NEEDS A PERSON: env {', '.join(keys)} looked secret and are NOT written here.",
            f"# Create Secret {secret} in namespace {namespace} with key(s) {', '.join(keys)} (the",
            "# values Marathon has now) labelled orchestrator.dev/marathonapp-env=true, e.g.",
            f"#   kubectl -n {namespace} create secret generic {secret}"
            f" --from-literal={keys[0]}=...",
            f"#   kubectl -n {namespace} label secret {secret} {ENV_LABEL}=true",
        ]
    if changes:
        lines.append(
            f"# WARNING: applying this changes {', '.join(changes)} in Marathon (a new version)."
        )
    return lines


def build(app: Mapping[str, Any], cluster: str, namespace: str) -> Imported:
    """The manifest for one app as Marathon reports it, checked for adoption."""
    app_id = str(app.get("id") or "")
    name = name_for(app_id)
    file_name = f"{name}.yaml"
    readiness = assess(app)
    body, secrets = spec_app(app)
    secret_name = f"{name}-env" if secrets else None
    for key in secrets:
        body["env"][key]["secretKeyRef"]["name"] = secret_name
    try:
        parsed = MarathonAppSpec.model_validate(
            {"cluster": cluster, "app": body, "deletionPolicy": "Orphan"}
        )
    except ValidationError as error:
        words = "; ".join(str(e.get("msg", "")) for e in error.errors()[:3])
        finding = Finding(
            Feature.NOT_IMPORTABLE,
            Severity.BLOCKER,
            f"no manifest written: a MarathonApp cannot hold this app ({words})",
        )
        readiness = Readiness(
            app_id, verdict_of([*readiness.findings, finding]), (*readiness.findings, finding)
        )
        return Imported(app_id, name, file_name, None, None, None, (), (), readiness, words)
    env = {k: v for k, v in secrets.items()}
    definition = app_definition(parsed, env, parsed.app.instances)
    changes = drift_fields(definition, app)
    findings = list(readiness.findings)
    if changes:
        findings.append(
            Finding(
                Feature.ADOPTION,
                Severity.REVIEW,
                f"applying the manifest changes {', '.join(changes)} in Marathon (a new"
                " version, tasks restarted): Marathon holds them in a form a MarathonApp"
                " does not",
            )
        )
    readiness = Readiness(app_id, verdict_of(findings), tuple(findings))
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "annotations": {IMPORTED_ANNOTATION: f"{app_id}@{app.get('version', '')}"},
    }
    group = group_of(app_id)
    if group:
        metadata["labels"] = {GROUP_LABEL: group}
    manifest = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "MarathonApp",
        "metadata": metadata,
        "spec": {"cluster": cluster, "deletionPolicy": "Orphan", "app": _dump_app(parsed)},
    }
    header = _header(app_id, app.get("version"), secret_name, list(secrets), changes, namespace)
    text = "\n".join(header) + "\n" + yaml.safe_dump(manifest, sort_keys=False, width=100)
    return Imported(
        app_id,
        name,
        file_name,
        manifest,
        text,
        secret_name,
        tuple(secrets),
        tuple(changes),
        readiness,
    )


def build_all(apps: Sequence[Mapping[str, Any]], cluster: str, namespace: str) -> list[Imported]:
    """Every app, sorted by id; two ids that give one name get the second a digest suffix."""
    out: list[Imported] = []
    taken: set[str] = set()
    for app in sorted(apps, key=lambda a: str(a.get("id"))):
        item = build(app, cluster, namespace)
        if item.name in taken:
            digest = hashlib.sha256(item.app_id.encode()).hexdigest()[:8]
            renamed = f"{item.name[: MAX_NAME - 9]}-{digest}"
            item = build({**app}, cluster, namespace)
            item = _renamed(item, renamed)
        taken.add(item.name)
        out.append(item)
    return out


def _renamed(item: Imported, name: str) -> Imported:
    manifest = item.manifest
    text = item.text
    if manifest is not None and text is not None:
        manifest = {**manifest, "metadata": {**manifest["metadata"], "name": name}}
        text = text.replace(f"name: {item.name}\n", f"name: {name}\n", 1)
    return Imported(
        item.app_id,
        name,
        f"{name}.yaml",
        manifest,
        text,
        item.secret_name,
        item.secret_keys,
        item.changes,
        item.readiness,
        item.problem,
        item.notes,
    )
