"""Conformance: Marathon 1.11's event stream (`GET /v2/events`) and deployments.

Each test names the Marathon 1.11 source or doc it follows: `core/event/Events.scala`,
`api/v2/json/Formats.scala` (`EventFormats`), `core/event/impl/stream/*`, docs/docs/event-bus.md,
`core/deployment/DeploymentPlan.scala`, `core/deployment/impl/DeploymentActor.scala`,
`MarathonSchedulerActor.scala`, `api/v2/DeploymentsResource.scala`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from sim.marathon import events
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import EventStream


@pytest.fixture(scope="module")
def cluster(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    base = tmp_path_factory.mktemp("events")
    with SimCluster(
        _zk_ensemble_module.connect_string,
        masters=1,
        agents=1,
        marathons=1,
        base_dir=base,
        agent_resources="cpus:4;mem:4096;disk:10240",
    ) as sim:
        yield sim


def _app(app_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": app_id, "instances": 1, "cpus": 0.1, "mem": 32, "cmd": "sleep 1000", **fields}


def _types(stream: EventStream) -> list[str]:
    return [name for name, _ in stream.events]


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_new_app_streams_its_deployment_and_status_events(cluster: SimCluster) -> None:
    # event-bus.md + Events.scala: event_stream_attached{remoteAddress}; AppsResource posts
    # api_post_event{clientIp, uri, appDefinition}; DeploymentPlan.apply: a new app is two steps
    # (StartApplication, then ScaleApplication); DeploymentActor.performStep publishes
    # deployment_info{plan, currentStep} and deployment_step_success per step;
    # MarathonSchedulerActor.deploymentSuccess publishes deployment_success{id, plan};
    # InstanceChangedEventsGenerator: status_update_event + instance_changed_event per change.
    url = cluster.marathon_url()
    with EventStream(url + "/v2/events") as stream:
        stream.wait_for(lambda: bool(stream.of_type("event_stream_attached")), what="attached")
        assert stream.status == 200
        assert stream.response_headers is not None
        assert stream.response_headers["content-type"].startswith("text/event-stream")
        assert stream.of_type("event_stream_attached")[0]["remoteAddress"] == "127.0.0.1"
        created = httpx.post(url + "/v2/apps", json=_app("/ev/web"), timeout=10)
        assert created.status_code == 201
        dep_id = created.json()["deployments"][0]["id"]
        stream.wait_for(
            lambda: any(e["id"] == dep_id for e in stream.of_type("deployment_success")),
            what="deployment_success",
        )
    assert b"event: event_stream_attached\r\ndata: {" in stream.raw  # Jetty's framing

    post = stream.of_type("api_post_event")[0]
    assert post["uri"] == "/v2/apps" and post["appDefinition"]["id"] == "/ev/web"
    assert post["clientIp"] == "127.0.0.1"
    infos = [e for e in stream.of_type("deployment_info") if e["plan"]["id"] == dep_id]
    plan_steps = [{"actions": [{"action": "StartApplication", "app": "/ev/web"}]}]
    plan_steps.append({"actions": [{"action": "ScaleApplication", "app": "/ev/web"}]})
    assert infos[0]["plan"]["steps"] == plan_steps
    assert [e["currentStep"] for e in infos] == plan_steps
    steps = [e for e in stream.of_type("deployment_step_success") if e["plan"]["id"] == dep_id]
    assert [e["currentStep"] for e in steps] == plan_steps
    success = next(e for e in stream.of_type("deployment_success") if e["id"] == dep_id)
    assert set(success) == {"id", "plan", "eventType", "timestamp"}
    updates = stream.of_type("status_update_event")
    running = [e for e in updates if e["taskStatus"] == "TASK_RUNNING"]
    assert running and running[0]["appId"] == "/ev/web"
    assert set(running[0]) >= {"slaveId", "taskId", "host", "ports", "version", "ipAddresses"}
    conditions = [e["condition"] for e in stream.of_type("instance_changed_event")]
    assert "Running" in conditions
    order = _types(stream)
    assert order.index("deployment_info") < order.index("deployment_success")


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_event_type_filters_the_stream(cluster: SimCluster) -> None:
    # HttpEventSSEHandle.subscribed: only the listed event_type values (repeatable).
    url = cluster.marathon_url()
    query = "?event_type=deployment_success&event_type=api_post_event"
    with EventStream(url + "/v2/events" + query) as stream:
        stream.wait_for(lambda: stream.status == 200, what="the stream")
        created = httpx.post(url + "/v2/apps", json=_app("/ev/filtered"), timeout=10)
        assert created.status_code == 201
        stream.wait_for(lambda: bool(stream.of_type("deployment_success")), what="success")
    assert set(_types(stream)) == {"api_post_event", "deployment_success"}


@pytest.mark.zookeeper
@pytest.mark.timeout(60)
def test_the_stream_needs_accept_text_event_stream(cluster: SimCluster) -> None:
    # Jetty EventSourceServlet.doGet: only `Accept: text/event-stream` (exactly) is streamed;
    # otherwise HttpServlet.doGet answers 405 (docs/docs/rest-api/public/api/v2/events.raml).
    url = cluster.marathon_url()
    for accept in ("application/json", "text/event-stream, */*"):
        response = httpx.get(url + "/v2/events", headers={"Accept": accept}, timeout=10)
        assert response.status_code == 405


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_locked_app_is_409_and_force_cancels_the_running_deployment(
    cluster: SimCluster,
) -> None:
    # MarathonSchedulerActor.deploy + DeploymentManagerActor: an app with a running deployment
    # is locked; MarathonExceptionMapper: 409 {message, deployments: [{id}]}. force=true cancels
    # it: deployment_failed{id, plan, reason: "The upgrade has been cancelled"}.
    url = cluster.marathon_url()
    with EventStream(url + "/v2/events?event_type=deployment_failed") as stream:
        stream.wait_for(lambda: stream.status == 200, what="the stream")
        # More cpus than the agent has: the deployment cannot finish.
        created = httpx.post(url + "/v2/apps", json=_app("/ev/big", cpus=64), timeout=10)
        first = created.json()["deployments"][0]["id"]
        locked = httpx.put(url + "/v2/apps/ev/big", json={"cpus": 0.1}, timeout=10)
        assert locked.status_code == 409
        assert locked.json()["deployments"] == [{"id": first}]
        assert "locked by one or more deployments" in locked.json()["message"]
        assert httpx.delete(url + "/v2/apps/ev/big", timeout=10).status_code == 409
        forced = httpx.put(url + "/v2/apps/ev/big?force=true", json={"cpus": 0.1}, timeout=10)
        assert forced.status_code == 200
        stream.wait_for(lambda: bool(stream.of_type("deployment_failed")), what="failed")
    failed = stream.of_type("deployment_failed")[0]
    assert failed["id"] == first and failed["reason"] == "The upgrade has been cancelled"
    deployments = cluster.get(url + "/v2/deployments")
    assert first not in [d["id"] for d in deployments]
    cluster.wait_for(lambda: cluster.get(url + "/v2/deployments") == [], what="the new deployment")


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_config_change_restarts_the_tasks_and_cancel_with_force_is_202(
    cluster: SimCluster,
) -> None:
    # DeploymentPlan.dependencyOrderedSteps: a change other than scaling is RestartApplication,
    # whose tasks are replaced by tasks of the new version (the default upgradeStrategy starts
    # the new ones first); DeploymentsResource.cancel with force=true: 202, no rollback.
    url = cluster.marathon_url()
    assert httpx.post(url + "/v2/apps", json=_app("/ev/roll"), timeout=10).status_code == 201
    old = cluster.wait_for_tasks("/ev/roll", 1)
    cluster.wait_for(lambda: cluster.get(url + "/v2/deployments") == [], what="deployed")
    changed = httpx.put(url + "/v2/apps/ev/roll", json={"cmd": "sleep 2000"}, timeout=10)
    assert changed.status_code == 200
    deployment = cluster.get(url + "/v2/deployments")[0]
    assert deployment["currentActions"][0]["action"] == "RestartApplication"
    assert deployment["totalSteps"] == 1

    def replaced() -> bool:
        tasks = cluster.get(url + "/v2/apps/ev/roll/tasks")["tasks"]
        return [t["state"] for t in tasks] == ["TASK_RUNNING"] and tasks[0]["id"] != old[0]["id"]

    cluster.wait_for(replaced, what="the task replaced by one of the new version")
    big = httpx.post(url + "/v2/apps", json=_app("/ev/stuck", cpus=64), timeout=10)
    stuck = big.json()["deployments"][0]["id"]
    assert httpx.delete(url + f"/v2/deployments/{stuck}?force=true", timeout=10).status_code == 202
    assert stuck not in [d["id"] for d in cluster.get(url + "/v2/deployments")]
    assert httpx.delete(url + f"/v2/deployments/{stuck}", timeout=10).status_code == 404


def test_a_slow_consumer_is_dropped_and_detached() -> None:
    # HttpEventStreamHandleActor.stashEvents: a consumer with maxOutstanding events still
    # queued is dropped ("Closing connection for slow event consumer"); postStop publishes
    # event_stream_detached. EventConf: --event_stream_max_outstanding_messages (1024).
    async def run() -> tuple[list[Any], list[Any]]:
        bus = events.EventBus(max_outstanding=3)
        slow = bus.attach("10.0.0.1", [])
        watcher = bus.attach("10.0.0.2", [])
        got_watcher = []
        for _ in range(3):
            bus.publish({"eventType": "status_update_event"})
            while not watcher.queue.empty():  # a consumer that keeps up
                got_watcher.append(watcher.queue.get_nowait())
        got_slow = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        return got_slow, got_watcher

    got_slow, got_watcher = asyncio.run(run())
    assert got_slow == [None]  # dropped: its stream ends
    detached = [e for e in got_watcher if e["eventType"] == "event_stream_detached"]
    assert [e["remoteAddress"] for e in detached] == ["10.0.0.1"]


def test_frames_are_jettys() -> None:
    # Jetty EventSourceServlet.EventSourceEmitter.event: "event: <name>\r\n", "data: <line>\r\n"
    # per line, then "\r\n".
    frame = events.frame({"eventType": "deployment_success", "id": "x"})
    assert frame == (
        b'event: deployment_success\r\ndata: {"eventType":"deployment_success","id":"x"}\r\n\r\n'
    )


def test_scheduler_registered_event_fields() -> None:
    # Events.scala SchedulerRegisteredEvent(frameworkId, master) with Json.writes; master is
    # MasterInfo.getHostname (MarathonScheduler.registered).
    event = events.scheduler_registered("fw-1", "10.0.0.5")
    assert set(event) == {"frameworkId", "master", "eventType", "timestamp"}
    assert event["eventType"] == "scheduler_registered_event"
