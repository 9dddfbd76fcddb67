"""Kopf handlers for ProbeFleet: apply the probe DaemonSet, the app, their RBAC and the
app's NetworkPolicy (deleting it when switched off), then observe how many probes really
report to the app."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import kopf

from orchestrator_operator.common.conditions import now_rfc3339
from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models import API_GROUP, API_VERSION, PROBE_FLEET
from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.models.vocabulary import WorkloadPhase
from orchestrator_operator.operator.admission import children_refusal
from orchestrator_operator.operator.allowlist import exclude_control_plane
from orchestrator_operator.operator.builders.probefleet import (
    APP,
    CLUSTER_RULES,
    PROBE,
    app_url,
    build_children,
    cluster_role_name,
    cluster_scoped_owner,
    fleet_key,
    fleet_owner,
    stale_children,
)
from orchestrator_operator.operator.indexes import Workloads
from orchestrator_operator.operator.ownership import names_taken
from orchestrator_operator.operator.probefleet.observe import reporting_probes
from orchestrator_operator.operator.probefleet.status import FleetObservation, build_fleet_status
from orchestrator_operator.operator.reconcile import (
    accept_for_children,
    counted,
    patch_changed_status,
    refused,
)

OBSERVE_INTERVAL_SECONDS = 2.0
RBAC_API = "rbac.authorization.k8s.io/v1"


def _owner(meta: kopf.Meta) -> Owner:
    return fleet_owner(meta["name"], meta["namespace"], meta["uid"])


@kopf.on.resume(API_GROUP, API_VERSION, "probefleets")
@kopf.on.create(API_GROUP, API_VERSION, "probefleets")
@kopf.on.update(API_GROUP, API_VERSION, "probefleets", field="spec")
@counted(PROBE_FLEET)
def reconcile(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    reason: str,
    **_: Any,
) -> None:
    owner = _owner(meta)
    allow = memo["settings"].allowlist

    def refusal(fleet: ProbeFleetSpec) -> str | None:
        children = build_children(owner, fleet)
        namespaced = [child for child in children if child["metadata"].get("namespace")]
        return (
            children_refusal(allow, owner.namespace, children)
            or _names_taken(owner)
            or names_taken(
                KubeApi.shared(),
                namespaced,
                {owner.uid},
                PROBE_FLEET.kind,
                memo.setdefault("own_children", set()),
            )
        )

    parsed: ProbeFleetSpec = accept_for_children(
        PROBE_FLEET, spec, status, meta, patch, refusal=refusal
    )
    ignored = parsed.ignored_fields()
    if ignored:
        kopf.warn(
            body,
            reason="DeprecatedField",
            message=f"spec.{' and spec.'.join(ignored)} ignored: probes use their ServiceAccount"
            " tokens and people Kubernetes RBAC; no shared token Secret is made or read",
        )
    api = KubeApi.shared()
    api.apply_all(exclude_control_plane(allow, build_children(owner, parsed)))
    if reason != kopf.Reason.CREATE:  # a new fleet's uid owns nothing another spec made
        api.delete_owned(owner.uid, owner.namespace, stale_children(owner, parsed))


def _cluster_scoped(api: KubeApi, owner: Owner) -> Iterator[tuple[str, Manifest, str | None]]:
    """(kind, object, whose) of the fleet's ClusterRoles and bindings that exist."""
    for component in CLUSTER_RULES:
        name = cluster_role_name(owner, component)
        binding = api.get(RBAC_API, "ClusterRoleBinding", None, name)
        role = api.get(RBAC_API, "ClusterRole", None, name)
        for kind, obj in (("ClusterRoleBinding", binding), ("ClusterRole", role)):
            if obj is not None:
                yield kind, obj, cluster_scoped_owner(obj, binding)


def _names_taken(owner: Owner) -> str | None:
    """Another fleet's (or anyone's) ClusterRole or binding under this fleet's names: the
    fleet is refused rather than take it over (its subjects, then its deletion)."""
    for kind, obj, whose in _cluster_scoped(KubeApi.shared(), owner):
        if whose != fleet_key(owner):
            held = f"ProbeFleet {whose}'s" if whose else "not a ProbeFleet's"
            return (
                f"{kind} {obj['metadata']['name']} exists and is {held}: the cluster-scoped"
                " names join namespace and name with '-'; rename this ProbeFleet"
            )
    return None


@kopf.on.delete(API_GROUP, API_VERSION, "probefleets")
def remove_cluster_scoped(meta: kopf.Meta, **_: Any) -> None:
    """Namespaced children go by garbage collection; the ClusterRole and binding cannot.
    Only this fleet's are deleted (a refused fleet's names may be another's)."""
    api = KubeApi.shared()
    owner = _owner(meta)
    for kind, obj, whose in list(_cluster_scoped(api, owner)):
        if whose == fleet_key(owner):
            api.delete(RBAC_API, kind, None, obj["metadata"]["name"], uid=obj["metadata"]["uid"])


@kopf.timer(API_GROUP, API_VERSION, "probefleets", interval=OBSERVE_INTERVAL_SECONDS)
@counted(PROBE_FLEET)
def observe(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    if status.get("observedGeneration") != meta.get("generation"):
        # The change handler has not answered this spec yet: a status written now would
        # replace the conditions list without its Accepted condition (a refusal lost).
        return
    if status.get("phase") == WorkloadPhase.INVALID:
        return
    if refused(status):
        patch.status["phase"] = WorkloadPhase.INVALID
        return
    parsed = ProbeFleetSpec.model_validate(copy.deepcopy(dict(spec)))
    owner = _owner(meta)
    workloads = Workloads(kwargs)
    probes = workloads.get("DaemonSet", owner.namespace, owner.child_name(PROBE))
    app = workloads.get("Deployment", owner.namespace, owner.child_name(APP))
    template: str | None = memo["options"].monitoring_app_url
    url = (
        template.format(name=owner.name, namespace=owner.namespace, port=parsed.app.port)
        if template
        else app_url(owner, parsed)
    )
    reporting, error = reporting_probes(url)
    observation = FleetObservation(
        probes_desired=probes.desired if probes else 0,
        probes_ready=probes.ready if probes else 0,
        app_desired=app.desired if app else parsed.app.replicas,
        app_ready=app.ready if app else 0,
        app_url=url,
        reporting=reporting,
        app_error=error,
    )
    previous = copy.deepcopy(list(status.get("conditions") or []))
    new_status = build_fleet_status(
        observation, status.get("observedGeneration"), previous, now_rfc3339()
    )
    patch_changed_status(status, new_status, patch)
