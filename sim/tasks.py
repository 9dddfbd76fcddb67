"""Mesos tasks as the master and agents report them, and their states.

The agent runs each task as a real process or container (sim/agent/containers.py); a task's
`container` is its ContainerInfo (`{"type": "DOCKER", "docker": {"image": ...}}`) or None
for a command task."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sim.resources import Resources, render

STAGING = "TASK_STAGING"
STARTING = "TASK_STARTING"
RUNNING = "TASK_RUNNING"
KILLING = "TASK_KILLING"
FINISHED = "TASK_FINISHED"
FAILED = "TASK_FAILED"
KILLED = "TASK_KILLED"
LOST = "TASK_LOST"
ERROR = "TASK_ERROR"

LIVE = frozenset({STAGING, STARTING, RUNNING, KILLING})
TERMINAL = frozenset({FINISHED, FAILED, KILLED, LOST, ERROR})
COUNTED = (STAGING, STARTING, RUNNING, KILLING, FINISHED, FAILED, KILLED, LOST, ERROR)


@dataclass
class Task:
    task_id: str
    name: str
    framework_id: str
    agent_id: str
    state: str = STAGING
    resources: Resources = field(default_factory=dict)
    command: str = ""
    statuses: list[dict[str, Any]] = field(default_factory=list)
    container: dict[str, Any] | None = None

    @property
    def live(self) -> bool:
        return self.state in LIVE

    def set_state(self, state: str, now: float | None = None, message: str = "") -> bool:
        if state == self.state and self.statuses:
            return False
        self.state = state
        status: dict[str, Any] = {"state": state, "timestamp": now or time.time()}
        if message:
            status["message"] = message
        self.statuses.append(status)
        del self.statuses[:-5]
        return True

    @property
    def last_timestamp(self) -> float:
        return float(self.statuses[-1]["timestamp"]) if self.statuses else 0.0

    @property
    def message(self) -> str:
        return str(self.statuses[-1].get("message", "")) if self.statuses else ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.task_id,
            "name": self.name,
            "framework_id": self.framework_id,
            "executor_id": "",
            "slave_id": self.agent_id,
            "state": self.state,
            "resources": render(self.resources),
            "role": "*",
            "statuses": list(self.statuses),
            "command": self.command,
        }
        if self.container is not None:
            out["container"] = self.container
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(
            task_id=str(data["id"]),
            name=str(data.get("name", data["id"])),
            framework_id=str(data["framework_id"]),
            agent_id=str(data.get("slave_id", "")),
            state=str(data.get("state", STAGING)),
            resources={k: float(v) for k, v in (data.get("resources") or {}).items() if v},
            command=str(data.get("command", "")),
            statuses=list(data.get("statuses") or []),
            container=container_info(data.get("container")),
        )


def count_states(tasks: list[Task]) -> dict[str, int]:
    counts = dict.fromkeys(COUNTED, 0)
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    return counts


def container_info(value: Any) -> dict[str, Any] | None:
    """A task's ContainerInfo, kept only in the shape the sim understands (bounded)."""
    if not isinstance(value, dict):
        return None
    kind = str(value.get("type") or "MESOS").upper()
    docker = value.get("docker")
    if kind == "DOCKER" and isinstance(docker, dict) and isinstance(docker.get("image"), str):
        return {"type": "DOCKER", "docker": {"image": docker["image"][:512]}}
    return {"type": kind[:16]}
