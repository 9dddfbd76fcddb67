"""Platform pages' API: MesosClusters, ZkMigrations and MarathonApps read from the Kubernetes API.

``add_platform_routes(app, KubePlatformReader(), authorize=monitor._require_reader)`` adds

- ``GET /api/platform/mesosclusters``: every MesosCluster (all namespaces), summarised;
- ``GET /api/platform/zkmigrations``: every ZkMigration, summarised;
- ``GET /api/platform/marathonapps``: every MarathonApp, summarised (instances, health, the
  Marathon deployment, the rollout's traffic weights, the autoscaler's decision);
- ``GET /api/platform/{kind}/{namespace}/{name}``: one of them, summary plus spec and raw status.

``KubePlatformReader`` reads with the operator's client (``kube_api.KubeApi``, its
credentials: in-cluster or kubeconfig), in a thread, cached for ``ttl`` seconds. When the
API server cannot be reached, refuses the credentials or lacks the CRDs, the routes answer
503 with ``{"error": ..., "reason": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from orchestrator_operator.common.kube_api import ApiError, KubeApi, object_path
from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.models.vocabulary import ZkMigrationPhaseState
from orchestrator_operator.models.zkmigration import PHASES

API_VERSION = "orchestrator.dev/v1alpha1"
KINDS: dict[str, str] = {
    "mesosclusters": "MesosCluster",
    "zkmigrations": "ZkMigration",
    "marathonapps": "MarathonApp",
}
MAX_ANALYSIS = 20  # the latest analysis results a summary carries
COMPONENTS = ("zookeeper", "masters", "agents", "marathon")
DEFAULT_TTL = 2.0
DEFAULT_TIMEOUT = 10.0
log = logging.getLogger(__name__)


class PlatformUnavailable(Exception):
    """The Kubernetes API could not answer (unreachable, forbidden, CRD missing)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PlatformReader(Protocol):
    async def list(self, kind: str) -> list[Manifest]:
        """Every object of `kind` (a key of KINDS) in all namespaces."""
        ...

    async def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """One object, None when it does not exist."""
        ...


class ListingKubeApi(KubeApi):
    """KubeApi plus a cluster-wide LIST, through the same request path and credentials."""

    def list_all(self, api_version: str, kind: str) -> list[Manifest]:
        result = self._call("list", kind, "GET", object_path(api_version, kind, None, None))
        items: list[Manifest] = list(result.get("items") or [])
        return items


def _unavailable(error: Exception) -> PlatformUnavailable:
    """What a user is told; the exception itself (addresses, API server messages) goes to
    the app's log only."""
    if isinstance(error, PlatformUnavailable):
        return error
    log.warning("platform read failed: %s: %s", type(error).__name__, error)
    if isinstance(error, ApiError):
        if error.status in (401, 403):
            return PlatformUnavailable(
                "forbidden",
                f"the Kubernetes API refused the app's credentials (HTTP {error.status})",
            )
        if error.status == 404:
            return PlatformUnavailable(
                "not_installed", "the orchestrator.dev CRDs are not installed in this cluster"
            )
        return PlatformUnavailable("api_error", f"the Kubernetes API answered HTTP {error.status}")
    if isinstance(error, TimeoutError):
        return PlatformUnavailable("unreachable", "the Kubernetes API did not answer in time")
    return PlatformUnavailable(
        "unreachable", "the Kubernetes API cannot be reached (the app's log says why)"
    )


class KubePlatformReader:
    """Reads through KubeApi in a worker thread; results (and failures) cached for `ttl` s."""

    def __init__(
        self,
        api_factory: Callable[[], ListingKubeApi] | None = None,
        ttl: float = DEFAULT_TTL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._factory: Callable[[], ListingKubeApi] = api_factory or ListingKubeApi
        self._api: ListingKubeApi | None = None
        self._ttl = ttl
        self._timeout = timeout
        self._cache: dict[tuple[str, ...], tuple[float, Any, PlatformUnavailable | None]] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    def _client(self) -> ListingKubeApi:
        if self._api is None:
            self._api = self._factory()  # loads kubeconfig / in-cluster config: may raise
        return self._api

    def _list_sync(self, kind: str) -> list[Manifest]:
        return self._client().list_all(API_VERSION, KINDS[kind])

    def _get_sync(self, kind: str, namespace: str, name: str) -> Manifest | None:
        return self._client().get(API_VERSION, KINDS[kind], namespace, name)

    async def _cached(self, key: tuple[str, ...], call: Callable[[], Any]) -> Any:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one request per key at a time; the others get its answer
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self._ttl:
                if hit[2] is not None:
                    raise hit[2]
                return hit[1]
            try:
                value = await asyncio.wait_for(asyncio.to_thread(call), self._timeout)
            except Exception as error:
                failure = _unavailable(error)
                self._cache[key] = (time.monotonic(), None, failure)
                raise failure from error
            self._cache[key] = (time.monotonic(), value, None)
            return value

    async def list(self, kind: str) -> list[Manifest]:
        result: list[Manifest] = await self._cached(("list", kind), lambda: self._list_sync(kind))
        return result

    async def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        result: Manifest | None = await self._cached(
            ("get", kind, namespace, name), lambda: self._get_sync(kind, namespace, name)
        )
        return result


# -- summaries ---------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _conditions(status: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in _list(status.get("conditions")):
        c = _dict(c)
        if not c.get("type"):
            continue
        out.append(
            {
                "type": str(c["type"]),
                "status": str(c.get("status", "Unknown")),
                "reason": str(c.get("reason", "")),
                "message": str(c.get("message", "")),
                "lastTransitionTime": c.get("lastTransitionTime"),
            }
        )
    return out


def _meta(obj: Manifest) -> dict[str, Any]:
    meta = _dict(obj.get("metadata"))
    return {
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "generation": meta.get("generation"),
        "creationTimestamp": meta.get("creationTimestamp"),
    }


def mesoscluster_summary(obj: Manifest) -> dict[str, Any]:
    status = _dict(obj.get("status"))
    components: dict[str, dict[str, int]] = {}
    for name in COMPONENTS:
        c = status.get(name)
        if isinstance(c, dict):
            components[name] = {"ready": _int(c.get("ready")), "desired": _int(c.get("desired"))}
    mesos = status.get("mesos")
    return {
        **_meta(obj),
        "phase": status.get("phase"),
        "observedGeneration": status.get("observedGeneration"),
        "leadingMaster": status.get("leadingMaster"),
        "zookeeperConnectString": status.get("zookeeperConnectString"),
        "components": components,
        "mesos": (
            {
                "agentsActive": _int(mesos.get("agentsActive")),
                "frameworksActive": _int(mesos.get("frameworksActive")),
                "tasksRunning": _int(mesos.get("tasksRunning")),
            }
            if isinstance(mesos, dict)
            else None
        ),
        "rollout": status.get("rollout"),
        "maintenance": [
            {
                "node": str(_dict(m).get("node", "")),
                "state": str(_dict(m).get("state", "")),
                "tasks": _int(_dict(m).get("tasks")),
            }
            for m in _list(status.get("maintenance"))
        ],
        "conditions": _conditions(status),
    }


def _phase_timeline(status: dict[str, Any]) -> list[dict[str, Any]]:
    records = {_int(_dict(r).get("number")): _dict(r) for r in _list(status.get("phases"))}
    timeline: list[dict[str, Any]] = []
    for number, name in enumerate(PHASES, start=1):
        r = records.get(number, {})
        timeline.append(
            {
                "number": number,
                "name": str(r.get("name") or name),
                "state": str(r.get("state") or ZkMigrationPhaseState.PENDING),
                "startedAt": r.get("startedAt"),
                "finishedAt": r.get("finishedAt"),
                "message": str(r.get("message", "")),
            }
        )
    return timeline


def zkmigration_summary(obj: Manifest) -> dict[str, Any]:
    status = _dict(obj.get("status"))
    spec = _dict(obj.get("spec"))
    sync = status.get("sync")
    sync_out: dict[str, Any] | None = None
    if isinstance(sync, dict):
        sync_out = {
            "lagP99Seconds": sync.get("lagP99Seconds"),
            "digestsEqual": sync.get("digestsEqual"),
            "differences": sync.get("differences"),
            "conflicts": sync.get("conflicts"),
            "lastReconcileTime": sync.get("lastReconcileTime"),
        }
    return {
        **_meta(obj),
        "clusterRef": spec.get("clusterRef"),
        "phase": status.get("phase"),
        "currentPhase": status.get("currentPhase"),
        "observedGeneration": status.get("observedGeneration"),
        "phases": _phase_timeline(status),
        "sync": sync_out,
        "conditions": _conditions(status),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _deployment(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {
        "id": str(value.get("id", "")),
        "currentStep": _int(value.get("currentStep")),
        "totalSteps": _int(value.get("totalSteps")),
        "steps": [str(step) for step in _list(value.get("steps"))],
    }


def _rollout(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    weights = {str(k): _int(v) for k, v in _dict(value.get("weights")).items()}
    return {
        "strategy": value.get("strategy"),
        "phase": value.get("phase"),
        "step": value.get("step"),
        "weights": weights,
        "stableVersion": value.get("stableVersion"),
        "canaryVersion": value.get("canaryVersion"),
        "message": value.get("message"),
        "analysis": [
            {
                "step": _dict(a).get("step"),
                "metric": str(_dict(a).get("metric", "")),
                "value": _number(_dict(a).get("value")),
                "limit": _number(_dict(a).get("limit")),
                "result": str(_dict(a).get("result", "")),
            }
            for a in _list(value.get("analysis"))[-MAX_ANALYSIS:]
        ],
    }


def _autoscaling(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    metric = value.get("metric")
    return {
        "desiredInstances": value.get("desiredInstances"),
        "lastScaleAt": value.get("lastScaleAt"),
        "reason": value.get("reason"),
        "metric": (
            {
                "name": str(metric.get("name", "")),
                "value": _number(metric.get("value")),
                "target": _number(metric.get("target")),
            }
            if isinstance(metric, dict)
            else None
        ),
    }


ENV_VALUE_HIDDEN = "(hidden)"


def _shown_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the detail route shows it: a MarathonApp's plain env values are replaced
    (they may be credentials written in git; whoever holds the app's token need not read
    them), Secret references kept."""
    if kind != "marathonapps":
        return spec
    app = _dict(spec.get("app"))
    env = app.get("env")
    if not isinstance(env, dict):
        return spec
    shown = {k: v if isinstance(v, dict) else ENV_VALUE_HIDDEN for k, v in env.items()}
    return {**spec, "app": {**app, "env": shown}}


def marathonapp_summary(obj: Manifest) -> dict[str, Any]:
    """What the MarathonApps page lists: the app in Marathon (instances by state, health,
    its deployment), the rollout (phase, step, traffic weights, analysis) and the autoscaler.
    `instances.desired` is what the operator asks of Marathon: the autoscaler's decision when
    autoscaling is on, else spec.app.instances. Env values are not part of a summary."""
    status = _dict(obj.get("status"))
    spec = _dict(obj.get("spec"))
    app = _dict(spec.get("app"))
    marathon = _dict(status.get("marathon"))
    autoscaling = _autoscaling(status.get("autoscaling"))
    desired = app.get("instances", 1)
    if spec.get("autoscaling") and autoscaling and isinstance(autoscaling["desiredInstances"], int):
        desired = autoscaling["desiredInstances"]
    drift = _dict(status.get("drift"))
    return {
        **_meta(obj),
        "cluster": spec.get("cluster"),
        "appId": marathon.get("appId") or app.get("id"),
        "strategy": _dict(spec.get("strategy")).get("type", "rolling"),
        "observedGeneration": status.get("observedGeneration"),
        "version": marathon.get("version"),
        "instances": {
            "desired": _int(desired),
            "staged": _int(marathon.get("staged")),
            "running": _int(marathon.get("running")),
            "healthy": _int(marathon.get("healthy")),
            "unhealthy": _int(marathon.get("unhealthy")),
        },
        "relaunches": _int(marathon.get("relaunches")),
        "flapping": bool(marathon.get("flapping")),
        "launchDelaySeconds": _number(marathon.get("launchDelaySeconds")),
        "deployment": _deployment(marathon.get("deployment")),
        "rollout": _rollout(status.get("rollout")),
        "autoscaling": autoscaling if spec.get("autoscaling") else None,
        "drift": {
            "detected": bool(drift.get("detected")),
            "fields": [str(f) for f in _list(drift.get("fields"))],
            "lastRevertedAt": drift.get("lastRevertedAt"),
        },
        "conditions": _conditions(status),
        "readiness": _readiness(status.get("readiness")),
    }


def _readiness(value: Any) -> dict[str, Any] | None:
    """status.readiness (operator/marathonapp/readiness.py): the verdict and each finding."""
    readiness = _dict(value)
    if not readiness.get("verdict"):
        return None
    return {
        "verdict": str(readiness["verdict"]),
        "summary": str(readiness.get("summary") or ""),
        "findings": [
            {k: str(_dict(f).get(k) or "") for k in ("feature", "severity", "message")}
            for f in _list(readiness.get("findings"))[:64]
        ],
    }


SUMMARIES: dict[str, Callable[[Manifest], dict[str, Any]]] = {
    "mesosclusters": mesoscluster_summary,
    "zkmigrations": zkmigration_summary,
    "marathonapps": marathonapp_summary,
}


# -- routes ------------------------------------------------------------------------------------


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _unavailable_response(error: PlatformUnavailable) -> web.Response:
    return _json({"error": str(error), "reason": error.reason}, 503)


def add_platform_routes(
    app: web.Application,
    reader: PlatformReader,
    *,
    authorize: Callable[[web.Request], Awaitable[None]],
) -> None:
    """Register the platform routes. `authorize` is the app's own reader check, which raises
    HTTPUnauthorized without a valid token: pass ``monitor._require_reader``."""
    check = authorize

    async def handle_list(request: web.Request, kind: str) -> web.Response:
        await check(request)
        try:
            objects = await reader.list(kind)
        except PlatformUnavailable as error:
            return _unavailable_response(error)
        items = sorted(
            (SUMMARIES[kind](o) for o in objects), key=lambda s: (s["namespace"], s["name"])
        )
        return _json({"kind": KINDS[kind], "items": items})

    async def handle_mesosclusters(request: web.Request) -> web.Response:
        return await handle_list(request, "mesosclusters")

    async def handle_zkmigrations(request: web.Request) -> web.Response:
        return await handle_list(request, "zkmigrations")

    async def handle_marathonapps(request: web.Request) -> web.Response:
        return await handle_list(request, "marathonapps")

    async def handle_one(request: web.Request) -> web.Response:
        await check(request)
        kind = request.match_info["kind"]
        if kind not in KINDS:
            return _json({"error": f"no platform kind {kind!r}; known: {', '.join(KINDS)}"}, 404)
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        try:
            obj = await reader.get(kind, namespace, name)
        except PlatformUnavailable as error:
            return _unavailable_response(error)
        if obj is None:
            return _json({"error": f"no {KINDS[kind]} {namespace}/{name}"}, 404)
        return _json(
            {
                **SUMMARIES[kind](obj),
                "kind": KINDS[kind],
                "spec": _shown_spec(kind, _dict(obj.get("spec"))),
                "status": _dict(obj.get("status")),
            }
        )

    app.router.add_get("/api/platform/mesosclusters", handle_mesosclusters)
    app.router.add_get("/api/platform/zkmigrations", handle_zkmigrations)
    app.router.add_get("/api/platform/marathonapps", handle_marathonapps)
    app.router.add_get("/api/platform/{kind}/{namespace}/{name}", handle_one)
