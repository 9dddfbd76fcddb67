"""The I/O of a MarathonApp's blue-green or canary rollout (the plan is strategy_plan.py).

M2's reconcile calls `reconcile_strategy` for `spec.strategy.type` blueGreen or canary and
writes what it returns into `status.rollout`. Each call reads the group's Marathon apps
(`<id>`, `<id>-canary`, `<id>-blue`, `<id>-green`: those labelled with the group, and `<id>`
itself), the traffic ConfigMap, and (when an analysis sample is due) the load balancer's
figures for the new app and the Prometheus query; then the plan decides and this module
does what it says, in order: Marathon app PUT or DELETE, the ConfigMap `<name>-traffic`
(owned by the MarathonApp, read by the cluster's load balancer, docs/loadbalancer.md).
An action that fails stops the ones after it (a DELETE never follows weights that were not
written); the plan repeats it next time, from what it then observes.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.mesos.marathon_api import MarathonClient, MarathonError
from orchestrator_operator.operator.marathonapp.analysis import (
    AnalysisConfig,
    Sample,
    lb_sample,
    prometheus_scalar,
)
from orchestrator_operator.operator.marathonapp.strategy_plan import (
    GROUP_LABEL,
    PORT_LABEL,
    REVISION_LABEL,
    AppState,
    DeleteApp,
    Inputs,
    PutApp,
    ScaleApp,
    SetWeights,
    analysis_due,
    candidate_ids,
    decide,
    group_of,
    revision_of,
)
from orchestrator_operator.operator.ownership import names_taken

log = logging.getLogger(__name__)

TRAFFIC_KEY = "weights.json"
LB_METRICS_PORT = 9091  # `orchestrator lb --metrics-port` default: /v1/backends/...
HTTP_TIMEOUT = 3.0
MAX_ANSWER_BYTES = 1 << 20


def traffic_configmap_name(mapp_name: str) -> str:
    return f"{mapp_name}-traffic"


def traffic_configmap(
    body: dict[str, Any], cluster: str, group: str, weights: dict[str, int]
) -> dict[str, Any]:
    """The traffic contract: `{"group": ..., "weights": {app id: share}}`, shares summing to
    100, owned by the MarathonApp (deleted with it)."""
    meta = body["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": traffic_configmap_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {
                "app.kubernetes.io/managed-by": "orchestrator",
                "orchestrator.dev/traffic-for": cluster,
            },
            "ownerReferences": [
                {
                    "apiVersion": body.get("apiVersion", "orchestrator.dev/v1alpha1"),
                    "kind": body.get("kind", "MarathonApp"),
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "data": {
            TRAFFIC_KEY: json.dumps({"group": group, "weights": weights}, sort_keys=True),
        },
    }


def apply_traffic(kube: KubeApi, configmap: dict[str, Any]) -> None:
    """Write the traffic ConfigMap unless another holds its name (a ConfigMap someone
    wrote as `<app>-traffic`): then ApiError 409 names the holder, and nothing is written."""
    uid = configmap["metadata"]["ownerReferences"][0]["uid"]
    taken = names_taken(kube, [configmap], {uid}, "MarathonApp")
    if taken:
        raise ApiError(409, taken)
    kube.apply(configmap)


def read_weights(kube: KubeApi, namespace: str, mapp_name: str) -> dict[str, int] | None:
    found = kube.get("v1", "ConfigMap", namespace, traffic_configmap_name(mapp_name))
    if not found:
        return None
    try:
        data = json.loads((found.get("data") or {}).get(TRAFFIC_KEY, ""))
        weights = data["weights"]
        return {str(k): int(v) for k, v in weights.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # unreadable: the plan writes it again


def app_state(app: dict[str, Any], queue: list[dict[str, Any]]) -> AppState:
    """What the plan needs of `GET /v2/apps/<id>?embed=app.tasks,app.counts,...`."""
    labels = app.get("labels") or {}
    version = str(app.get("version") or "")
    failure = None
    for entry in queue:
        if (entry.get("app") or {}).get("id") != app.get("id"):
            continue
        delay = entry.get("delay") or {}
        if not delay.get("overdue", True) and float(delay.get("timeLeftSeconds") or 0) > 0:
            failure = (
                "Marathon delays its launches (its tasks keep failing;"
                f" next in {float(delay['timeLeftSeconds']):.0f} s)"
            )
    last = app.get("lastTaskFailure") or {}
    if failure is None and last and last.get("version") == version:
        failure = f"a task failed ({last.get('state')}: {str(last.get('message') or '')[:200]})"
    return AppState(
        id=str(app["id"]),
        revision=labels.get(REVISION_LABEL),
        instances=int(app.get("instances") or 0),
        running=int(app.get("tasksRunning") or 0),
        healthy=int(app.get("tasksHealthy") or 0),
        unhealthy=failing_health_checks(app),
        health_checks=bool(app.get("healthChecks")),
        deploying=bool(app.get("deployments")),
        version=version or None,
        failure=failure,
        service_port=_service_port(app),
    )


def failing_health_checks(app: dict[str, Any]) -> int:
    """Tasks failing a health check after their grace period. Not `tasksUnhealthy`: Marathon
    stores a failure ignored within the grace period too (HealthCheckActor.scala), so a task
    still starting shows not alive; `consecutiveFailures` counts only the failures that
    count (and a task that served and then fails shows both)."""
    failing = 0
    for task in app.get("tasks") or []:
        results = task.get("healthCheckResults") or []
        if any(int(r.get("consecutiveFailures") or 0) >= 1 for r in results):
            failing += 1
    return failing


def _service_port(app: dict[str, Any]) -> int | None:
    label = str((app.get("labels") or {}).get(PORT_LABEL, ""))
    if label.isdigit():
        return int(label)
    for port in app.get("portDefinitions") or []:
        return int(port.get("port") or 0) or None
    docker = (app.get("container") or {}).get("docker") or {}
    for mapping in docker.get("portMappings") or []:
        return int(mapping.get("servicePort") or 0) or None
    ports = app.get("servicePorts") or []
    return int(ports[0]) if ports else None


def observe_group(marathon: MarathonClient, base: str) -> dict[str, AppState]:
    """The group's apps in Marathon: `<id>` and the ids a rollout uses that carry its label
    (an unrelated app that happens to be called `<id>-canary` is never touched)."""
    group = group_of(base)
    queue: list[dict[str, Any]] | None = None
    found: dict[str, AppState] = {}
    for app_id in candidate_ids(base):
        app = marathon.get_app(app_id)
        if app is None:
            continue
        if app_id != base and (app.get("labels") or {}).get(GROUP_LABEL) != group:
            continue
        if queue is None:
            queue = marathon.queue()
        found[app_id] = app_state(app, queue)
    return found


def lb_url(namespace: str, cluster: str) -> str:
    """The cluster's load balancer's own endpoints (Service `<cluster>-lb`)."""
    return f"http://{cluster}-lb.{namespace}.svc:{LB_METRICS_PORT}"


def _get_json(http: httpx.Client, url: str, params: dict[str, str] | None = None) -> Any:
    response = http.get(url, params=params)
    if len(response.content) > MAX_ANSWER_BYTES:
        raise ValueError("answer too large")
    if response.status_code >= 400:
        raise ValueError(f"HTTP {response.status_code}")
    return response.json()


def _backend_view(http: httpx.Client, base_url: str, app_id: str, seconds: int) -> Any:
    """The load balancer's view of the backend that serves `app_id` (its servers and their
    requests over the last `seconds`); None when no backend serves it."""
    backends = _get_json(http, f"{base_url}/v1/backends").get("backends") or []
    name = next((b["name"] for b in backends if app_id in (b.get("apps") or [])), None)
    if name is None:
        return None
    return _get_json(
        http,
        f"{base_url}/v1/backends/{quote(name, safe='')}/stats",
        {"seconds": str(max(1, min(600, seconds)))},
    )


def lb_app_weight(base_url: str, app_id: str) -> int | None:
    """The HAProxy weight the load balancer gives `app_id`'s ready servers, summed (what it
    has applied, not what it was asked); 0 when no backend serves the app; None when the load
    balancer cannot be read."""
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as http:
            view = _backend_view(http, base_url, app_id, 1)
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if view is None:
        return 0
    try:
        return sum(
            int(s.get("weight") or 0)
            for s in view.get("servers") or []
            if s.get("app") == app_id and s.get("state") == "ready"
        )
    except (ValueError, TypeError, AttributeError):
        return None


def take_sample(
    config: AnalysisConfig, base_url: str | None, new_app: str, window_seconds: float
) -> Sample:
    """One analysis reading: the new app's requests, 5xx and p99 at the load balancer over
    the last window, and the Prometheus query's value. Never raises: a figure that cannot be
    read says why (and fails its analysis)."""
    requests = errors = None
    p99: float | None = None
    lb_error = prometheus_error = None
    prometheus_value: float | None = None
    with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as http:
        if config.reads_load_balancer:
            try:
                if base_url is None:
                    raise ValueError("no load balancer for the cluster")
                view = _backend_view(http, base_url, new_app, round(window_seconds))
                if view is None:
                    raise ValueError(f"no load-balancer backend serves {new_app}")
                sample = lb_sample(view, new_app)
                requests, errors, p99, lb_error = (
                    sample.requests,
                    sample.errors,
                    sample.latency_p99_ms,
                    sample.lb_error,
                )
            except httpx.HTTPError as error:  # the type only: a URL could carry userinfo
                lb_error = f"load balancer unreachable ({type(error).__name__})"
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                lb_error = f"load balancer: {type(error).__name__}: {str(error)[:200]}"
        if config.prometheus is not None:
            try:
                body = _get_json(
                    http,
                    f"{config.prometheus.address.rstrip('/')}/api/v1/query",
                    {"query": config.prometheus.query},
                )
                value = prometheus_scalar(body)
                if isinstance(value, str):
                    prometheus_error = value
                else:
                    prometheus_value = value
            except httpx.HTTPError as error:  # the type only: the address may hold userinfo
                prometheus_error = f"Prometheus unreachable ({type(error).__name__})"
            except ValueError as error:
                prometheus_error = f"{type(error).__name__}: {str(error)[:200]}"
    return Sample(
        requests=requests,
        errors=errors,
        latency_p99_ms=p99,
        lb_error=lb_error,
        prometheus_value=prometheus_value,
        prometheus_error=prometheus_error,
    )


def reconcile_strategy(
    body: dict[str, Any],
    app_definition: dict[str, Any],
    marathon: MarathonClient,
    kube: KubeApi,
    *,
    now: datetime | None = None,
    load_balancer: str | None = None,
) -> dict[str, Any]:
    """One step of the rollout; returns the new `status.rollout`. `app_definition` is the
    Marathon definition M2 resolved from spec.app (secrets filled in, instances decided);
    `load_balancer`: the lb's base URL (default: the cluster's Service)."""
    spec = body.get("spec") or {}
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    cluster = str(spec.get("cluster") or "")
    strategy = dict(spec.get("strategy") or {})
    rollout = dict((body.get("status") or {}).get("rollout") or {})
    base = str(app_definition["id"])
    now = now or datetime.now(UTC)
    apps = observe_group(marathon, base)  # MarathonError: the caller reports it
    try:
        weights = read_weights(kube, namespace, name)
    except (ApiError, httpx.HTTPError) as error:
        # Not knowing where traffic is, move nothing this time.
        log.warning("MarathonApp %s/%s: traffic ConfigMap unreadable: %s", namespace, name, error)
        note = " (the traffic ConfigMap could not be read"
        before = str(rollout.get("message") or "").split(note)[0]
        return {**rollout, "message": f"{before}{note}: {type(error).__name__}; retried)"}
    sample = None
    canary = strategy.get("canary") or {}
    if canary.get("analysis") and analysis_due(rollout, now):
        config = AnalysisConfig.from_spec(canary["analysis"])
        sample = take_sample(
            config,
            load_balancer or lb_url(namespace, cluster),
            str(rollout.get("newApp")),
            config.interval_seconds,
        )
    decision = decide(
        Inputs(
            strategy=strategy,
            definition=app_definition,
            revision=revision_of(spec.get("app") or app_definition),
            promote=int(spec.get("promote") or 0),
            abort=bool(spec.get("abort")),
            apps=apps,
            weights=weights,
            rollout=rollout,
            now=now,
            sample=sample,
        )
    )
    out = dict(decision.rollout)
    for action in decision.actions:
        try:
            if isinstance(action, PutApp):
                # The new app is ours alone: a PUT overrides its own running deployment.
                force = action.app_id != out.get("stableApp")
                marathon.put_app(action.app_id, action.definition, force=force)
            elif isinstance(action, ScaleApp):
                marathon.put_app(action.app_id, {"instances": action.instances})
            elif isinstance(action, DeleteApp):
                marathon.delete_app(action.app_id, force=True)
            elif isinstance(action, SetWeights):
                apply_traffic(
                    kube, traffic_configmap(body, cluster, group_of(base), action.weights)
                )
            log.info("MarathonApp %s/%s: %s", namespace, name, _describe(action))
        except (MarathonError, ApiError, httpx.HTTPError) as error:
            out["message"] = f"{out.get('message')} ({_describe(action)} failed, retried: {error})"
            log.warning(
                "MarathonApp %s/%s: %s failed: %s", namespace, name, _describe(action), error
            )
            break
    return out


def _describe(action: PutApp | ScaleApp | DeleteApp | SetWeights) -> str:
    if isinstance(action, PutApp):
        return f"PUT {action.app_id}"
    if isinstance(action, ScaleApp):
        return f"scale {action.app_id} to {action.instances}"
    if isinstance(action, DeleteApp):
        return f"DELETE {action.app_id}"
    shares = ", ".join(f"{k} {v}%" for k, v in sorted(action.weights.items()))
    return f"weights {shares}"
