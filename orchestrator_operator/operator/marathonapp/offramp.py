"""The I/O of a MarathonApp's traffic shift to Kubernetes (the plan is offramp_plan.py).

The MarathonApp sync (handlers.py) calls `reconcile_offramp` for an app with
`spec.kubernetes.shift` (rolling strategy) before it builds the Marathon definition: this
reads the Marathon app, the ready endpoints of the translated Service's EndpointSlices,
the traffic ConfigMap `<name>-traffic` and (when an analysis sample is due) the load
balancer's figures for the Kubernetes side; the plan decides; this writes the ConfigMap
(`{"group": <deployment group or app id>, "weights": {<app id>: 100 - w}, "kubernetes":
{"service": <name>, "port": <its first port's name>, "weight": w}}`, owned by the
MarathonApp, read by the cluster's load balancer, docs/loadbalancer.md) and returns the
new `status.offramp` and the instance count the sync keeps the Marathon app at.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.mesos.marathon_api import MarathonClient
from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.operator.builders.marathonapp_kubernetes import owner_of, service
from orchestrator_operator.operator.marathonapp.analysis import AnalysisConfig
from orchestrator_operator.operator.marathonapp.offramp_plan import (
    Inputs,
    Side,
    analysis_due,
    decide,
)
from orchestrator_operator.operator.marathonapp.strategy import (
    TRAFFIC_KEY,
    apply_traffic,
    lb_app_weight,
    lb_url,
    take_sample,
    traffic_configmap,
    traffic_configmap_name,
)

log = logging.getLogger(__name__)

SERVICE_LABEL = "kubernetes.io/service-name"
DEPLOYMENT_GROUP_LABEL = "HAPROXY_DEPLOYMENT_GROUP"
DONE_PHASES = frozenset({"Shifted", "RolledBack", "Failed"})


def kubernetes_id(name: str) -> str:
    """The Kubernetes side among the load balancer's apps (lb/weights.py's kubernetes_id)."""
    return f"kubernetes:{name}"


def shifting(parsed: MarathonAppSpec) -> bool:
    kube = parsed.kubernetes
    return kube is not None and kube.shift is not None and parsed.strategy.type == "rolling"


def moving(parsed: MarathonAppSpec, status: Any) -> bool:
    """Whether the shift needs the sync every tick (not done, or rolling back)."""
    if not shifting(parsed):
        return False
    phase = ((status or {}).get("offramp") or {}).get("phase")
    if phase not in DONE_PHASES:
        return True
    if phase == "Shifted":
        return parsed.abort  # a rollback starts
    if phase == "RolledBack":
        return not parsed.abort  # the shift starts again
    return False  # Failed: waits for new steps (a spec change runs the sync anyway)


def traffic_group(parsed: MarathonAppSpec) -> str:
    """The key the load balancer finds the weights under: the app's deployment group, else
    its id (a lone app's backend)."""
    labels = parsed.app.labels or {}
    return str(labels.get(DEPLOYMENT_GROUP_LABEL) or parsed.app.id)


def read_kubernetes_weight(kube: KubeApi, namespace: str, name: str) -> int | None:
    found = kube.get("v1", "ConfigMap", namespace, traffic_configmap_name(name))
    if not found:
        return None
    try:
        data = json.loads((found.get("data") or {}).get(TRAFFIC_KEY, ""))
        return int(data["kubernetes"]["weight"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # unreadable, or no Kubernetes side yet: the plan writes it


def ready_endpoints(kube: KubeApi, namespace: str, name: str) -> tuple[bool, int]:
    """(the Service exists, its ready endpoints) from its EndpointSlices."""
    if not kube.get("v1", "Service", namespace, name):
        return False, 0
    slices = kube.list(
        "discovery.k8s.io/v1", "EndpointSlice", namespace, label_selector=f"{SERVICE_LABEL}={name}"
    )
    addresses: set[str] = set()
    for slice_ in slices:
        for endpoint in slice_.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready")
            if ready is None:
                ready = not conditions.get("terminating", False)
            if ready:
                addresses.update(str(a) for a in (endpoint.get("addresses") or [])[:1])
    return True, len(addresses)


def marathon_side(marathon: MarathonClient, app_id: str) -> Side:
    app = marathon.get_app(app_id)
    if app is None:
        return Side(0, 0, present=False)
    ready = int(app.get("tasksHealthy") or 0) if app.get("healthChecks") else None
    running = int(app.get("tasksRunning") or 0)
    return Side(int(app.get("instances") or 0), running if ready is None else ready)


def port_name(parsed: MarathonAppSpec, namespace: str, name: str) -> str | None:
    """The name of the translated Service's first port (the one the app's backend serves)."""
    built = service(owner_of(name, namespace, ""), parsed)
    ports = ((built or {}).get("spec") or {}).get("ports") or []
    return str(ports[0]["name"]) if ports and ports[0].get("name") else None


def reconcile_offramp(
    body: dict[str, Any],
    parsed: MarathonAppSpec,
    marathon: MarathonClient,
    kube: KubeApi,
    spec_instances: int,
    *,
    now: datetime | None = None,
    load_balancer: str | None = None,
) -> tuple[dict[str, Any], int]:
    """One step of the shift: the new `status.offramp` and the Marathon instance count."""
    assert parsed.kubernetes is not None and parsed.kubernetes.shift is not None
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    shift = parsed.kubernetes.shift.model_dump(by_alias=True, exclude_none=True)
    previous = dict((body.get("status") or {}).get("offramp") or {})
    now = now or datetime.now(UTC)
    replicas = parsed.kubernetes.replicas
    desired = replicas if replicas is not None else parsed.app.instances
    try:
        weight = read_kubernetes_weight(kube, namespace, name)
        present, ready = ready_endpoints(kube, namespace, name)
    except (ApiError, httpx.HTTPError) as error:
        # Not knowing where traffic is, move nothing this time.
        log.warning("MarathonApp %s/%s: off-ramp: %s", namespace, name, error)
        note = " (Kubernetes could not be read"
        before = str(previous.get("message") or "").split(note)[0]
        keep = 0 if previous.get("marathonScaledDown") else spec_instances
        return {**previous, "message": f"{before}{note}: {type(error).__name__}; retried)"}, keep
    sample = None
    if shift.get("analysis") and analysis_due(previous, now):
        config = AnalysisConfig.from_spec(shift["analysis"])
        sample = take_sample(
            config,
            load_balancer or lb_url(namespace, parsed.cluster),
            kubernetes_id(name),
            config.interval_seconds,
        )
    lb_weight = None
    if previous.get("stage") == "Draining" and not previous.get("marathonScaledDown"):
        # Marathon is scaled to zero next: the load balancer must already send it nothing.
        lb_weight = lb_app_weight(load_balancer or lb_url(namespace, parsed.cluster), parsed.app.id)
    decision = decide(
        Inputs(
            shift=shift,
            promote=parsed.promote,
            abort=parsed.abort,
            marathon=marathon_side(marathon, parsed.app.id),
            marathon_spec_instances=spec_instances,
            kubernetes=Side(desired, ready, present=present),
            weight=weight,
            offramp=previous,
            now=now,
            sample=sample,
            marathon_lb_weight=lb_weight,
        )
    )
    out = dict(decision.offramp)
    if decision.weight is not None:
        configmap = traffic_configmap(body, parsed.cluster, traffic_group(parsed), {})
        entry: dict[str, Any] = {"service": name, "weight": decision.weight}
        port = port_name(parsed, namespace, name)
        if port is not None:
            entry["port"] = port
        configmap["data"][TRAFFIC_KEY] = json.dumps(
            {
                "group": traffic_group(parsed),
                "weights": {parsed.app.id: 100 - decision.weight},
                "kubernetes": entry,
            },
            sort_keys=True,
        )
        try:
            apply_traffic(kube, configmap)
            log.info(
                "MarathonApp %s/%s: traffic Kubernetes %d%%, Marathon %d%%",
                namespace, name, decision.weight, 100 - decision.weight,
            )  # fmt: skip
        except (ApiError, httpx.HTTPError) as error:
            out["message"] = f"{out.get('message')} (writing the weights failed, retried: {error})"
            log.warning("MarathonApp %s/%s: traffic ConfigMap: %s", namespace, name, error)
    return out, decision.marathon_instances
