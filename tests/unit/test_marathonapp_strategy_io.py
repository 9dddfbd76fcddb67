"""What operator/marathonapp/strategy.py reads from Marathon and writes for the load
balancer (the I/O itself runs in tests/integration/test_marathonapp_traffic.py)."""

from __future__ import annotations

import json
from typing import Any

from orchestrator_operator.operator.marathonapp.strategy import (
    app_state,
    failing_health_checks,
    traffic_configmap,
)


def marathon_app(**extra: Any) -> dict[str, Any]:
    """`GET /v2/apps/<id>?embed=app.tasks,...` as Marathon 1.11 answers (AppInfo)."""
    return {
        "id": "/web-canary",
        "instances": 2,
        "version": "2026-12-03T20:00:00.000Z",
        "labels": {"ORCHESTRATOR_REVISION": "abc", "HAPROXY_DEPLOYMENT_GROUP": "web"},
        "portDefinitions": [{"port": 10004, "protocol": "tcp"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/health"}],
        "tasksRunning": 2,
        "tasksHealthy": 1,
        "tasksUnhealthy": 1,
        "deployments": [],
        "tasks": [
            {"id": "a", "healthCheckResults": [{"alive": True, "consecutiveFailures": 0}]},
            # Failed once within its grace period: not alive, but no counted failure.
            {"id": "b", "healthCheckResults": [{"alive": False, "consecutiveFailures": 0}]},
        ],
        **extra,
    }


def test_a_failure_in_the_grace_period_is_not_a_failing_task() -> None:
    state = app_state(marathon_app(), [])
    assert state.unhealthy == 0 and state.healthy == 1 and not state.ready
    assert state.revision == "abc" and state.service_port == 10004
    assert state.failure is None


def test_counted_health_check_failures_make_a_failing_task() -> None:
    tasks = [{"id": "a", "healthCheckResults": [{"alive": False, "consecutiveFailures": 2}]}]
    assert failing_health_checks(marathon_app(tasks=tasks)) == 1


def test_a_launch_delay_or_a_task_failure_of_its_version_is_a_failure() -> None:
    queue = [{"app": {"id": "/web-canary"}, "delay": {"overdue": False, "timeLeftSeconds": 7}}]
    state = app_state(marathon_app(), queue)
    assert state.failure == "Marathon delays its launches (its tasks keep failing; next in 7 s)"
    failed = {"version": "2026-12-03T20:00:00.000Z", "state": "TASK_FAILED", "message": "exit 1"}
    assert app_state(marathon_app(lastTaskFailure=failed), []).failure == (
        "a task failed (TASK_FAILED: exit 1)"
    )
    older = {**failed, "version": "2026-12-01T00:00:00.000Z"}
    assert app_state(marathon_app(lastTaskFailure=older), []).failure is None


def test_the_shared_port_label_wins_over_marathons_service_port() -> None:
    labels = {"HAPROXY_0_PORT": "8080"}
    assert app_state(marathon_app(labels=labels), []).service_port == 8080


def test_the_traffic_configmap_follows_the_contract() -> None:
    body = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MarathonApp",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
    }
    cm = traffic_configmap(body, "prod", "web", {"/web": 90, "/web-canary": 10})
    assert cm["metadata"]["name"] == "web-traffic"
    assert cm["metadata"]["namespace"] == "shop"
    assert cm["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "orchestrator",
        "orchestrator.dev/traffic-for": "prod",
    }
    owner = cm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "MarathonApp", "web", "u-1", True
    )  # fmt: skip
    assert json.loads(cm["data"]["weights.json"]) == {
        "group": "web",
        "weights": {"/web": 90, "/web-canary": 10},
    }
