"""Mesos tasks as the master and agents report them, and their states.

The agent runs each task as a real process or container (sim/agent/containers.py); a task's
`container` is its ContainerInfo (`{"type": "DOCKER", "docker": {"image": ...}}`) or None
for a command task."""

from __future__ import annotations

import random
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
    ports: list[int] = field(default_factory=list)  # host ports given to the task
    env: dict[str, str] = field(default_factory=dict)  # CommandInfo.environment
    kill_grace: float | None = None  # KillPolicy.grace_period (None: the executor's 3 s)
    port_mappings: list[tuple[int, int]] = field(default_factory=list)  # docker BRIDGE

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
        if self.ports:
            out["ports"] = list(self.ports)
        if self.env:
            out["env"] = dict(self.env)
        if self.kill_grace is not None:
            out["kill_grace"] = self.kill_grace
        if self.port_mappings:
            out["port_mappings"] = [list(m) for m in self.port_mappings]
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
            ports=[int(p) for p in (data.get("ports") or [])][:MAX_PORTS],
            env=bounded_env(data.get("env")),
            kill_grace=None if data.get("kill_grace") is None else float(data["kill_grace"]),
            port_mappings=[
                (int(m[0]), int(m[1])) for m in (data.get("port_mappings") or [])[:MAX_PORTS]
            ],
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
        info: dict[str, Any] = {"image": docker["image"][:512]}
        if docker.get("network") in ("HOST", "BRIDGE", "USER"):
            info["network"] = docker["network"]
        return {"type": "DOCKER", "docker": info}
    return {"type": kind[:16]}


MAX_PORTS = 64
MAX_ENV = 256
MAX_ENV_VALUE = 64 * 1024


def bounded_env(value: Any) -> dict[str, str]:
    """A task's environment as the sim keeps it: string names and values, bounded."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, str] = {}
    for name, text in list(value.items())[:MAX_ENV]:
        if isinstance(name, str) and isinstance(text, str) and name and "=" not in name:
            out[name[:256]] = text[:MAX_ENV_VALUE]
    return out


@dataclass(frozen=True)
class PortRequest:
    """One entry of an app's portDefinitions (port: the declared port) or of its
    container.docker.portMappings (port: the containerPort); `host` is the host port wanted:
    0 any, > 0 that one, None none (a container port only)."""

    name: str | None
    port: int
    host: int | None


def ports_env(requests: list[PortRequest], host_ports: list[int | None]) -> dict[str, str]:
    """Marathon 1.11 `mesosphere/mesos/EnvironmentHelper.scala` `portsEnv`: `PORT<i>` for each
    port (the host port, else the container port, a random one when that is 0), `PORT_<declared
    port>` (a dynamic one under its own number), `PORT_<NAME>`, `PORT` the first and `PORTS` all
    of them, comma-separated."""
    if not host_ports:
        return {}
    env: dict[str, str] = {}
    consumed = {r.port for r in requests} | {p for p in host_ports if p}
    generated: dict[int, int] = {}

    def random_port() -> int:
        while True:
            port = random.randint(1025, 65535 - 1024)
            if port not in consumed:
                consumed.add(port)
                return port

    for index, host in enumerate(host_ports):
        if host is not None:
            env[f"PORT{index}"] = str(host)
        elif index < len(requests):
            declared = requests[index].port
            if declared == 0:
                generated[index] = random_port()
                env[f"PORT{index}"] = str(generated[index])
            else:
                env[f"PORT{index}"] = str(declared)
    for index, (request, host) in enumerate(zip(requests, host_ports, strict=False)):
        if host is not None:
            env[f"PORT_{request.port if request.port else host}"] = str(host)
        elif request.port:
            env[f"PORT_{request.port}"] = str(request.port)
        else:
            env[f"PORT_{generated[index]}"] = str(generated[index])
    for index, (request, host) in enumerate(zip(requests, host_ports, strict=False)):
        if not request.name:
            continue
        value = host if host is not None else request.port or generated.get(index)
        env[f"PORT_{request.name.upper()}"] = str(value)
    assigned = [p for p in host_ports if p is not None] + list(generated.values())
    if assigned:
        env["PORT"] = str(assigned[0])
    env["PORTS"] = ",".join(str(p) for p in assigned)
    return env
