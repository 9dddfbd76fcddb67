"""The I/O of a MarathonApp's `spec.kubernetes`: apply the translated Deployment and Service
(operator/builders/marathonapp_kubernetes.py), remove them when `spec.kubernetes` goes, and
say in `status.kubernetes` how the Deployment stands.

Refused (nothing applied, `status.kubernetes.message` says why): what
operator/marathonapp/readiness.py's `blocking` names (persistent volumes, fetch URIs without
an image of their own, ...), and what the operator's allow-list refuses in the built pod
(operator/allowlist.py: images, node selector; with controlPlaneNodes false the pods get
the control-plane exclusion as every child does). The MarathonApp's images were checked
before (operator/admission.py). The objects are applied server-side when the MarathonApp's
generation changes, when one of them is missing, and after the operator starts; otherwise
the Deployment is only read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.common.manifest import Manifest, owned_by
from orchestrator_operator.models.marathonapp import (
    ENV_LABEL,
    ENV_LABEL_VALUE,
    EnvSecret,
    MarathonAppSpec,
)
from orchestrator_operator.operator.allowlist import (
    ALLOW_ALL,
    AllowList,
    check_manifests,
    exclude_control_plane,
)
from orchestrator_operator.operator.builders import marathonapp_kubernetes as builder
from orchestrator_operator.operator.marathonapp import readiness

log = logging.getLogger(__name__)

KINDS = (("apps/v1", "Deployment"), ("v1", "Service"))


def refusal(parsed: MarathonAppSpec) -> str | None:
    """Why the app is not translated, in words, or None."""
    app = parsed.app.model_dump(by_alias=True, exclude_none=True, mode="json")
    image = parsed.kubernetes.image if parsed.kubernetes else None
    blockers = readiness.blocking(readiness.assess(app, image))
    own = builder.untranslatable(parsed)
    if blockers or own:
        words = list(dict.fromkeys([f"{f.feature}: {f.message}" for f in blockers] + own))
        return "not translated to Kubernetes: " + "; ".join(words)
    return None


def _secret_refused(api: KubeApi, namespace: str, parsed: MarathonAppSpec) -> str | None:
    """The pods read env Secrets themselves: only those labelled for MarathonApps, as the
    Marathon path (operator/marathonapp/secrets.py) reads no other."""
    for value in (parsed.app.env or {}).values():
        if isinstance(value, EnvSecret):
            ref = value.secret_key_ref
            secret = api.get("v1", "Secret", namespace, ref.name)
            labels = ((secret or {}).get("metadata") or {}).get("labels") or {}
            if labels.get(ENV_LABEL) != ENV_LABEL_VALUE:
                return (
                    f"Secret {ref.name} is missing or not labelled {ENV_LABEL}={ENV_LABEL_VALUE}:"
                    " the pods may read no other"
                )
    return None


def remove(api: KubeApi, meta: kopf.Meta) -> None:
    """Delete the Deployment and Service this MarathonApp owns (spec.kubernetes removed)."""
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    for api_version, kind in KINDS:
        if api.delete_if_owned(uid, api_version, kind, namespace, name):
            log.info("MarathonApp %s/%s: deleted its %s", namespace, name, kind)


def _deployment_status(deployment: Manifest, service: str | None) -> dict[str, Any]:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    conditions = [
        {k: str(c[k]) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
        for c in status.get("conditions") or []
    ]
    available = any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)
    return {
        "deployment": deployment["metadata"]["name"],
        "service": service,
        "replicas": int(spec.get("replicas") or 0),
        "readyReplicas": int(status.get("readyReplicas") or 0),
        "updatedReplicas": int(status.get("updatedReplicas") or 0),
        "available": available,
        "conditions": conditions,
        "message": None,
    }


def reconcile(
    api: KubeApi,
    parsed: MarathonAppSpec,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    allow: AllowList = ALLOW_ALL,
) -> dict[str, Any] | None:
    """status.kubernetes after applying or removing what `spec.kubernetes` asks for."""
    if parsed.kubernetes is None:
        if status.get("kubernetes") is not None or memo.get("marathonapp_kube_generation"):
            remove(api, meta)
            memo["marathonapp_kube_generation"] = None
        return None
    namespace, name = meta["namespace"], meta["name"]
    problem = refusal(parsed) or _secret_refused(api, namespace, parsed)
    if problem is not None:
        remove(api, meta)  # an earlier, translatable generation's objects go
        memo["marathonapp_kube_generation"] = None
        return {"replicas": 0, "message": problem}
    owner = builder.owner_of(name, namespace, meta["uid"])
    manifests = exclude_control_plane(allow, builder.build(owner, parsed))
    refused = check_manifests(allow, manifests)
    if refused:
        remove(api, meta)
        memo["marathonapp_kube_generation"] = None
        return {"replicas": 0, "message": f"not translated to Kubernetes: {refused}"}
    service = next((m["metadata"]["name"] for m in manifests if m["kind"] == "Service"), None)
    deployment = api.get("apps/v1", "Deployment", namespace, name)
    if deployment is not None and not owned_by(deployment, meta["uid"]):
        return {
            "replicas": 0,
            "message": f"Deployment {name} exists and is not this MarathonApp's: left alone",
        }
    existing_service = api.get("v1", "Service", namespace, service) if service else None
    if existing_service is not None and not owned_by(existing_service, meta["uid"]):
        # Applying over it would take it over (and its selector with it): another party's
        # Service, e.g. one a person wrote in front of pods of their own.
        return {
            "replicas": 0,
            "message": f"Service {service} exists and is not this MarathonApp's: left alone",
        }
    fresh = memo.get("marathonapp_kube_generation") != meta.get("generation")
    has_service = service is None or existing_service is not None
    if fresh or deployment is None or not has_service:
        try:
            applied = [api.apply(m) for m in manifests]
        except ApiError as error:
            return {"replicas": 0, "message": f"cannot apply: {error}"[:1000]}
        if service is None:  # the app lost its ports: no Service any more
            api.delete_if_owned(meta["uid"], "v1", "Service", namespace, name)
        memo["marathonapp_kube_generation"] = meta.get("generation")
        deployment = applied[0]
    return _deployment_status(deployment, service)


def moving(parsed: MarathonAppSpec, status: Mapping[str, Any]) -> bool:
    """The translated Deployment is not where it should be yet (the timer ticks every
    second), or spec.kubernetes went and its objects may still be there."""
    current = status.get("kubernetes")
    if parsed.kubernetes is None:
        return current is not None
    if current is None:
        return True
    if current.get("message"):
        return False  # refused: nothing moves until the spec changes
    return bool(
        current.get("readyReplicas") != current.get("replicas")
        or current.get("updatedReplicas") != current.get("replicas")
    )
