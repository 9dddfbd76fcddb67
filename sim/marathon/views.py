"""Marathon REST JSON shapes (pure): apps, tasks, deployments."""

from __future__ import annotations

from typing import Any

from sim.marathon.layout import timestamp
from sim.tasks import RUNNING, STAGING, STARTING

APP_DEFAULTS: dict[str, Any] = {
    "cmd": None,
    "args": None,
    "user": None,
    "env": {},
    "instances": 1,
    "cpus": 1.0,
    "mem": 128.0,
    "disk": 0.0,
    "gpus": 0,
    "executor": "",
    "constraints": [],
    "uris": [],
    "fetch": [],
    "storeUrls": [],
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 300,
    "container": None,
    "healthChecks": [],
    "readinessChecks": [],
    "dependencies": [],
    "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    "labels": {},
    "killSelection": "YOUNGEST_FIRST",
    "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
    "requirePorts": False,
    "portDefinitions": [],
    "networks": [{"mode": "host"}],
    "taskKillGracePeriodSeconds": None,
}

EDITABLE = set(APP_DEFAULTS) - {"executor"}


def task_json(
    instance: dict[str, Any],
    service_ports: list[int] | None = None,
    health_results: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`raml.Task` (raml/TaskConversion.scala): host ports, the app's service ports and, for
    an app with health checks, `healthCheckResults`."""
    started = instance.get("startedAt")
    out = {
        "id": instance["taskId"],
        "appId": instance["appId"],
        "host": instance.get("host", ""),
        "ports": list(instance.get("ports") or []),
        "servicePorts": list(service_ports or []),
        "startedAt": timestamp(started) if started else None,
        "stagedAt": timestamp(instance["stagedAt"]),
        "version": instance["version"],
        "slaveId": instance.get("agentId", ""),
        "state": instance["state"],
        "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}],
        "localVolumes": [],
    }
    if instance.get("healthChecks"):
        out["healthCheckResults"] = list(health_results or [])
    return out


def app_json(
    app: dict[str, Any],
    instances: list[dict[str, Any]],
    deployments: list[str],
    health: dict[str, bool | None] | None = None,
) -> dict[str, Any]:
    """`raml.App` with AppInfo's task counts (appinfo/TaskCounts.scala: healthy, every check
    alive; unhealthy, some check not alive); `health` maps instance ids to that."""
    out = {**APP_DEFAULTS, **app}
    health = health or {}
    out["tasksStaged"] = sum(1 for i in instances if i["state"] in (STAGING, STARTING))
    out["tasksRunning"] = sum(1 for i in instances if i["state"] == RUNNING)
    out["tasksHealthy"] = sum(1 for i in instances if health.get(i["instanceId"]) is True)
    out["tasksUnhealthy"] = sum(1 for i in instances if health.get(i["instanceId"]) is False)
    out["deployments"] = [{"id": d} for d in deployments]
    return out


def deployment_json(deployment: dict[str, Any]) -> dict[str, Any]:
    """`raml.DeploymentStepInfo` (raml/DeploymentPlanConversion.scala): the plan, its current
    step (1-based) and that step's actions with their readiness check results."""
    steps = deployment["steps"]
    current = steps[int(deployment["currentStep"]) - 1]
    return {
        "id": deployment["id"],
        "version": deployment["version"],
        "affectedApps": deployment["affectedApps"],
        "affectedPods": [],
        "steps": [{"actions": list(step)} for step in steps],
        "currentActions": [{**a, "readinessCheckResults": []} for a in current],
        "currentStep": deployment["currentStep"],
        "totalSteps": len(steps),
    }
