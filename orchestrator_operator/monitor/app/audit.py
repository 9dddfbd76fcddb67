"""The audit trail of container controls (issue 17, point 6): who ran what on which
container, when, and the result. Each entry is a JSON line in the audit log file (when
``--audit-log`` is given), a line of the app's log (logger ``orchestrator.monitor.audit``)
and, in Kubernetes mode, an Event in the app's namespace about the probe's pod."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator_operator.common.kube_api import KubeApi

log = logging.getLogger("orchestrator.monitor.audit")
MAX_EVENTS_IN_FLIGHT = 16
MAX_FIELD_CHARS = 300


@dataclass(frozen=True)
class AuditEntry:
    time: str  # RFC 3339, UTC
    who: str
    action: str
    node: str  # the container node id as the caller named it
    container: str
    probe: str
    result: str  # ok | refused | failed | unavailable
    detail: str = ""


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(
        self,
        path: Path | None = None,
        events_namespace: str | None = None,
        app_pod: str | None = None,
        api_factory: Callable[[], KubeApi] | None = None,
    ) -> None:
        self.path = path
        self.events_namespace = events_namespace
        self.app_pod = app_pod  # what an Event is about when the probe's pod is not known
        self._factory = api_factory or KubeApi
        self._api: KubeApi | None = None
        self._lock = threading.Lock()
        self._in_flight: set[asyncio.Task[None]] = set()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)

    def record(
        self,
        who: str,
        action: str,
        node: str,
        container: str,
        probe: str,
        result: str,
        detail: str = "",
        pod: tuple[str, str] | None = None,
    ) -> AuditEntry:
        entry = AuditEntry(
            time=now_rfc3339(),
            who=who[:MAX_FIELD_CHARS],
            action=action,
            node=node[:MAX_FIELD_CHARS],
            container=container[:MAX_FIELD_CHARS],
            probe=probe[:MAX_FIELD_CHARS],
            result=result,
            detail=detail[:MAX_FIELD_CHARS],
        )
        line = json.dumps(asdict(entry), sort_keys=True)
        log.info("%s", line)
        if self.path is not None:
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        if pod is None and self.app_pod and self.events_namespace:
            pod = (self.events_namespace, self.app_pod)
        if (
            self.events_namespace
            and pod is not None
            and pod[0] == self.events_namespace
            and len(self._in_flight) < MAX_EVENTS_IN_FLIGHT
        ):
            task = asyncio.get_running_loop().create_task(self._event(entry, pod))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return entry

    async def _event(self, entry: AuditEntry, pod: tuple[str, str]) -> None:
        try:
            await asyncio.to_thread(self._post_event, entry, pod)
        except Exception as error:  # an audit Event lost is logged; the control stands
            log.warning("audit Event not written: %s: %s", type(error).__name__, error)

    def _post_event(self, entry: AuditEntry, pod: tuple[str, str]) -> None:
        if self._api is None:
            self._api = self._factory()
        namespace = pod[0]
        involved: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Pod", "namespace": pod[0], "name": pod[1],
        }  # fmt: skip
        message = (
            f"{entry.who} ran {entry.action} on container {entry.container[:64]} "
            f"(probe {entry.probe}): {entry.result}"
        )
        if entry.detail:
            message += f": {entry.detail}"
        self._api.submit(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"monitor-control.{secrets.token_hex(8)}",
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/component": "app"},
                },
                "involvedObject": involved,
                "reason": "ContainerControl",
                "message": message[:1024],
                "type": "Normal" if entry.result == "ok" else "Warning",
                "source": {"component": "orchestrator-monitor"},
                "firstTimestamp": entry.time[:19] + "Z",
                "lastTimestamp": entry.time[:19] + "Z",
                "count": 1,
                "reportingComponent": "orchestrator-monitor",
                "action": entry.action,
            }
        )

    async def drain(self) -> None:
        """Wait for the Events being written (tests, shutdown)."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
