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
}

EDITABLE = set(APP_DEFAULTS) - {"executor"}


def task_json(instance: dict[str, Any]) -> dict[str, Any]:
    started = instance.get("startedAt")
    return {
        "id": instance["taskId"],
        "appId": instance["appId"],
        "host": instance.get("host", ""),
        "ports": [],
        "servicePorts": [],
        "startedAt": timestamp(started) if started else None,
        "stagedAt": timestamp(instance["stagedAt"]),
        "version": instance["version"],
        "slaveId": instance.get("agentId", ""),
        "state": instance["state"],
        "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}],
        "localVolumes": [],
    }


def app_json(
    app: dict[str, Any], instances: list[dict[str, Any]], deployments: list[str]
) -> dict[str, Any]:
    out = {**APP_DEFAULTS, **app}
    out["tasksStaged"] = sum(1 for i in instances if i["state"] in (STAGING, STARTING))
    out["tasksRunning"] = sum(1 for i in instances if i["state"] == RUNNING)
    out["tasksHealthy"] = 0
    out["tasksUnhealthy"] = 0
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
