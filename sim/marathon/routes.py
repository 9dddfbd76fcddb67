"""Marathon's REST API on the leader: /v2/apps, /v2/tasks, /v2/deployments, /v2/info,
/v2/events.

Changes follow Marathon 1.11 `api/v2/AppsResource.scala` (an `api_post_event` for each create
or update, `force` to override a running deployment) and `api/MarathonExceptionMapper.scala`
(a locked app answers 409 `{message, deployments: [{id}]}`); cancelling a deployment follows
`api/v2/DeploymentsResource.scala`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sim.httputil import error, json_response, read_json
from sim.marathon import events, health, layout, ports, views
from sim.marathon.scheduler import AppLocked
from sim.tasks import KILLING, LIVE

if TYPE_CHECKING:
    from sim.marathon.server import Marathon


def _app_id(request: web.Request) -> str:
    return layout.normalize_app_id(request.match_info["app_id"])


def _raml(app_def: dict[str, Any]) -> dict[str, Any]:
    """The app definition as `Raml.toRaml(app)` shows it (no task counts, no deployments)."""
    return {**views.APP_DEFAULTS, **app_def}


def _remote(request: web.Request) -> str:
    return request.remote or ""


def _numbers(body: dict[str, Any]) -> str | None:
    for key, low in (("instances", 0), ("cpus", 0), ("mem", 0), ("disk", 0)):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
            return f"{key} must be a number >= {low}"
    if "instances" in body and not isinstance(body["instances"], int):
        return "instances must be an integer"
    strategy = body.get("upgradeStrategy")
    if strategy is not None:
        # state/UpgradeStrategy.scala: both between 0.0 and 1.0
        if not isinstance(strategy, dict):
            return "upgradeStrategy must be an object"
        for key in ("minimumHealthCapacity", "maximumOverCapacity"):
            value = strategy.get(key, 1.0)
            if not isinstance(value, int | float) or isinstance(value, bool):
                return f"upgradeStrategy.{key} must be a number"
            if not 0.0 <= value <= 1.0:
                return f"upgradeStrategy.{key} got {value}, expected between 0.0 and 1.0"
    for key in ("backoffSeconds", "maxLaunchDelaySeconds"):
        value = body.get(key)
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or value < 0
        ):
            return f"{key} must be a number >= 0"
    factor = body.get("backoffFactor")
    if factor is not None and (
        not isinstance(factor, int | float) or isinstance(factor, bool) or factor < 1.0
    ):
        return "backoffFactor must be a number >= 1.0"
    return health.validate(body) or ports.validate(body)


def _default_ports(body: dict[str, Any]) -> bool:
    return "portDefinitions" not in body and "ports" not in body


def _editable(body: dict[str, Any]) -> dict[str, Any]:
    """The body's app fields; the legacy `ports: [p, ...]` is `portDefinitions`
    (AppNormalization: `portDefinitions.orElse(ports)`)."""
    out = {k: v for k, v in body.items() if k in views.EDITABLE}
    legacy = body.get("ports")
    if "portDefinitions" not in body and isinstance(legacy, list):
        out["portDefinitions"] = [{"port": p} for p in legacy]
    return out


def _config(app: dict[str, Any]) -> dict[str, Any]:
    """What makes an app's configuration (AppDefinition.isUpgrade): all but the instances and
    the version."""
    skip = {"instances", "version", "versionInfo"}
    return {k: v for k, v in {**views.APP_DEFAULTS, **app}.items() if k not in skip}


def _force(request: web.Request) -> bool:
    return request.query.get("force", "false").lower() == "true"


def _locked(exc: AppLocked) -> web.Response:
    body = {"message": str(exc), "deployments": [{"id": d} for d in exc.deployment_ids]}
    return json_response(body, status=409)


def add_routes(app: web.Application, marathon: Marathon) -> None:
    sched = marathon.scheduler

    def task_view(instance: dict[str, Any]) -> dict[str, Any]:
        app = sched.apps.get(instance["appId"]) or {}
        return views.task_json(instance, ports.service_ports(app), sched.health.results(instance))

    def app_view(app_def: dict[str, Any], embed_tasks: bool = False) -> dict[str, Any]:
        instances = sched.app_instances(app_def["id"])
        healthy = {i["instanceId"]: sched.health.healthy(i) for i in instances}
        out = views.app_json(app_def, instances, sched.app_deployments(app_def["id"]), healthy)
        if embed_tasks:
            out["tasks"] = [task_view(i) for i in instances if i["state"] in LIVE]
        return out

    async def list_apps(request: web.Request) -> web.StreamResponse:
        embed = "apps.tasks" in request.query.getall("embed", [])
        return json_response({"apps": [app_view(a, embed) for a in sched.apps.values()]})

    async def create_app(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            return error(422, "Object is not valid: id is required")
        app_id = layout.normalize_app_id(body["id"])
        if not layout.valid_app_id(app_id):
            return error(422, f"Object is not valid: invalid app id {app_id!r}")
        problem = _numbers(body)
        if problem:
            return error(422, f"Object is not valid: {problem}")
        if not body.get("cmd") and not body.get("args") and not body.get("container"):
            return error(
                422,
                "Object is not valid: AppDefinition must either contain one of "
                "'cmd' or 'args', and/or a 'container'.",
            )
        async with sched.lock:
            if app_id in sched.apps:
                return error(409, f"An app with id [{app_id}] already exists.")
            version = layout.timestamp(time.time())
            app_def = _editable(body)
            app_def = {**views.APP_DEFAULTS, **app_def, "id": app_id, "version": version}
            app_def["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": version}
            app_def = ports.normalize(app_def, default=_default_ports(body))
            app_def["healthChecks"] = [health.normalized(c) for c in app_def["healthChecks"]]
            try:
                app_def = ports.assign_service_ports(app_def, None, list(sched.apps.values()))
            except ValueError as exc:
                return error(422, str(exc))
            problem = ports.check_port_indices(app_def)
            if problem:
                return error(422, f"Object is not valid: {problem}")
            await sched.save_app(app_def)
            dep = await sched.start_deployment(app_id, "StartApplication", version)
            out = app_view(app_def)
            out["deployments"] = [{"id": dep}]
        sched.bus.publish(events.api_post(_remote(request), request.path, _raml(app_def)))
        return json_response(out, status=201, headers={"Location": f"/v2/apps{app_id}"})

    async def get_app(request: web.Request) -> web.StreamResponse:
        app_def = sched.apps.get(_app_id(request))
        if app_def is None:
            return error(404, f"App '{_app_id(request)}' does not exist")
        return json_response({"app": app_view(app_def, embed_tasks=True)})

    async def put_app(request: web.Request) -> web.StreamResponse:
        app_id = _app_id(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            return error(422, "Object is not valid: expected an object")
        problem = _numbers(body)
        if problem:
            return error(422, f"Object is not valid: {problem}")
        async with sched.lock:
            try:
                sched.check_lock(app_id, _force(request))
            except AppLocked as exc:
                return _locked(exc)
            version = layout.timestamp(time.time())
            current = sched.apps.get(app_id)
            changes = _editable(body)
            others = [a for i, a in sched.apps.items() if i != app_id]
            if "healthChecks" in changes:
                changes["healthChecks"] = [health.normalized(c) for c in changes["healthChecks"]]
            if current is None:
                app_def = {**views.APP_DEFAULTS, **changes, "id": app_id}
                app_def = ports.normalize(app_def, default=_default_ports(body))
                info = {"lastScalingAt": version, "lastConfigChangeAt": version}
                action = "StartApplication"
            else:
                app_def = ports.normalize({**current, **changes}, default=False)
                # GroupVersioningUtil.updateVersionInfoForChangedApps: a new configuration is
                # a new version (restart); a change of `instances` alone only scales; no
                # change at all keeps the version.
                try:
                    candidate = ports.assign_service_ports(app_def, current, others)
                except ValueError as exc:
                    return error(422, str(exc))
                scaling_only = _config(candidate) == _config(current)
                info = dict(current.get("versionInfo", {}))
                if scaling_only and candidate.get("instances") == current.get("instances"):
                    version = current["version"]
                else:
                    info["lastScalingAt"] = version
                if not scaling_only:
                    info["lastConfigChangeAt"] = version
                action = "ScaleApplication" if scaling_only else "RestartApplication"
            try:
                app_def = ports.assign_service_ports(app_def, current, others)
            except ValueError as exc:
                return error(422, str(exc))
            problem = ports.check_port_indices(app_def)
            if problem:
                return error(422, f"Object is not valid: {problem}")
            app_def.update({"version": version, "versionInfo": info})
            await sched.save_app(app_def)
            dep = await sched.start_deployment(app_id, action, version, current)
        sched.bus.publish(events.api_post(_remote(request), request.path, _raml(app_def)))
        status = 201 if current is None else 200
        return json_response({"version": version, "deploymentId": dep}, status=status)

    async def delete_app(request: web.Request) -> web.StreamResponse:
        app_id = _app_id(request)
        async with sched.lock:
            if app_id not in sched.apps:
                return error(404, f"App '{app_id}' does not exist")
            try:
                sched.check_lock(app_id, _force(request))
            except AppLocked as exc:
                return _locked(exc)
            version = layout.timestamp(time.time())
            original = sched.apps[app_id]
            await sched.delete_app(app_id)
            sched.delays.forget(app_id)
            dep = await sched.start_deployment(app_id, "StopApplication", version, original)
        return json_response({"version": version, "deploymentId": dep})

    async def app_tasks(request: web.Request) -> web.StreamResponse:
        app_id = _app_id(request)
        if app_id not in sched.apps:
            return error(404, f"App '{app_id}' does not exist")
        instances = sched.app_instances(app_id)
        return json_response({"tasks": [task_view(i) for i in instances if i["state"] in LIVE]})

    async def all_tasks(request: web.Request) -> web.StreamResponse:
        instances = [i for i in sched.instances.values() if i["state"] in LIVE]
        return json_response({"tasks": [task_view(i) for i in instances]})

    async def deployments(request: web.Request) -> web.StreamResponse:
        return json_response([views.deployment_json(d) for d in sched.deployments.values()])

    async def cancel_deployment(request: web.Request) -> web.StreamResponse:
        dep_id = request.match_info["deployment_id"]
        async with sched.lock:
            deployment = sched.deployments.get(dep_id)
            if deployment is None:
                return error(404, f"DeploymentPlan {dep_id} does not exist")
            if _force(request):
                # Cancelled, no deployment back to the previous state: 202 Accepted.
                await sched.cancel_deployment(dep_id)
                return web.Response(status=202)
            # A forced deployment back to the previous state of the app.
            app_id = deployment["affectedApps"][0]
            original = deployment.get("original")
            version = layout.timestamp(time.time())
            current = sched.apps.get(app_id)
            if original is None:
                await sched.delete_app(app_id)
                action = "StopApplication"
            else:
                info = {"lastScalingAt": version, "lastConfigChangeAt": version}
                reverted = {**original, "version": version, "versionInfo": info}
                await sched.save_app(reverted)
                action = "StartApplication" if current is None else "RestartApplication"
            new = await sched.start_deployment(app_id, action, version, current)
        return json_response({"deploymentId": new, "version": version})

    async def info(request: web.Request) -> web.StreamResponse:
        return json_response(marathon.info())

    async def queue(request: web.Request) -> web.StreamResponse:
        """api/v2/QueueResource.scala, raml/QueueInfoConversion.scala: each app with tasks
        left to launch, its launch delay, when it was queued."""
        now = time.time()
        items = []
        for app_id, app_def in sched.apps.items():
            live = [
                i
                for i in sched.app_instances(app_id)
                if i["state"] in LIVE and i["state"] != KILLING and not sched.stale(app_def, i)
            ]
            left = int(app_def["instances"]) - len(live)
            since = app_def.get("versionInfo", {}).get("lastScalingAt", app_def["version"])
            if left <= 0 and sched.delays.deadline(app_def) <= now:
                continue
            items.append(
                {
                    "app": _raml(app_def),
                    "count": max(0, left),
                    "delay": sched.delays.queue_delay(app_def, now),
                    "since": since,
                    "role": "*",
                    "processedOffersSummary": {
                        "processedOffersCount": 0,
                        "unusedOffersCount": 0,
                        "rejectSummaryLastOffers": [],
                        "rejectSummaryLaunchAttempt": [],
                    },
                }
            )
        return json_response({"queue": items})

    async def reset_delay(request: web.Request) -> web.StreamResponse:
        app_id = _app_id(request)
        app_def = sched.apps.get(app_id)
        if app_def is None:
            return error(404, f"Application {app_id} not found in tasks queue.")
        sched.delays.reset(app_def)
        return web.Response(status=204)

    app.router.add_get("/v2/apps", list_apps)
    app.router.add_post("/v2/apps", create_app)
    app.router.add_get("/v2/apps/{app_id:.+}/tasks", app_tasks)
    app.router.add_get("/v2/apps/{app_id:.+}", get_app)
    app.router.add_put("/v2/apps/{app_id:.+}", put_app)
    app.router.add_delete("/v2/apps/{app_id:.+}", delete_app)
    app.router.add_get("/v2/tasks", all_tasks)
    app.router.add_get("/v2/deployments", deployments)
    app.router.add_delete("/v2/deployments/{deployment_id}", cancel_deployment)
    app.router.add_get("/v2/info", info)
    app.router.add_get("/v2/queue", queue)
    app.router.add_delete("/v2/queue/{app_id:.+}/delay", reset_delay)
