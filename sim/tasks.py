"""Mesos task records and states (tasks are records; no process runs)."""

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

    def to_json(self) -> dict[str, Any]:
        return {
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
        )


def count_states(tasks: list[Task]) -> dict[str, int]:
    counts = dict.fromkeys(COUNTED, 0)
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    return counts


def outcome_of(command: str) -> str | None:
    """The terminal state a command reaches by itself, or None for a long-running one:
    `true`/`exit 0` finish, `false`/`exit N` fail; anything else runs until killed."""
    cmd = command.strip()
    if cmd in ("true", "exit 0"):
        return FINISHED
    if cmd == "false" or (cmd.startswith("exit ") and cmd[5:].strip().isdigit()):
        return FAILED
    return None
