"""Conformance: Marathon 1.11's health checks of app tasks.

Sources (read, not copied): `core/health/impl/HealthCheckActor.scala` (first check after
min(interval, 5 s); failures ignored in the grace period before a first success; a failure
publishes `failed_health_check_event` and, when the task had already failed
maxConsecutiveFailures times in a row, kills it with `unhealthy_instance_kill_event`;
`health_status_changed_event` when alive flips), `core/health/Health.scala` (alive),
`core/health/impl/HealthCheckWorker.scala` (HTTP 200..399 healthy; TCP connect),
`core/health/HealthCheck.scala` (defaults), `api/v2/json/Formats.scala` (event fields),
`core/appinfo/TaskCounts.scala` (tasksHealthy/tasksUnhealthy), `raml/HealthConversion.scala`
(`healthCheckResults`), `core/deployment/impl/TaskStartActor.scala` and
`TaskReplaceActor.scala` (with health checks a new task counts once healthy).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from sim.marathon import health, planner
from sim.tasks import RUNNING
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import EventStream, marathon_cluster

# Serves its sandbox on PORT0: GET /ok is 200 once the file exists, else 404.
SERVE = "exec python3 -m http.server $PORT0 --bind 127.0.0.1"


@pytest.fixture(scope="module")
def cluster(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    with marathon_cluster(
        _zk_ensemble_module.connect_string, tmp_path_factory.mktemp("health")
    ) as sim:
        yield sim


def _check(**fields: Any) -> dict[str, Any]:
    return {
        "protocol": "HTTP",
        "path": "/ok",
        "gracePeriodSeconds": 0,
        "intervalSeconds": 1,
        "timeoutSeconds": 1,
        "maxConsecutiveFailures": 1,
        **fields,
    }


def _app(app_id: str, cmd: str, checks: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": app_id,
        "instances": 1,
        "cpus": 0.1,
        "mem": 32,
        "cmd": cmd,
        "healthChecks": checks,
        **fields,
    }


def _wait(predicate: Any, what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}; last {last!r}")


def _app_json(url: str, app_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/v2/apps{app_id}", timeout=5).json()["app"])


# ---------------------------------------------------------------- the rules (pure)


def _instance(started: float) -> dict[str, Any]:
    return {
        "instanceId": "web.instance-1",
        "taskId": "web.instance-1._app.1",
        "appId": "/web",
        "version": "v1",
        "state": RUNNING,
        "startedAt": started,
        "host": "h",
        "agentId": "a",
        "healthChecks": [_check()],
    }


def test_failures_in_the_grace_period_are_ignored_but_recorded() -> None:
    # HealthCheckActor.ignoreFailures: no first success and within gracePeriod -> the health
    # is kept (and stored: the task shows as not alive), no event, no kill.
    published: list[dict[str, Any]] = []
    killed: list[str] = []
    checker = health.HealthChecker(published.append, lambda i, cause: killed.append(cause))
    instance = _instance(started=1000.0)
    check = health.normalized(_check(gracePeriodSeconds=10, maxConsecutiveFailures=1))
    checker.due[(instance["instanceId"], 0)] = 0.0
    for now in (1001.0, 1002.0, 1003.0):
        checker._handle(instance, 0, check, health.Result(False, "404 Not Found"), now)
    assert published == [] and killed == []
    assert checker.healthy(instance) is False
    assert checker.results(instance)[0]["consecutiveFailures"] == 0


def test_a_task_is_killed_on_the_failure_after_max_consecutive_failures() -> None:
    # HealthCheckActor.checkConsecutiveFailures compares the count *before* this failure:
    # with maxConsecutiveFailures 2 the third failure in a row kills (0 never kills).
    published: list[dict[str, Any]] = []
    killed: list[str] = []
    checker = health.HealthChecker(published.append, lambda i, cause: killed.append(cause))
    instance = _instance(started=1000.0)
    check = health.normalized(_check(maxConsecutiveFailures=2))
    checker.due[(instance["instanceId"], 0)] = 0.0
    checker._handle(instance, 0, check, health.Result(True), 1001.0)
    assert [e["eventType"] for e in published] == ["health_status_changed_event"]
    assert published[0]["alive"] is True and checker.healthy(instance) is True
    for now in (1002.0, 1003.0):
        checker._handle(instance, 0, check, health.Result(False, "503 Service Unavailable"), now)
    assert killed == []
    checker._handle(instance, 0, check, health.Result(False, "503 Service Unavailable"), 1004.0)
    assert killed == ["503 Service Unavailable"]
    types = [e["eventType"] for e in published]
    assert types == [
        "health_status_changed_event",
        "failed_health_check_event",
        "health_status_changed_event",
        "failed_health_check_event",
        "failed_health_check_event",
        "unhealthy_instance_kill_event",
    ]
    assert published[2]["alive"] is False
    kill = published[-1]
    assert kill["reason"] == "503 Service Unavailable" and kill["taskId"] == instance["taskId"]
    assert published[1]["taskId"] == instance["instanceId"]  # Formats: taskId = instance id
    never = health.HealthChecker(published.append, lambda i, cause: killed.append("never"))
    zero = health.normalized(_check(maxConsecutiveFailures=0))
    never.due[(instance["instanceId"], 0)] = 0.0
    for now in range(1001, 1010):
        never._handle(instance, 0, zero, health.Result(False, "down"), float(now))
    assert "never" not in killed


def test_defaults_and_validation() -> None:
    # HealthCheck.scala: grace 300 s, interval 60 s, timeout 20 s, 3 failures, portIndex 0.
    check = health.normalized({"protocol": "HTTP"})
    assert (check["gracePeriodSeconds"], check["intervalSeconds"]) == (300, 60)
    assert (check["timeoutSeconds"], check["maxConsecutiveFailures"]) == (20, 3)
    assert check["portIndex"] == 0 and check["path"] == "/"
    assert health.validate({"healthChecks": [{"protocol": "UDP"}]}) is not None
    assert health.validate({"healthChecks": [{"protocol": "COMMAND"}]}) is not None
    assert health.validate({"healthChecks": [{"intervalSeconds": -1}]}) is not None


def test_a_deployment_with_health_checks_waits_for_healthy_tasks() -> None:
    # TaskReplaceActor: a new task running but not yet healthy frees no old one.
    old = planner.LiveTask("old", "a", RUNNING, 1.0, stale=True)
    new_unhealthy = planner.LiveTask("new", "a", RUNNING, 2.0, healthy=False)
    new_healthy = planner.LiveTask("new", "a", RUNNING, 2.0, healthy=True)
    assert planner.plan(1, [old, new_unhealthy], set()).kill == []
    assert planner.plan(1, [old, new_healthy], set()).kill == ["old"]
    assert not planner.satisfied(1, [new_unhealthy], set())
    assert planner.satisfied(1, [new_healthy], set())


# ---------------------------------------------------------------- a live Marathon


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_http_tcp_and_command_checks_make_a_task_healthy(cluster: SimCluster) -> None:
    url = cluster.marathon_url()
    probe = (
        "python3 -c \"import os, socket; socket.create_connection(('127.0.0.1', "
        "int(os.environ['PORT0'])), 1)\""
    )
    # a grace period long enough for the server to start on a loaded machine: failures
    # before its first success are ignored (no kill)
    checks = [
        _check(gracePeriodSeconds=60),
        _check(protocol="TCP", gracePeriodSeconds=60),
        _check(protocol="COMMAND", command={"value": probe}, delaySeconds=0, gracePeriodSeconds=60),
    ]
    with EventStream(url + "/v2/events?event_type=health_status_changed_event") as stream:
        created = httpx.post(
            url + "/v2/apps", json=_app("/hc/good", "touch ok && " + SERVE, checks), timeout=10
        )
        assert created.status_code == 201, created.text
        app = _wait(lambda: (a := _app_json(url, "/hc/good"))["tasksHealthy"] == 1 and a, "healthy")
        stream.wait_for(lambda: len(stream.of_type("health_status_changed_event")) >= 3)
    assert app["tasksUnhealthy"] == 0 and app["tasksRunning"] == 1
    task = app["tasks"][0]
    results = task["healthCheckResults"]
    assert len(results) == 3 and all(r["alive"] for r in results)
    assert results[0]["instanceId"] and results[0]["consecutiveFailures"] == 0
    changed = stream.of_type("health_status_changed_event")
    assert all(e["alive"] and e["appId"] == "/hc/good" for e in changed)
    _wait(lambda: not httpx.get(url + "/v2/deployments", timeout=5).json(), "deployment done")


@pytest.mark.zookeeper
@pytest.mark.timeout(150)
def test_an_unhealthy_task_is_killed_and_replaced_and_its_deployment_waits(
    cluster: SimCluster,
) -> None:
    url = cluster.marathon_url()
    with EventStream(url + "/v2/events") as stream:
        created = httpx.post(url + "/v2/apps", json=_app("/hc/bad", SERVE, [_check()]))
        assert created.status_code == 201, created.text
        dep_id = created.json()["deployments"][0]["id"]
        stream.wait_for(
            lambda: any(
                e["appId"] == "/hc/bad" for e in stream.of_type("unhealthy_instance_kill_event")
            ),
            timeout=60,
            what="unhealthy_instance_kill_event",
        )
        kill = stream.of_type("unhealthy_instance_kill_event")[0]
        stream.wait_for(
            lambda: any(
                e["taskId"] == kill["taskId"] and e["taskStatus"] == "TASK_KILLED"
                for e in stream.of_type("status_update_event")
            ),
            what="TASK_KILLED of the unhealthy task",
        )
        # replaced by a new task, the deployment still waiting for a healthy one
        _wait(
            lambda: any(
                t["id"] != kill["taskId"] for t in _app_json(url, "/hc/bad").get("tasks", [])
            ),
            "a replacement task",
        )
        deployments = httpx.get(url + "/v2/deployments", timeout=5).json()
        assert [d["id"] for d in deployments] == [dep_id]
        # a new version whose task passes: the deployment of that version succeeds
        fixed = httpx.put(
            url + "/v2/apps/hc/bad?force=true",
            json={"cmd": "touch ok && " + SERVE, "healthChecks": [_check(gracePeriodSeconds=60)]},
            timeout=10,
        )
        assert fixed.status_code == 200, fixed.text
        new_dep = fixed.json()["deploymentId"]
        stream.wait_for(
            lambda: any(e["id"] == new_dep for e in stream.of_type("deployment_success")),
            timeout=60,
            what="deployment_success",
        )
    failed = [e for e in stream.of_type("failed_health_check_event") if e["appId"] == "/hc/bad"]
    assert failed and failed[0]["healthCheck"]["path"] == "/ok"
    assert kill["reason"].startswith("404")
    assert kill["host"] == "127.0.0.1" and kill["slaveId"]
    app = _app_json(url, "/hc/bad")
    assert app["tasksHealthy"] == 1 and app["tasksUnhealthy"] == 0
