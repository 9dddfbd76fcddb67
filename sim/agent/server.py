"""The simulated Mesos agent process.

It finds the leading master through ZooKeeper (lowest `json.info_`), registers with it over
the sim's internal HTTP endpoint, heartbeats its full task list, and re-registers with the
same agent id and its tasks when the leader changes. Tasks are checkpointed in the work dir,
so a restart with `--recover=reconnect` keeps them (`--recover=cleanup` drops them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from sim import masterinfo
from sim import resources as res
from sim.agent import views
from sim.agent.checkpoint import Checkpoint
from sim.contenders import detect
from sim.httputil import CLIENT_ERRORS, Client, json_response, read_json, run_app
from sim.tasks import KILLED, LIVE, RUNNING, STAGING, Task, outcome_of
from sim.zksession import ExitPolicy, ZkSession, loop_forever
from sim.zkurl import ZkUrl

log = logging.getLogger("sim.agent")

POLL = 0.5
START_DELAY = 0.3  # TASK_STAGING -> TASK_RUNNING
RUN_TIME = 1.0  # how long a self-terminating command runs


@dataclass(frozen=True)
class AgentConfig:
    zk: ZkUrl
    port: int
    work_dir: Path
    ip: str = "127.0.0.1"
    hostname: str = ""
    resources: str = res.DEFAULT_AGENT_RESOURCES
    recover: str = "reconnect"
    zk_session_timeout: float = 10.0


class AgentProcess:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.hostname = config.hostname or config.ip
        self.resources = res.parse_resources(config.resources)
        self.checkpoint = Checkpoint(config.work_dir)
        if config.recover == "cleanup":
            self.checkpoint.wipe()
        self.agent_id, recovered = self.checkpoint.load()
        self.tasks: dict[tuple[str, str], Task] = {
            (t.framework_id, t.task_id): t for t in recovered
        }
        self.completed: deque[Task] = deque(maxlen=200)
        self.master: dict[str, Any] | None = None
        self.registered = False
        self.refused = ""
        self.start_time = time.time()
        self.zk = ZkSession(config.zk, config.zk_session_timeout, ExitPolicy.NEVER)
        self.client = Client(timeout=2.0)
        self.flags = {
            "master": str(config.zk),
            "port": str(config.port),
            "ip": config.ip,
            "hostname": self.hostname,
            "work_dir": str(config.work_dir),
            "recover": config.recover,
            "resources": config.resources,
            "containerizers": "mesos",
        }
        if recovered:
            log.info("recovered %d tasks of agent %s", len(recovered), self.agent_id)

    # ------------------------------------------------------------------ tasks
    def _save(self) -> None:
        if self.agent_id:
            self.checkpoint.save(self.agent_id, list(self.tasks.values()))

    def launch(self, task: Task) -> None:
        task.agent_id = self.agent_id or task.agent_id
        if task.state != STAGING:
            task.set_state(STAGING)
        self.tasks[(task.framework_id, task.task_id)] = task
        self._save()

    def kill(self, framework_id: str, task_id: str) -> None:
        task = self.tasks.get((framework_id, task_id))
        if task is not None and task.live:
            task.set_state(KILLED, message="Command terminated with signal Terminated")
            self._save()

    def shutdown(self) -> None:
        """The master removed this agent (machine DOWN): kill everything, forget the id."""
        log.warning("shut down by the master: killing %d tasks", len(self.tasks))
        for task in self.tasks.values():
            if task.live:
                task.set_state(KILLED, message="Agent shut down by the master")
            self.completed.append(task)
        self.tasks.clear()
        self.checkpoint.wipe()
        self.agent_id = None
        self.registered = False

    def progress(self) -> None:
        now = time.time()
        changed = False
        for task in self.tasks.values():
            age = now - task.last_timestamp
            if task.state == STAGING and age >= START_DELAY:
                changed |= task.set_state(RUNNING, now)
            elif task.state == RUNNING and age >= RUN_TIME:
                outcome = outcome_of(task.command)
                if outcome is not None:
                    changed |= task.set_state(outcome, now)
        if changed:
            self._save()

    def acknowledge(self, task_ids: list[str]) -> None:
        acked = set(task_ids)
        for key, task in list(self.tasks.items()):
            if task.task_id in acked and task.state not in LIVE:
                self.completed.append(self.tasks.pop(key))
        if acked:
            self._save()

    # ------------------------------------------------------------------ master
    def _report(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.tasks.values()]

    async def register(self, leader: dict[str, Any]) -> None:
        body = {
            "agent_id": self.agent_id,
            "hostname": self.hostname,
            "ip": self.config.ip,
            "port": self.config.port,
            "resources": self.resources,
            "tasks": self._report(),
        }
        status, data = await self.client.post(
            masterinfo.base_url(leader) + "/sim/v1/agents/register", body
        )
        if status == 410:
            self.shutdown()
            return
        if status != 200:
            self.refused = f"{status}: {data}"
            return
        first = self.agent_id is None
        self.agent_id = str(data["agent_id"])
        for task in self.tasks.values():
            task.agent_id = self.agent_id
        self.master = leader
        self.registered = True
        self.refused = ""
        self._save()
        self.acknowledge(list(data.get("ack", [])))
        log.info(
            "%s with master %s as %s",
            "registered" if first else "re-registered",
            leader.get("pid"),
            self.agent_id,
        )

    async def heartbeat(self, leader: dict[str, Any]) -> None:
        body = {"agent_id": self.agent_id, "tasks": self._report()}
        status, data = await self.client.post(
            masterinfo.base_url(leader) + "/sim/v1/agents/heartbeat", body
        )
        if status == 200:
            self.acknowledge(list(data.get("ack", [])))
        elif status in (404, 307, 503):
            self.registered = False

    async def step(self) -> None:
        self.progress()
        detected = await asyncio.to_thread(detect, self.zk.client, self.config.zk.path)
        leader = detected.leader
        if leader is None:
            self.registered = False
            return
        try:
            if not self.registered or self.master is None or leader["id"] != self.master["id"]:
                await self.register(leader)
            else:
                await self.heartbeat(leader)
        except CLIENT_ERRORS as exc:
            log.warning("master %s unreachable: %s", leader.get("pid"), exc)
            self.registered = False

    async def run(self) -> None:
        await asyncio.to_thread(self.zk.start, 30.0)
        runner = await run_app(build(self), self.config.ip, self.config.port)
        try:
            await loop_forever(self.step, POLL)
        finally:
            await runner.cleanup()
            await self.client.close()
            await asyncio.to_thread(self.zk.stop)


def build(agent: AgentProcess) -> web.Application:
    async def state(request: web.Request) -> web.StreamResponse:
        return json_response(
            views.state(
                agent_id=agent.agent_id,
                ip=agent.config.ip,
                port=agent.config.port,
                hostname=agent.hostname,
                resources=agent.resources,
                master=agent.master if agent.registered else None,
                start_time=agent.start_time,
                flags=agent.flags,
                tasks=list(agent.tasks.values()),
                completed=list(agent.completed),
            )
        )

    async def metrics(request: web.Request) -> web.StreamResponse:
        return json_response(
            views.metrics(
                registered=agent.registered,
                uptime=time.time() - agent.start_time,
                resources=agent.resources,
                tasks=list(agent.tasks.values()),
                completed=list(agent.completed),
            )
        )

    async def health(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def launch(request: web.Request) -> web.StreamResponse:
        agent.launch(Task.from_json(await read_json(request)))
        return json_response({})

    async def kill(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        agent.kill(str(body["framework_id"]), str(body["task_id"]))
        return json_response({})

    async def shutdown(request: web.Request) -> web.StreamResponse:
        agent.shutdown()
        return json_response({})

    app = web.Application()
    for prefix in ("", "/slave(1)"):
        app.router.add_get(f"{prefix}/state", state)
        app.router.add_get(f"{prefix}/state.json", state)
        app.router.add_get(f"{prefix}/health", health)
    app.router.add_get("/metrics/snapshot", metrics)
    app.router.add_post("/sim/v1/launch", launch)
    app.router.add_post("/sim/v1/kill", kill)
    app.router.add_post("/sim/v1/shutdown", shutdown)
    return app


async def serve(config: AgentConfig) -> None:
    await AgentProcess(config).run()
