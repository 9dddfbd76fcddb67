"""Marathon's event bus and the `/v2/events` server-sent-event stream.

Follows Marathon 1.11:
- `core/event/Events.scala` and `api/v2/json/Formats.scala` (`EventFormats`): the event types
  and their JSON fields;
- `core/event/impl/stream/HttpEventStreamServlet.scala`: the `event_type` query filter (every
  type when absent), `remoteAddress` is the client's address;
- `core/event/impl/stream/HttpEventStreamHandleActor.scala`: a stream subscribes, then
  publishes `event_stream_attached`; events queue while a write is in progress and a consumer
  with `--event_stream_max_outstanding_messages` (1024) events outstanding is dropped
  ("Closing connection for slow event consumer"); a stopped stream publishes
  `event_stream_detached`;
- Jetty 9.4 `EventSourceServlet` (which Marathon's servlet extends): only a request whose
  `Accept` header is exactly `text/event-stream` is streamed (any other gets 405), the response
  is `text/event-stream` with `Connection: close`, each event is `event: <type>\\r\\n` then
  `data: <line>\\r\\n` per line and a blank `\\r\\n`, and a `\\r\\n` heartbeat every 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sim.marathon.layout import timestamp

log = logging.getLogger("sim.marathon.events")

MAX_OUTSTANDING = 1024  # --event_stream_max_outstanding_messages (core/event/EventConf.scala)
HEARTBEAT_SECONDS = 10.0  # Jetty EventSourceServlet heartBeatPeriod
EVENT_STREAM = "text/event-stream"

Event = dict[str, Any]


def now() -> str:
    return timestamp(time.time())


def frame(event: Event) -> bytes:
    """One SSE frame as Jetty's `EventSourceEmitter.event(name, data)` writes it."""
    name = str(event["eventType"])
    payload = json.dumps(event, separators=(",", ":"))
    out = [b"event: ", name.encode(), b"\r\n"]
    for line in payload.splitlines():
        out += [b"data: ", line.encode(), b"\r\n"]
    out.append(b"\r\n")
    return b"".join(out)


# ---------------------------------------------------------------- event shapes (pure)


def stream_attached(remote: str) -> Event:
    return {"remoteAddress": remote, "eventType": "event_stream_attached", "timestamp": now()}


def stream_detached(remote: str) -> Event:
    return {"remoteAddress": remote, "eventType": "event_stream_detached", "timestamp": now()}


def scheduler_registered(framework_id: str, master: str) -> Event:
    return {
        "frameworkId": framework_id,
        "master": master,
        "eventType": "scheduler_registered_event",
        "timestamp": now(),
    }


def scheduler_disconnected() -> Event:
    return {"eventType": "scheduler_disconnected_event", "timestamp": now()}


def api_post(client_ip: str, uri: str, app: dict[str, Any]) -> Event:
    return {
        "clientIp": client_ip,
        "uri": uri,
        "appDefinition": app,
        "eventType": "api_post_event",
        "timestamp": now(),
    }


def plan_json(deployment: dict[str, Any]) -> dict[str, Any]:
    """`raml.DeploymentPlan` (`raml/DeploymentPlanConversion.scala`): id, steps, version."""
    return {
        "id": deployment["id"],
        "steps": [{"actions": list(step)} for step in deployment["steps"]],
        "version": deployment["version"],
    }


def _step(deployment: dict[str, Any]) -> dict[str, Any]:
    index = int(deployment["currentStep"]) - 1
    return {"actions": list(deployment["steps"][index])}


def deployment_info(deployment: dict[str, Any]) -> Event:
    # core/deployment/impl/DeploymentActor.scala performStep: DeploymentStatus(plan, step)
    return {
        "plan": plan_json(deployment),
        "currentStep": _step(deployment),
        "eventType": "deployment_info",
        "timestamp": now(),
    }


def deployment_step_success(deployment: dict[str, Any]) -> Event:
    return {
        "plan": plan_json(deployment),
        "currentStep": _step(deployment),
        "eventType": "deployment_step_success",
        "timestamp": now(),
    }


def deployment_step_failure(deployment: dict[str, Any]) -> Event:
    return {
        "plan": plan_json(deployment),
        "currentStep": _step(deployment),
        "eventType": "deployment_step_failure",
        "timestamp": now(),
    }


def deployment_success(deployment: dict[str, Any]) -> Event:
    # MarathonSchedulerActor.deploymentSuccess: DeploymentSuccess(plan.id, plan)
    return {
        "id": deployment["id"],
        "plan": plan_json(deployment),
        "eventType": "deployment_success",
        "timestamp": now(),
    }


def deployment_failed(deployment: dict[str, Any], reason: str) -> Event:
    # MarathonSchedulerActor.deploymentFailed: DeploymentFailed(id, plan, reason = Some(...))
    return {
        "id": deployment["id"],
        "plan": plan_json(deployment),
        "eventType": "deployment_failed",
        "timestamp": now(),
        "reason": reason,
    }


# TASK_LOST maps by its reason (core/task/state/TaskConditionMapping.scala); the sim's
# TASK_LOST comes from a removed agent or a reconciliation, both `Unreachable`.
CONDITIONS = {
    "TASK_STAGING": "Staging",
    "TASK_STARTING": "Starting",
    "TASK_RUNNING": "Running",
    "TASK_KILLING": "Killing",
    "TASK_FINISHED": "Finished",
    "TASK_FAILED": "Failed",
    "TASK_KILLED": "Killed",
    "TASK_ERROR": "Error",
    "TASK_LOST": "Unreachable",
    "TASK_UNREACHABLE": "Unreachable",
    "TASK_GONE": "Gone",
    "TASK_DROPPED": "Dropped",
    "TASK_UNKNOWN": "Unknown",
}


def status_update(instance: dict[str, Any], state: str, message: str = "") -> Event:
    # core/instance/update/InstanceChangedEventsGenerator.scala: MesosStatusUpdateEvent
    return {
        "slaveId": instance.get("agentId") or "",
        "taskId": instance["taskId"],
        "taskStatus": state,
        "message": message,
        "appId": instance["appId"],
        "host": instance.get("host") or "unknown",
        "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}],
        "ports": list(instance.get("ports") or []),
        "version": instance["version"],
        "eventType": "status_update_event",
        "timestamp": now(),
    }


def instance_changed(instance: dict[str, Any], condition: str) -> Event:
    # api/v2/json/Formats.scala InstanceChangedEventWrites
    return {
        "instanceId": instance["instanceId"],
        "condition": condition,
        "runSpecId": instance["appId"],
        "agentId": instance.get("agentId") or None,
        "host": instance.get("host") or None,
        "runSpecVersion": instance["version"],
        "timestamp": now(),
        "eventType": "instance_changed_event",
    }


# ---------------------------------------------------------------- the bus


@dataclass(eq=False)
class Subscriber:
    remote: str
    event_types: frozenset[str]
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=MAX_OUTSTANDING)
    )
    dropped: bool = False

    def wants(self, event: Event) -> bool:
        return not self.event_types or event["eventType"] in self.event_types


class EventBus:
    """Every published event goes to every attached stream (each filters on its own)."""

    def __init__(self, max_outstanding: int = MAX_OUTSTANDING) -> None:
        self.max_outstanding = max_outstanding
        self.subscribers: list[Subscriber] = []

    def publish(self, event: Event) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.drop(sub)

    def publish_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.publish(event)

    def attach(self, remote: str, event_types: Iterable[str]) -> Subscriber:
        sub = Subscriber(remote, frozenset(event_types), asyncio.Queue(self.max_outstanding))
        self.subscribers.append(sub)
        self.publish(stream_attached(remote))
        return sub

    def drop(self, sub: Subscriber) -> None:
        """A slow consumer: its connection is closed (it gets no more events)."""
        if sub.dropped:
            return
        log.warning("Closing connection for slow event consumer %s", sub.remote)
        sub.dropped = True
        self.detach(sub)
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    def detach(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
            self.publish(stream_detached(sub.remote))

    def close_all(self) -> None:
        for sub in list(self.subscribers):
            self.subscribers.remove(sub)
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
