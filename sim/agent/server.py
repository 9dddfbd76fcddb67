"""The simulated Mesos agent process.

It finds the leading master through ZooKeeper (lowest `json.info_`), registers with it over
the sim's internal HTTP endpoint (with `Authorization: Basic` when given `--credential`),
heartbeats its full task list, and re-registers with the same agent id and its tasks when the
leader changes. Tasks are real processes or docker containers (sim/agent/containers.py),
checkpointed in the work dir so that a restart with `--recover=reconnect` finds them again;
`--recover=cleanup` kills them and exits, as Mesos does. Told to shut down by the master
(its machine is DOWN, at once or when it registers), it kills its tasks and exits 0.

Mesos 1.11 sources: `src/slave/slave.cpp` (`Slave::shutdown`, `Slave::_authenticate`,
`Slave::doReliableRegistration`, `Slave::__recover`), `src/slave/constants.hpp`,
`src/slave/flags.cpp`, docs/agent-recovery.md.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
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
from sim.agent.containers import (
    DEFAULT_ISOLATION,
    KILL_GRACE,
    Cgroups,
    ContainerizerError,
    DockerContainerizer,
    MesosContainerizer,
    Run,
    Usage,
    new_container_id,
    proc_table,
    usage,
)
from sim.agent.credential import Credential
from sim.contenders import detect
from sim.httputil import CLIENT_ERRORS, Client, json_response, read_json, run_app
from sim.tasks import (
    FAILED,
    FINISHED,
    KILLED,
    KILLING,
    LIVE,
    RUNNING,
    STAGING,
    Task,
)
from sim.zksession import ExitPolicy, ZkSession, loop_forever
from sim.zkurl import ZkUrl

log = logging.getLogger("sim.agent")

POLL = 0.5
REGISTER_RETRY_INTERVAL_MAX = 60.0  # src/slave/constants.hpp
SAVE_DELAY = 0.05
SHUTDOWN_TIMEOUT = 30.0  # bound on waiting for killed tasks before exiting anyway
TASK_ID = re.compile(r"^[^/\x00]{1,256}$")
NO_CONTAINERIZER = (
    "None of the enabled containerizers ({}) could create a container for the provided "
    "TaskInfo/ExecutorInfo message"
)


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
    credential: Credential | None = None
    containerizers: tuple[str, ...] = ("mesos",)
    docker: str = "docker"
    docker_socket: str = "/var/run/docker.sock"
    isolation: str = DEFAULT_ISOLATION
    cgroups_hierarchy: Path = Path("/sys/fs/cgroup")
    cgroups_root: str = "mesos"
    cgroups_enable_cfs: bool = False
    registration_backoff_factor: float = 1.0


class AgentProcess:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.hostname = config.hostname or config.ip
        self.resources = res.parse_resources(config.resources)
        self.ports = res.parse_ports(config.resources)
        self.checkpoint = Checkpoint(config.work_dir)
        state = self.checkpoint.load_state()
        self.agent_id = state.agent_id
        self.tasks: dict[tuple[str, str], Task] = {
            (t.framework_id, t.task_id): t for t in state.tasks
        }
        self.runs: dict[tuple[str, str], Run] = {
            k: r for k, r in state.runs.items() if k in self.tasks
        }
        self.completed: deque[Task] = deque(maxlen=200)
        self.master: dict[str, Any] | None = None
        self.registered = False
        self.refused = ""
        self.terminating = ""  # why the agent is shutting down, once it is
        self.terminating_since = 0.0
        self.start_time = time.time()
        self.backoff = 0.0  # current registration back-off ceiling, 0: none
        self.next_attempt = 0.0
        self.mesos = MesosContainerizer(None)
        self.docker: DockerContainerizer | None = None
        if "docker" in config.containerizers:
            self.docker = DockerContainerizer(
                config.docker, config.docker_socket, config.cgroups_enable_cfs
            )
        self.background: set[asyncio.Task[None]] = set()
        self.statistics_lock = asyncio.Lock()
        self.statistics_at = 0.0
        self._save_handle: asyncio.TimerHandle | None = None
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
            "containerizers": ",".join(config.containerizers),
            "isolation": config.isolation,
            "docker": config.docker,
            "docker_socket": config.docker_socket,
            "cgroups_hierarchy": str(config.cgroups_hierarchy),
            "cgroups_root": config.cgroups_root,
            "cgroups_enable_cfs": str(config.cgroups_enable_cfs).lower(),
        }
        if config.credential is not None:
            self.flags["credential"] = "(set)"
        if self.tasks:
            log.info("recovered %d tasks of agent %s", len(self.tasks), self.agent_id)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Create the containerizers (Mesos: a failure stops the agent)."""
        self.mesos.cgroups = Cgroups.from_flags(
            self.config.isolation,
            self.config.cgroups_hierarchy,
            self.config.cgroups_root,
            self.config.cgroups_enable_cfs,
        )

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # ------------------------------------------------------------------ tasks
    def _save(self) -> None:
        """Checkpoint soon: saves asked within SAVE_DELAY are written once (a burst of
        launches or kills would otherwise rewrite the whole checkpoint for each)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving (tests drive the agent directly)
            self._flush()
            return
        if self._save_handle is None:
            self._save_handle = loop.call_later(SAVE_DELAY, self._flush)

    def _flush(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self.agent_id:
            extra = {}
            if self.docker is not None:
                extra = {"docker": self.config.docker, "docker_socket": self.config.docker_socket}
            self.checkpoint.save(self.agent_id, list(self.tasks.values()), self.runs, extra)

    def launch(self, task: Task) -> None:
        key = (task.framework_id, task.task_id)
        if key in self.tasks:
            return  # a retried launch
        task.agent_id = self.agent_id or task.agent_id
        if task.state != STAGING:
            task.set_state(STAGING)
        self.tasks[key] = task
        if self.terminating:
            task.set_state(KILLED, message="Agent is terminating")
            self._save()
            return
        if not TASK_ID.match(task.task_id) or task.task_id in (".", ".."):
            task.set_state(FAILED, message="Task ID contains invalid characters")
            self._save()
            return
        docker_task = (task.container or {}).get("type") == "DOCKER"
        kind = "docker" if docker_task else "mesos"
        if kind not in self.config.containerizers:
            task.set_state(
                FAILED, message=NO_CONTAINERIZER.format(",".join(self.config.containerizers))
            )
            self._save()
            return
        container_id = new_container_id()
        sandbox = self.checkpoint.sandbox(
            self.agent_id or "unregistered", task.framework_id, task.task_id, container_id
        )
        grace = KILL_GRACE if task.kill_grace is None else max(0.0, task.kill_grace)
        run = Run(kind=kind, container_id=container_id, sandbox=str(sandbox), grace=grace)
        self.runs[key] = run
        cpus, mem = task.resources.get("cpus", 0.0), task.resources.get("mem", 0.0)
        if kind == "docker":
            assert self.docker is not None and task.container is not None
            self._save()
            self._spawn(self._launch_docker(task, run, cpus, mem))
            return
        try:
            self.mesos.launch(run, task.command, cpus, mem, self._task_env(task))
        except OSError as exc:
            self.runs.pop(key, None)
            task.set_state(FAILED, message=f"Failed to launch container: {exc}")
        else:
            task.set_state(RUNNING, message=self.mesos.isolation_note)
            log.info("task %s running as pid %d in %s", task.task_id, run.pid, run.sandbox)
        self._save()

    def _task_env(self, task: Task) -> dict[str, str]:
        """The command's environment: the TaskInfo's (Marathon's variables) and Mesos' own."""
        return {**task.env, "MESOS_TASK_ID": task.task_id}

    async def _launch_docker(self, task: Task, run: Run, cpus: float, mem: float) -> None:
        assert self.docker is not None and task.container is not None
        docker = task.container["docker"]
        failure = await self.docker.launch(
            run,
            str(docker["image"]),
            task.command,
            cpus,
            mem,
            env=self._task_env(task),
            network=str(docker.get("network") or "HOST"),
            port_mappings=task.port_mappings,
        )
        if not task.live:
            return
        if failure is not None:
            task.set_state(FAILED, message=failure)
            self.runs.pop((task.framework_id, task.task_id), None)
        elif run.killing_since:  # killed while launching
            await self.docker.kill(run)
        else:
            task.set_state(RUNNING)
            log.info("task %s running in container %s", task.task_id, run.docker_name)
        self._save()

    def usages(self) -> dict[str, Usage]:
        """Usage of each live command task (docker tasks: not measured by the sim)."""
        table = proc_table()
        out: dict[str, Usage] = {}
        for key, task in list(self.tasks.items()):
            run = self.runs.get(key)
            if task.live and run is not None and run.kind == "mesos" and run.pid:
                out[task.task_id] = usage(run, table)
        return out

    def kill(self, framework_id: str, task_id: str) -> None:
        key = (framework_id, task_id)
        task = self.tasks.get(key)
        if task is None or not task.live:
            return
        run = self.runs.get(key)
        if run is None:
            task.set_state(KILLED, message="Command terminated with signal Terminated")
        else:
            task.set_state(KILLING)
            if run.kind == "docker":
                assert self.docker is not None
                if run.docker_name in self.docker.launching:
                    run.killing_since = time.time()
                else:
                    self._spawn(self.docker.kill(run))
            else:
                self.mesos.kill(run, time.time())
        self._save()

    def shutdown(self, reason: str, sender: str = "") -> None:
        """The master asked this agent to shut down (`Slave::shutdown`): kill every task,
        then terminate; the process exits 0 once they are gone."""
        if self.terminating:
            return
        self.terminating = reason
        self.terminating_since = time.time()
        self.registered = False
        log.warning("Agent asked to shut down by %s because '%s'", sender or "the master", reason)
        for task in list(self.tasks.values()):
            self.kill(task.framework_id, task.task_id)

    def forget(self) -> None:
        """The master removed this agent id (410): kill the tasks and register afresh."""
        log.warning(
            "agent %s was removed by the master: killing %d tasks", self.agent_id, len(self.tasks)
        )
        self.mesos.new_round()
        for key, task in list(self.tasks.items()):
            run = self.runs.get(key)
            if run is not None and task.live:
                if run.kind == "docker" and self.docker is not None:
                    self._spawn(self.docker.remove(run.docker_name))
                else:
                    self.mesos.destroy(run)
            if task.live:
                task.set_state(KILLED, message="Agent was removed by the master")
            self.completed.append(task)
        self.tasks.clear()
        self.runs.clear()
        self.checkpoint.wipe()
        self.agent_id = None
        self.registered = False

    async def refresh_containers(self) -> None:
        if self.docker is None:
            return
        names = [
            run.docker_name
            for key, run in self.runs.items()
            if run.kind == "docker" and key in self.tasks and self.tasks[key].live
        ]
        await self.docker.refresh(names)

    def progress(self) -> None:
        """Follow each task's process or container: TASK_FINISHED on exit 0, TASK_FAILED
        otherwise, TASK_KILLED once a killed one is gone (src/launcher/executor.cpp)."""
        now = time.time()
        changed = False
        self.mesos.new_round()
        for key, task in self.tasks.items():
            if not task.live:
                continue
            run = self.runs.get(key)
            if run is None:
                if task.state != STAGING:
                    changed |= task.set_state(
                        FAILED, now, "Abnormal executor termination: unknown container"
                    )
                continue
            if run.kind == "docker":
                if self.docker is None:  # recovered by an agent without --containerizers=docker
                    changed |= task.set_state(
                        FAILED, now, NO_CONTAINERIZER.format(",".join(self.config.containerizers))
                    )
                    continue
                ended = self.docker.poll(run)
                if (
                    ended is None
                    and task.state == STAGING
                    and run.docker_name in self.docker.states
                ):
                    # Launched by an agent that crashed before it saw `docker run` return.
                    changed |= task.set_state(RUNNING, now)
            else:
                ended = self.mesos.poll(run)
                if ended is None and run.killing_since:
                    self.mesos.kill(run, now)  # escalates to SIGKILL after the grace period
            if ended is None:
                continue
            state = KILLED if run.killing_since else FINISHED if ended.succeeded else FAILED
            changed |= task.set_state(state, now, ended.message)
            log.info("task %s: %s (%s)", task.task_id, state, ended.message)
            # The run stays (its sandbox and container show in /state) until acknowledged.
        if changed:
            self._save()

    def acknowledge(self, task_ids: list[str]) -> None:
        acked = set(task_ids)
        for key, task in list(self.tasks.items()):
            if task.task_id in acked and task.state not in LIVE:
                self.completed.append(self.tasks.pop(key))
                self.runs.pop(key, None)
        if acked:
            self._save()

    # ------------------------------------------------------------------ master
    def _report(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.tasks.values()]

    def _headers(self) -> dict[str, str]:
        credential = self.config.credential
        if credential is None:
            return {}
        token = base64.b64encode(f"{credential.principal}:{credential.secret}".encode())
        return {"Authorization": "Basic " + token.decode()}

    def _back_off(self) -> float:
        """`Slave::doReliableRegistration`: a random delay up to a ceiling that starts at
        twice `--registration_backoff_factor` and doubles up to 1 minute."""
        factor = self.config.registration_backoff_factor
        self.backoff = min(max(self.backoff * 2, factor * 2), REGISTER_RETRY_INTERVAL_MAX)
        delay = random.uniform(0, self.backoff)
        self.next_attempt = time.monotonic() + delay
        return delay

    async def register(self, leader: dict[str, Any]) -> None:
        body = {
            "agent_id": self.agent_id,
            "hostname": self.hostname,
            "ip": self.config.ip,
            "port": self.config.port,
            "resources": self.resources,
            "ports": res.render_ports(self.ports),
            "tasks": self._report(),
        }
        status, data = await self.client.post(
            masterinfo.base_url(leader) + "/sim/v1/agents/register", body, self._headers()
        )
        pid = str(leader.get("pid", "the master"))
        message = str(data.get("message", "")) if isinstance(data, dict) else ""
        if status == 401:
            if self.config.credential is not None:
                # Slave::_authenticate: "For refused authentication, we exit instead of
                # doing a shutdown to keep possibly active executors running."
                log.error("Authentication failed: Master %s refused authentication", pid)
                raise SystemExit(1)
            delay = self._back_off()
            log.warning(
                "Authentication failed: master %s refused the registration (%s) and this "
                "agent has no --credential; retrying in %.1fs",
                pid,
                message[:200],
                delay,
            )
            self.refused = f"{status}: {message[:200]}"
            return
        if status == 403:  # ShutdownMessage: the machine is DOWN
            self.shutdown("Machine is `DOWN`", pid)
            return
        if status == 410:
            self.forget()
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
        self.backoff = 0.0
        self._save()
        self.acknowledge(list(data.get("ack", [])))
        log.info(
            "%s with master %s as %s",
            "registered" if first else "re-registered",
            pid,
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
        await self.refresh_containers()
        self.progress()
        if self.terminating:
            live = [t for t in self.tasks.values() if t.live]
            if live and time.time() - self.terminating_since < SHUTDOWN_TIMEOUT:
                return
            self._flush()
            log.info("Agent terminating")
            raise SystemExit(0)
        detected = await asyncio.to_thread(detect, self.zk.client, self.config.zk.path)
        leader = detected.leader
        if leader is None:
            self.registered = False
            return
        try:
            if not self.registered or self.master is None or leader["id"] != self.master["id"]:
                if time.monotonic() < self.next_attempt:
                    return
                await self.register(leader)
            else:
                await self.heartbeat(leader)
        except CLIENT_ERRORS as exc:
            log.warning("master %s unreachable: %s", leader.get("pid"), exc)
            self.registered = False

    async def cleanup_and_exit(self) -> None:
        """`--recover=cleanup`: kill the recovered tasks, then exit (`Slave::__recover`)."""
        log.info("recover=cleanup: killing %d recovered tasks, then exiting", len(self.tasks))
        self.terminating = "--recover=cleanup"
        self.terminating_since = time.time()
        for task in list(self.tasks.values()):
            self.kill(task.framework_id, task.task_id)
        while any(t.live for t in self.tasks.values()):
            if time.time() - self.terminating_since > SHUTDOWN_TIMEOUT:
                break
            await asyncio.sleep(0.2)
            await self.refresh_containers()
            self.progress()
        self.tasks.clear()
        self.runs.clear()
        self._flush()
        log.info("Agent terminating")

    async def run(self) -> None:
        try:
            self.setup()
            if self.docker is not None:
                version = await self.docker.check()
                log.info(
                    "docker containerizer: engine %s at %s", version, self.config.docker_socket
                )
        except ContainerizerError as exc:
            log.error("Failed to create a containerizer: %s", exc)
            raise SystemExit(1) from None
        if self.config.recover == "cleanup":
            await self.cleanup_and_exit()
            raise SystemExit(0)
        await self.refresh_containers()
        self.progress()
        await asyncio.to_thread(self.zk.start, 30.0)
        runner = await run_app(build(self), self.config.ip, self.config.port)
        try:
            await loop_forever(self.step, POLL)
        finally:
            self._flush()
            for task in list(self.background):
                task.cancel()
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
                runs=agent.runs,
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

    async def statistics(request: web.Request) -> web.StreamResponse:
        # Mesos serves at most 2 of these a second (http.hpp statisticsLimiter), queueing
        # the rest; the sim reads /proc for each request.
        async with agent.statistics_lock:
            now = time.time()
            usages = await asyncio.to_thread(agent.usages)
            tasks = [t for t in agent.tasks.values() if t.live]
            body = views.statistics(tasks, usages, now)
            await asyncio.sleep(max(0.0, agent.statistics_at + 0.5 - time.monotonic()))
            agent.statistics_at = time.monotonic()
        return json_response(body)

    async def launch(request: web.Request) -> web.StreamResponse:
        agent.launch(Task.from_json(await read_json(request)))
        return json_response({})

    async def kill(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        agent.kill(str(body["framework_id"]), str(body["task_id"]))
        return json_response({})

    async def shutdown(request: web.Request) -> web.StreamResponse:
        body = await read_json(request) if request.can_read_body else {}
        message = body.get("message") if isinstance(body, dict) else None
        agent.shutdown(str(message or "Operator initiated 'Machine DOWN'")[:200], "the master")
        return json_response({})

    app = web.Application()
    for prefix in ("", "/slave(1)"):
        app.router.add_get(f"{prefix}/state", state)
        app.router.add_get(f"{prefix}/health", health)
    app.router.add_get("/metrics/snapshot", metrics)
    app.router.add_get("/monitor/statistics", statistics)
    app.router.add_post("/sim/v1/launch", launch)
    app.router.add_post("/sim/v1/kill", kill)
    app.router.add_post("/sim/v1/shutdown", shutdown)
    return app


async def serve(config: AgentConfig) -> None:
    await AgentProcess(config).run()
