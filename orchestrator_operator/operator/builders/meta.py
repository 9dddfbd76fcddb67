"""Names and labels shared by every child of a MesosCluster."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner, owner_reference
from orchestrator_operator.models.base import ResourceRequirements, Storage

MANAGED_BY = "orchestrator"


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    """The labels a workload selects its pods by (immutable once created)."""
    return {
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
    }


def labels(owner: Owner, component: str, name: str, version: str | None = None) -> dict[str, str]:
    result = {
        **selector_labels(owner, component),
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": owner.part_of,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    if version:
        result["app.kubernetes.io/version"] = version
    return result


def metadata(owner: Owner, component: str, name: str, version: str | None = None) -> Manifest:
    return {
        "name": owner.child_name(component),
        "namespace": owner.namespace,
        "labels": labels(owner, component, name, version),
        "ownerReferences": [owner_reference(owner)],
    }


def resources(spec_resources: ResourceRequirements | None) -> Manifest:
    """A container's resources from our ResourceRequirements model (None -> no requests)."""
    if spec_resources is None:
        return {}
    dumped: Manifest = spec_resources.model_dump(by_alias=True, exclude_none=True)
    return {key: value for key, value in dumped.items() if value}


def service(
    owner: Owner,
    component: str,
    name: str,
    ports: list[tuple[str, int]],
    headless: bool = False,
) -> Manifest:
    spec: Manifest = {
        "selector": selector_labels(owner, component),
        "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports],
    }
    suffix = ""
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True  # peers must find each other before Ready
        suffix = "-headless"
    meta = metadata(owner, component, name)
    meta["name"] += suffix
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def pod_disruption_budget(owner: Owner, component: str, name: str) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner, component, name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner, component)},
        },
    }


def volume_claim(name: str, storage: Storage) -> Manifest:
    """A StatefulSet volumeClaimTemplate."""
    spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    return {"metadata": {"name": name}, "spec": spec}


def pod_defaults(service_account_name: str | None) -> Manifest:
    """What every pod of a MesosCluster has. No service links: Kubernetes would inject
    `<SERVICE>_PORT`-style variables for every Service of the namespace, and Marathon turns
    each `MARATHON_*` one into a command-line option and exits on the unknown ones (a
    MesosCluster named `marathon` makes such Services itself). The cluster's ServiceAccount
    when `spec.serviceAccountName` names one."""
    pod: Manifest = {"enableServiceLinks": False}
    if service_account_name:
        pod["serviceAccountName"] = service_account_name
    return pod
