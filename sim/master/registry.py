"""The leading master's in-memory state (pure): agents, frameworks, tasks, maintenance.

`registry()` is the part Mesos keeps in its replicated log (admitted agents, removed agents,
maintenance schedule and machine modes); everything else is rebuilt after a failover from
agents re-registering with their tasks and frameworks re-registering with their ids.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim import maintenance as mt
from sim import resources as res
from sim.tasks import (
    LOST,
    STAGING,
    TERMINAL,
    PortRequest,
    Task,
    bounded_env,
    container_info,
    ports_env,
)

STAGING_GRACE = 5.0  # a just-launched task may be missing from an agent's report


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Unknown(KeyError):
    """An agent or framework this master does not know (it must (re-)register)."""


@dataclass
class Agent:
    agent_id: str
    hostname: str
    ip: str
    port: int
    resources: res.Resources
    registered_time: float
    reregistered_time: float | None = None
    last_seen: float = 0.0
    active: bool = True
    ports: res.PortRanges = field(default_factory=lambda: list(res.DEFAULT_PORTS))

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def record(self) -> dict[str, Any]:
        return {
            "id": self.agent_id,
            "hostname": self.hostname,
            "ip": self.ip,
            "port": self.port,
            "resources": self.resources,
            "registered_time": self.registered_time,
        }


@dataclass
class Framework:
    framework_id: str
    name: str
    hostname: str = ""
    webui_url: str = ""
    user: str = "root"
    role: str = "*"
    failover_timeout: float = 0.0
    checkpoint: bool = True
    registered_time: float = 0.0
    reregistered_time: float | None = None
    last_seen: float | None = None
    recovered: bool = False
    inverse_offers: dict[str, tuple[str, float]] = field(default_factory=dict)


class MasterState:
    def __init__(
        self,
        master_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        disconnect_after: float = 3.0,
        remove_after: float = 75.0,
        framework_timeout: float = 5.0,
    ) -> None:
        self.master_id = master_id
        self.clock = clock
        self.wall = wall
        self.disconnect_after = disconnect_after
        self.remove_after = remove_after
        self.framework_timeout = framework_timeout
        self.agents: dict[str, Agent] = {}
        self.recovered_agents: dict[str, dict[str, Any]] = {}
        self.removed_agents: set[str] = set()
        self.frameworks: dict[str, Framework] = {}
        self.tasks: dict[tuple[str, str], Task] = {}
        self.completed: deque[Task] = deque(maxlen=1000)
        self.maintenance = mt.Maintenance()
        self.next_agent = 0
        self.next_framework = 0
        self.counters: dict[str, int] = {
            "slave_registrations": 0,
            "slave_reregistrations": 0,
            "slave_removals": 0,
            "framework_registrations": 0,
            "framework_reregistrations": 0,
        }
        self.registry_version = 0
        self.recovered_at = clock()

    # ------------------------------------------------------------------ registry
    def registry(self) -> dict[str, Any]:
        admitted = {**self.recovered_agents, **{a: g.record() for a, g in self.agents.items()}}
        return {
            "version": self.registry_version,
            "agents": list(admitted.values()),
            "removed": sorted(self.removed_agents),
            "maintenance": self.maintenance.to_json(),
            "next_agent": self.next_agent,
            "next_framework": self.next_framework,
        }

    def recover(self, registry: dict[str, Any]) -> None:
        self.recovered_agents = {a["id"]: a for a in registry.get("agents", [])}
        self.removed_agents = set(registry.get("removed", []))
        self.maintenance = mt.Maintenance.from_json(registry.get("maintenance") or {})
        self.next_agent = int(registry.get("next_agent", 0))
        self.next_framework = int(registry.get("next_framework", 0))
        self.registry_version = int(registry.get("version", 0))
        self.recovered_at = self.clock()

    def _changed(self) -> None:
        self.registry_version += 1

    # ------------------------------------------------------------------ agents
    def register_agent(
        self,
        agent_id: str | None,
        hostname: str,
        ip: str,
        port: int,
        resources: res.Resources,
        tasks: list[Task],
        ports: res.PortRanges | None = None,
    ) -> tuple[str, list[str]]:
        """(Re-)register an agent; returns its id and the terminal task ids acknowledged."""
        if self.maintenance.mode_of(hostname, ip) == mt.DOWN:
            raise Refused(403, f"agent {hostname} ({ip}) is on a machine that is DOWN")
        if agent_id and agent_id in self.removed_agents:
            raise Refused(410, f"agent {agent_id} was removed; it must shut down")
        now = self.wall()
        if agent_id:
            old = self.agents.get(agent_id)
            registered = (
                old.registered_time
                if old
                else float(self.recovered_agents.get(agent_id, {}).get("registered_time", now))
            )
            self.recovered_agents.pop(agent_id, None)
            agent = Agent(agent_id, hostname, ip, port, resources, registered, now)
            self.counters["slave_reregistrations"] += 1
        else:
            agent_id = f"{self.master_id}-S{self.next_agent}"
            self.next_agent += 1
            agent = Agent(agent_id, hostname, ip, port, resources, now)
            self.counters["slave_registrations"] += 1
        agent.last_seen = self.clock()
        agent.ports = list(res.DEFAULT_PORTS) if ports is None else ports
        self.agents[agent_id] = agent
        self._changed()
        return agent_id, self._sync_tasks(agent_id, tasks)

    def heartbeat(self, agent_id: str, tasks: list[Task]) -> list[str]:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise Unknown(agent_id)
        agent.last_seen = self.clock()
        agent.active = True
        return self._sync_tasks(agent_id, tasks)

    def _sync_tasks(self, agent_id: str, reported: list[Task]) -> list[str]:
        acked: list[str] = []
        seen: set[tuple[str, str]] = set()
        for task in reported:
            task.agent_id = agent_id
            key = (task.framework_id, task.task_id)
            seen.add(key)
            self._ensure_framework(task.framework_id)
            if task.state in TERMINAL:
                self.tasks.pop(key, None)
                if not any(c.task_id == task.task_id for c in self.completed):
                    self.completed.append(task)
                acked.append(task.task_id)
            else:
                self.tasks[key] = task
        now = self.wall()
        for key, task in list(self.tasks.items()):
            if task.agent_id != agent_id or key in seen:
                continue
            if task.state == STAGING and now - task.last_timestamp < STAGING_GRACE:
                continue
            self._finish(key, LOST, "task unknown to the agent")
        return acked

    def _finish(self, key: tuple[str, str], state: str, message: str) -> None:
        task = self.tasks.pop(key)
        task.set_state(state, self.wall(), message)
        self.completed.append(task)

    def tick(self) -> list[str]:
        """Deactivate silent agents; remove unreachable ones (their tasks go TASK_LOST), and
        forget recovered agents that did not re-register in time after a failover."""
        now = self.clock()
        removed: list[str] = []
        if self.recovered_agents and now - self.recovered_at > self.remove_after:
            for agent_id in list(self.recovered_agents):
                self.remove_agent(agent_id, "agent did not re-register", forget=False)
                removed.append(agent_id)
        for agent in list(self.agents.values()):
            idle = now - agent.last_seen
            if idle > self.remove_after:
                self.remove_agent(agent.agent_id, "agent unreachable", forget=False)
                removed.append(agent.agent_id)
            elif idle > self.disconnect_after:
                agent.active = False
        return removed

    def remove_agent(self, agent_id: str, reason: str, *, forget: bool) -> None:
        for key, task in list(self.tasks.items()):
            if task.agent_id == agent_id:
                self._finish(key, LOST, reason)
        self.agents.pop(agent_id, None)
        self.recovered_agents.pop(agent_id, None)
        if forget:
            self.removed_agents.add(agent_id)
        self.counters["slave_removals"] += 1
        self._changed()

    def used(self, agent_id: str) -> res.Resources:
        total: res.Resources = {}
        for task in self.tasks.values():
            if task.agent_id == agent_id:
                total = res.add(total, task.resources)
        return total

    def used_ports(self) -> set[int]:
        """Host ports of all live tasks, of every agent: a sim-only guard, since the sim's
        agents share one host (Mesos accounts ports per agent)."""
        return {p for t in self.tasks.values() for p in t.ports}

    def agent_mode(self, agent: Agent) -> str:
        return self.maintenance.mode_of(agent.hostname, agent.ip)

    # ------------------------------------------------------------------ frameworks
    def _ensure_framework(self, framework_id: str) -> Framework:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            framework = Framework(framework_id, name="", recovered=True)
            self.frameworks[framework_id] = framework
        return framework

    def register_framework(self, framework_id: str | None, info: dict[str, Any]) -> str:
        now = self.wall()
        if framework_id and framework_id in self.frameworks:
            framework = self.frameworks[framework_id]
            framework.reregistered_time = now
            self.counters["framework_reregistrations"] += 1
        else:
            if not framework_id:
                framework_id = f"{self.master_id}-{self.next_framework:04d}"
                self.next_framework += 1
                self._changed()
                self.counters["framework_registrations"] += 1
            else:
                self.counters["framework_reregistrations"] += 1
            framework = Framework(framework_id, name="", registered_time=now)
            self.frameworks[framework_id] = framework
        framework.recovered = False
        framework.name = str(info.get("name", framework.name))
        framework.hostname = str(info.get("hostname", ""))
        framework.webui_url = str(info.get("webui_url", ""))
        framework.user = str(info.get("user", "root"))
        framework.role = str(info.get("role", "*"))
        framework.failover_timeout = float(info.get("failover_timeout", 0.0))
        framework.checkpoint = bool(info.get("checkpoint", True))
        framework.registered_time = framework.registered_time or now
        framework.last_seen = self.clock()
        return framework_id

    def framework(self, framework_id: str) -> Framework:
        framework = self.frameworks.get(framework_id)
        if framework is None or framework.recovered:
            raise Unknown(framework_id)
        framework.last_seen = self.clock()
        return framework

    def connected(self, framework: Framework) -> bool:
        return (
            framework.last_seen is not None
            and self.clock() - framework.last_seen < self.framework_timeout
        )

    def place(self, framework_id: str, specs: list[dict[str, Any]]) -> tuple[list[Task], list[str]]:
        """Place tasks on active agents of UP machines with enough free resources (spread by
        most free cpus), host ports included: a spec's `port_requests` (`{name, port, host}`,
        host 0 any port of the agent's `ports` ranges, > 0 that one, null none) get host ports
        and the task's environment gets Marathon's `PORT*` variables and `HOST` (as Marathon
        computes them from the offer it accepts, `TaskBuilder.scala`). Returns the new
        TASK_STAGING tasks and errors for the rest."""
        self.framework(framework_id)
        placed: list[Task] = []
        errors: list[str] = []
        for spec in specs:
            task_id = str(spec["task_id"])
            need = {k: float(v) for k, v in (spec.get("resources") or {}).items()}
            requests = [
                PortRequest(
                    str(r["name"]) if r.get("name") else None,
                    int(r.get("port") or 0),
                    None if r.get("host") is None else int(r["host"]),
                )
                for r in (spec.get("port_requests") or [])[:64]
            ]
            fixed = [r.host for r in requests if r.host]  # > 0: that host port
            dynamic = sum(1 for r in requests if r.host == 0)
            if (framework_id, task_id) in self.tasks:
                errors.append(f"task {task_id} already exists")
                continue
            candidates = []
            for agent in self.agents.values():
                if not agent.active or self.agent_mode(agent) != mt.UP:
                    continue
                free = res.add(agent.resources, self.used(agent.agent_id), -1.0)
                if res.fits(need, free):
                    candidates.append((-free.get("cpus", 0.0), agent.agent_id))
            chosen: tuple[Agent, list[int]] | None = None
            used_ports = self.used_ports()
            for _, agent_id in sorted(candidates):
                agent = self.agents[agent_id]
                picked = res.pick_ports(agent.ports, used_ports, fixed, dynamic)
                if picked is not None:
                    chosen = (agent, picked)
                    break
            if chosen is None:
                ports_note = f" and {len(fixed) + dynamic} ports" if requests else ""
                errors.append(f"no agent has {need}{ports_note} free for task {task_id}")
                continue
            agent, dynamic_ports = chosen
            host_ports: list[int | None] = []
            for request in requests:
                if request.host is None:
                    host_ports.append(None)
                elif request.host:
                    host_ports.append(request.host)
                else:
                    host_ports.append(dynamic_ports.pop(0))
            env = bounded_env(spec.get("env"))
            env.update(ports_env(requests, host_ports))
            env["HOST"] = agent.hostname
            env.update(bounded_env(spec.get("app_env")))  # the app's own env wins
            task = Task(
                task_id=task_id,
                name=str(spec.get("name", task_id)),
                framework_id=framework_id,
                agent_id=agent.agent_id,
                resources=need,
                command=str(spec.get("command", "")),
                container=container_info(spec.get("container")),
                ports=[p for p in host_ports if p is not None],
                env=env,
                kill_grace=None if spec.get("kill_grace") is None else float(spec["kill_grace"]),
                port_mappings=[
                    (h, r.port) for r, h in zip(requests, host_ports, strict=True) if h and r.port
                ],
            )
            task.set_state(STAGING, self.wall())
            self.tasks[(framework_id, task_id)] = task
            placed.append(task)
        return placed, errors

    def framework_tasks(self, framework_id: str) -> tuple[list[Task], list[Task]]:
        live = [t for t in self.tasks.values() if t.framework_id == framework_id]
        done = [t for t in self.completed if t.framework_id == framework_id]
        return live, done

    # ------------------------------------------------------------------ maintenance
    def update_schedule(self, schedule: Any) -> None:
        self.maintenance.update_schedule(schedule)
        self._changed()

    def machine_down(self, machines: list[mt.Machine]) -> list[Agent]:
        """DRAINING -> DOWN; the machines' agents are removed (their tasks go TASK_LOST) and
        returned so that the caller tells them to shut down."""
        self.maintenance.down(machines)
        gone = [
            a
            for a in self.agents.values()
            if any(mt.matches(m, a.hostname, a.ip) for m in machines)
        ]
        for agent in gone:
            self.remove_agent(agent.agent_id, "agent shut down: machine is DOWN", forget=True)
        self._changed()
        return gone

    def machine_up(self, machines: list[mt.Machine]) -> None:
        self.maintenance.up(machines)
        self._changed()

    def draining_agents(self) -> list[Agent]:
        return [a for a in self.agents.values() if self.agent_mode(a) == mt.DRAINING]

    def inverse_offers(self, framework_id: str) -> list[dict[str, Any]]:
        framework = self.framework(framework_id)
        offers = []
        for agent in self.draining_agents():
            machine = self.maintenance.machine_of(agent.hostname, agent.ip)
            status = framework.inverse_offers.get(agent.agent_id, ("UNKNOWN", 0.0))[0]
            offers.append(
                {
                    "agent_id": agent.agent_id,
                    "hostname": agent.hostname,
                    "unavailability": self.maintenance.unavailability.get(machine, {})
                    if machine
                    else {},
                    "status": status,
                }
            )
        return offers

    def respond_inverse_offer(self, framework_id: str, agent_id: str, status: str) -> None:
        framework = self.framework(framework_id)
        framework.inverse_offers[agent_id] = (status, self.wall())
