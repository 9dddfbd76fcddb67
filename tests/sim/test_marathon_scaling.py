"""Conformance: how Marathon 1.11 kills, scales and restarts an app's tasks.

Sources (read, not copied): `mesos/TaskBuilder.scala` (`taskKillGracePeriodSeconds` is the
TaskInfo's KillPolicy grace period), Mesos `src/launcher/executor.cpp` (a kill is TASK_KILLING,
SIGTERM, then SIGKILL after the kill policy's grace period, default 3 s, then TASK_KILLED),
Marathon `core/instance/update/InstanceChangedEventsGenerator.scala` (a status_update_event
per state), `state/AppDefinition.scala` (`isUpgrade`: any change but `instances` is a new
configuration; `isOnlyScaleChange`), `upgrade/GroupVersioningUtil.scala` (a scale keeps
`lastConfigChangeAt`; no change keeps the version), `core/deployment/DeploymentPlan.scala`
(ScaleApplication vs RestartApplication).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from sim.marathon import layout
from sim.marathon.storage import Store
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import EventStream, marathon_cluster

# Ignores SIGTERM (the exec'd server inherits SIG_IGN): only SIGKILL ends it.
STUBBORN = "trap '' TERM; exec python3 -m http.server $PORT0 --bind 127.0.0.1"
SERVE = "exec python3 -m http.server $PORT0 --bind 127.0.0.1"


@pytest.fixture(scope="module")
def cluster(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    with marathon_cluster(
        _zk_ensemble_module.connect_string, tmp_path_factory.mktemp("scaling")
    ) as sim:
        yield sim


def _app(app_id: str, cmd: str = SERVE, **fields: Any) -> dict[str, Any]:
    return {"id": app_id, "instances": 1, "cpus": 0.1, "mem": 32, "cmd": cmd, **fields}


def _wait(predicate: Any, what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}; last {last!r}")


def _tasks(url: str, app_id: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/v2/apps{app_id}/tasks", timeout=5).json()["tasks"])


def _running(url: str, app_id: str, count: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        tasks = [t for t in _tasks(url, app_id) if t["state"] == "TASK_RUNNING"]
        return tasks if len(tasks) == count and len(_tasks(url, app_id)) == count else None

    return list(_wait(ready, f"{count} running tasks of {app_id}"))


def _idle(url: str, app_id: str) -> None:
    _wait(
        lambda: (
            not [
                d
                for d in httpx.get(url + "/v2/deployments", timeout=5).json()
                if app_id in d["affectedApps"]
            ]
        ),
        f"no deployment of {app_id}",
    )


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_kill_is_task_killing_then_killed_after_the_apps_grace_period(
    cluster: SimCluster,
) -> None:
    url = cluster.marathon_url()
    app = _app("/kill/stubborn", STUBBORN, taskKillGracePeriodSeconds=8)
    assert httpx.post(url + "/v2/apps", json=app, timeout=10).status_code == 201
    task = _running(url, "/kill/stubborn", 1)[0]
    _idle(url, "/kill/stubborn")
    query = "?event_type=status_update_event&event_type=event_stream_attached"
    with EventStream(url + "/v2/events" + query) as stream:
        stream.wait_for(lambda: bool(stream.of_type("event_stream_attached")), what="attached")
        scaled = httpx.put(url + "/v2/apps/kill/stubborn", json={"instances": 0}, timeout=10)
        assert scaled.status_code == 200, scaled.text

        def states() -> list[str]:
            return [
                e["taskStatus"]
                for e in stream.of_type("status_update_event")
                if e["taskId"] == task["id"]
            ]

        stream.wait_for(lambda: "TASK_KILLING" in states(), what="TASK_KILLING")
        # SIGTERM is ignored: within the grace period the task still serves
        served = httpx.get(f"http://127.0.0.1:{task['ports'][0]}/", timeout=5)
        assert served.status_code == 200
        assert "TASK_KILLED" not in states()
        stream.wait_for(lambda: "TASK_KILLED" in states(), what="TASK_KILLED")
    assert states() == ["TASK_KILLING", "TASK_KILLED"]
    killing = next(
        e for e in stream.of_type("status_update_event") if e["taskStatus"] == "TASK_KILLING"
    )
    assert killing["ports"] == task["ports"] and killing["appId"] == "/kill/stubborn"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{task['ports'][0]}/", timeout=5)


@pytest.mark.zookeeper
@pytest.mark.timeout(150)
def test_a_put_of_only_instances_scales_without_a_restart(cluster: SimCluster) -> None:
    url = cluster.marathon_url()
    definition = _app("/scale/web", env={"A": "1"}, labels={"tier": "web"})
    created = httpx.post(url + "/v2/apps", json=definition, timeout=10)
    assert created.status_code == 201
    first = _running(url, "/scale/web", 1)
    _idle(url, "/scale/web")
    before = httpx.get(url + "/v2/apps/scale/web", timeout=5).json()["app"]

    # The whole definition again, only `instances` changed (as a client that PUTs what it
    # keeps in git does): a scale, the running task stays.
    query = "?event_type=deployment_info&event_type=event_stream_attached"
    with EventStream(url + "/v2/events" + query) as stream:
        stream.wait_for(lambda: bool(stream.of_type("event_stream_attached")), what="attached")
        scaled = httpx.put(url + "/v2/apps/scale/web", json={**definition, "instances": 2})
        assert scaled.status_code == 200, scaled.text
        dep = scaled.json()["deploymentId"]
        stream.wait_for(
            lambda: any(e["plan"]["id"] == dep for e in stream.of_type("deployment_info"))
        )
    info = next(e for e in stream.of_type("deployment_info") if e["plan"]["id"] == dep)
    assert info["currentStep"]["actions"] == [{"action": "ScaleApplication", "app": "/scale/web"}]
    two = _running(url, "/scale/web", 2)
    assert first[0]["id"] in {t["id"] for t in two}
    after = httpx.get(url + "/v2/apps/scale/web", timeout=5).json()["app"]
    assert after["version"] != before["version"]
    assert after["versionInfo"]["lastConfigChangeAt"] == before["versionInfo"]["lastConfigChangeAt"]
    assert after["versionInfo"]["lastScalingAt"] == after["version"]
    _idle(url, "/scale/web")

    # The same definition once more: nothing changes, not even the version.
    same = httpx.put(url + "/v2/apps/scale/web", json={**definition, "instances": 2})
    assert same.status_code == 200
    assert httpx.get(url + "/v2/apps/scale/web").json()["app"]["version"] == after["version"]
    _idle(url, "/scale/web")

    # Any other change (here a label) is a new configuration: every task is replaced.
    restarted = httpx.put(
        url + "/v2/apps/scale/web",
        json={**definition, "instances": 2, "labels": {"tier": "front"}},
    )
    assert restarted.status_code == 200
    _idle(url, "/scale/web")
    replaced = _running(url, "/scale/web", 2)
    assert not {t["id"] for t in replaced} & {t["id"] for t in two}
    final = httpx.get(url + "/v2/apps/scale/web", timeout=5).json()["app"]
    assert final["versionInfo"]["lastConfigChangeAt"] == final["version"]


@pytest.mark.zookeeper
@pytest.mark.timeout(150)
def test_an_instance_whose_task_its_registered_agent_does_not_know_is_lost_not_kept(
    cluster: SimCluster,
) -> None:
    """Mesos `src/master/master.cpp` `Master::reconcileTasks`, case (3): a task the master does
    not know, of an agent that is registered, is answered TASK_LOST (TASK_GONE to a
    partition-aware framework), "Reconciliation: Task is unknown to the agent"; only an agent
    still recovering after a failover leaves it unanswered (case 2). `Master::kill` of an
    unknown task performs the same reconciliation. Marathon's store can hold such an instance
    after failovers (launched by a leader whose master died before the agent had the task);
    kept as live, it is one instance too many that no kill ever ends, and a scale-down waits
    for ever (the chaos finding of issue 20: a canary left at 3/2 running)."""
    url = cluster.marathon_url()
    definition = _app("/reconcile/web", instances=2)
    assert httpx.post(url + "/v2/apps", json=definition, timeout=10).status_code == 201
    real = {t["id"] for t in _running(url, "/reconcile/web", 2)}
    _idle(url, "/reconcile/web")

    cluster.kill_marathon(0)
    store = Store(cluster.zk, cluster.marathon_path)
    one = next(i for i in store.load("instance").values() if i["taskId"] in real)
    phantom_id = one["instanceId"].split(".instance-")[0] + f".instance-{uuid.uuid4()}"
    phantom = {**one, "instanceId": phantom_id, "taskId": phantom_id + "._app.1"}
    store.put("instance", phantom_id, phantom)
    cluster.start_marathon(0)
    cluster.wait_for_marathon(timeout=60)

    # Marathon keeps the last failure of each app (taskFailures, TaskFailureRepository); the
    # event itself may come before a stream could attach to the new leader
    def failure() -> dict[str, Any] | None:
        raw = store.get_bytes("taskFailures", layout.safe_id("/reconcile/web"))
        return json.loads(raw) if raw else None

    lost = _wait(failure, "the unknown task's failure")
    assert lost["taskId"] == phantom["taskId"]
    assert lost["state"] == "TASK_LOST"
    assert lost["message"] == "Reconciliation: Task is unknown to the agent"
    # the two real tasks kept running; a scale-down then completes
    assert {t["id"] for t in _running(url, "/reconcile/web", 2)} == real
    scaled = httpx.put(url + "/v2/apps/reconcile/web", json={**definition, "instances": 1})
    assert scaled.status_code == 200, scaled.text
    _idle(url, "/reconcile/web")
    assert len(_running(url, "/reconcile/web", 1)) == 1
