"""The leading Marathon's state and scheduling loop.

State lives in memory and is written through to ZooKeeper (`Store`); a new leader loads it.
Each step: find the leading Mesos master (lowest `json.info_`), (re-)register the framework
with the stored framework id, read the framework's tasks and inverse offers from the master,
reconcile instances, scale apps (`planner`) and advance deployments step by step, publishing
Marathon's events (`events`) on the way.

Deployments follow Marathon 1.11 `core/deployment/DeploymentPlan.scala` (a new app is two
steps, StartApplication then ScaleApplication; a scale-only change ScaleApplication, any other
change RestartApplication, a removal StopApplication) and `MarathonSchedulerActor.scala` (an app
with a running deployment is locked: a change answers 409 unless `force=true`, which cancels the
running deployment: `deployment_failed`, "The upgrade has been cancelled").
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
import uuid
from typing import Any

from kazoo.client import KazooClient

from sim import masterinfo
from sim.contenders import detect
from sim.httputil import CLIENT_ERRORS, Client
from sim.marathon import backoff, events, layout, planner, ports
from sim.marathon.auth import basic_header
from sim.marathon.health import HealthChecker
from sim.marathon.storage import Store
from sim.tasks import (
    FAILED,
    KILLING,
    LIVE,
    LOST,
    RUNNING,
    STAGING,
    TERMINAL,
    PortRequest,
    ports_env,
)
from sim.zksession import die

log = logging.getLogger("sim.marathon.scheduler")

UNKNOWN_GRACE = 3.0  # a launched task the master does not report yet is not lost before
KILL_RETRY = 5.0
EXIT_SCHEDULER_ERROR = 106  # core/base/CrashStrategy.scala MesosSchedulerError
ABDICATE_FLUSH = 0.2
CANCELLED = "The upgrade has been cancelled"  # core/deployment/impl/DeploymentManagerActor.scala


class AppLocked(Exception):
    """`AppLockedException` (Exception.scala): a change to an app with a running deployment."""

    MESSAGE = (
        "App is locked by one or more deployments. Override with the option '?force=true'. "
        "View details at '/v2/deployments/<DEPLOYMENT_ID>'."
    )

    def __init__(self, deployment_ids: list[str]) -> None:
        super().__init__(self.MESSAGE)
        self.deployment_ids = deployment_ids


def plan_steps(app_id: str, action: str) -> list[list[dict[str, str]]]:
    """DeploymentPlan.apply: the steps of a one-app plan (empty steps are dropped)."""
    if action == "StartApplication":
        return [
            [{"action": "StartApplication", "app": app_id}],
            [{"action": "ScaleApplication", "app": app_id}],
        ]
    return [[{"action": action, "app": app_id}]]


class Scheduler:
    def __init__(
        self,
        store: Store,
        master_zk: KazooClient,
        master_path: str,
        framework_info: dict[str, Any],
    ) -> None:
        self.store = store
        self.master_zk = master_zk
        self.master_path = master_path
        self.framework_info = framework_info
        self.apps: dict[str, dict[str, Any]] = {}
        self.instances: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.framework_id: str | None = None
        self.master: dict[str, Any] | None = None
        self.registered = False
        self.killed: dict[str, float] = {}
        self.client = Client(timeout=3.0)
        self.lock = asyncio.Lock()
        self.bus = events.EventBus()
        self.auth: tuple[str, str] | None = None  # (principal, secret) when authenticating
        self.health = HealthChecker(self.bus.publish, self._health_kill)
        self.unhealthy: set[str] = set()  # task ids to kill for failed health checks
        self.delays = backoff.RateLimiter()

    # ------------------------------------------------------------------ persistence
    async def _io(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def load(self) -> None:
        await self._io(self.store.ensure_layout)
        self.apps = {a["id"]: a for a in (await self._io(self.store.load, "apps")).values()}
        self.instances = dict(await self._io(self.store.load, "instance"))
        self.deployments = dict(await self._io(self.store.load, "deployment"))
        for deployment in self.deployments.values():
            if "steps" not in deployment:  # written by an older sim
                app_id = deployment["affectedApps"][0]
                action = deployment.get("action", "ScaleApplication")
                deployment.update(steps=plan_steps(app_id, action), currentStep=1, original=None)
        raw = await self._io(self.store.get_bytes, "framework-id", layout.FRAMEWORK_ID_KEY)
        self.framework_id = layout.decode_framework_id(raw) if raw else None
        log.info(
            "loaded %d apps, %d instances, framework id %s",
            len(self.apps),
            len(self.instances),
            self.framework_id,
        )

    async def save_app(self, app: dict[str, Any]) -> None:
        self.apps[app["id"]] = app
        await self._io(self.store.put, "apps", layout.safe_id(app["id"]), app)
        await self._save_group()

    async def delete_app(self, app_id: str) -> None:
        self.apps.pop(app_id, None)
        await self._io(self.store.delete, "apps", layout.safe_id(app_id))
        await self._save_group()

    async def _save_group(self) -> None:
        group = {
            "id": "/",
            "apps": sorted(self.apps),
            "groups": [],
            "version": layout.timestamp(time.time()),
        }
        await self._io(self.store.put, "group", layout.ROOT_GROUP_KEY, group)

    async def _save_instance(self, instance: dict[str, Any]) -> None:
        self.instances[instance["instanceId"]] = instance
        await self._io(self.store.put, "instance", instance["instanceId"], instance)

    async def _drop_instance(self, instance_id: str) -> None:
        self.instances.pop(instance_id, None)
        await self._io(self.store.delete, "instance", instance_id)

    def locks(self, app_id: str) -> list[str]:
        return [d for d, dep in self.deployments.items() if app_id in dep["affectedApps"]]

    def check_lock(self, app_id: str, force: bool) -> None:
        locked = self.locks(app_id)
        if locked and not force:
            raise AppLocked(locked)

    async def start_deployment(
        self, app_id: str, action: str, version: str, original: dict[str, Any] | None = None
    ) -> str:
        """A new deployment for the app; a running one (only with force) is cancelled."""
        for dep_id in self.locks(app_id):
            await self.cancel_deployment(dep_id)
        dep_id = str(uuid.uuid4())
        deployment = {
            "id": dep_id,
            "version": version,
            "affectedApps": [app_id],
            "steps": plan_steps(app_id, action),
            "currentStep": 1,
            "original": original,
        }
        self.deployments[dep_id] = deployment
        await self._io(self.store.put, "deployment", dep_id, deployment)
        self.bus.publish(events.deployment_info(deployment))
        return dep_id

    async def cancel_deployment(self, dep_id: str) -> None:
        deployment = self.deployments.pop(dep_id, None)
        if deployment is None:
            return
        await self._io(self.store.delete, "deployment", dep_id)
        log.info("Deployment %s:%s cancelled", dep_id, deployment["version"])
        self.bus.publish(events.deployment_failed(deployment, CANCELLED))

    async def _advance(self, dep_id: str) -> None:
        """The deployment's current step is done: the next one, or the deployment is."""
        deployment = self.deployments[dep_id]
        self.bus.publish(events.deployment_step_success(deployment))
        if deployment["currentStep"] < len(deployment["steps"]):
            deployment["currentStep"] += 1
            await self._io(self.store.put, "deployment", dep_id, deployment)
            self.bus.publish(events.deployment_info(deployment))
            return
        self.deployments.pop(dep_id)
        await self._io(self.store.delete, "deployment", dep_id)
        log.info("Deployment %s:%s finished", dep_id, deployment["version"])
        self.bus.publish(events.deployment_success(deployment))

    def app_instances(self, app_id: str) -> list[dict[str, Any]]:
        return [i for i in self.instances.values() if i["appId"] == app_id]

    def app_deployments(self, app_id: str) -> list[str]:
        return self.locks(app_id)

    # ------------------------------------------------------------------ master
    async def _register(self, master: dict[str, Any]) -> bool:
        if self.framework_id is None and self.instances:
            log.error("Refusing to create a new Framework ID while there are existing instances")
            return False
        body = {"framework_id": self.framework_id, "framework_info": self.framework_info}
        headers = None
        if self.auth is not None:
            headers = {"Authorization": basic_header(*self.auth)}
        status, data = await self.client.post(
            masterinfo.base_url(master) + "/sim/v1/frameworks/register", body, headers
        )
        if status == 401:
            # Mesos' scheduler driver (src/sched/sched.cpp _authenticate): a master that refuses
            # the authentication is a scheduler error ("Master refused authentication"); a
            # framework that did not authenticate is refused its registration with an error
            # too. MarathonScheduler.error crashes Marathon (CrashStrategy.MesosSchedulerError).
            message = str(data.get("message", "")) if isinstance(data, dict) else ""
            log.error(
                "Authentication failed: master %s refused %s: %s",
                master.get("pid"),
                "authentication" if self.auth else "the unauthenticated registration",
                message[:200],
            )
            die("Error: Master refused authentication", code=EXIT_SCHEDULER_ERROR)
        if status != 200:
            return False
        framework_id = str(data["framework_id"])
        if self.framework_id is None:
            encoded = layout.encode_framework_id(framework_id)
            await self._io(self.store.put_bytes, "framework-id", layout.FRAMEWORK_ID_KEY, encoded)
            self.framework_id = framework_id
        log.info("registered framework %s with master %s", framework_id, master.get("pid"))
        if self.master is None:
            # MarathonScheduler.registered: SchedulerRegisteredEvent(id, master's hostname).
            # (A leader never re-registers with another master: see _disconnected.)
            hostname = str(master.get("hostname", ""))
            self.bus.publish(events.scheduler_registered(framework_id, hostname))
        self.master = master
        self.registered = True
        return True

    async def step(self) -> None:
        detected = await asyncio.to_thread(detect, self.master_zk, self.master_path)
        master = detected.leader
        if self.master is not None and (master is None or master["id"] != self.master["id"]):
            await self._disconnected(master)
            return
        if master is None:
            self.registered = False
            return
        try:
            stale = not self.registered or self.master is None
            if (stale or self.master is None or self.master["id"] != master["id"]) and not (
                await self._register(master)
            ):
                return
            assert self.framework_id is not None
            base = f"{masterinfo.base_url(master)}/sim/v1/frameworks/{self.framework_id}"
            status, view = await self.client.get(base + "/tasks")
            if status != 200:
                self.registered = False
                return
            async with self.lock:
                await self._reconcile(view)
                self.tick_health()
                await self._scale(base, view)
        except CLIENT_ERRORS as exc:
            log.warning("master %s unreachable: %s", master.get("pid"), exc)
            self.registered = False

    async def _disconnected(self, master: dict[str, Any] | None) -> None:
        """The leading Mesos master changed (or is gone) after this leader registered.

        Mesos' scheduler driver (src/sched/sched.cpp `detected`) calls `disconnected` on any
        change of the detected master; MarathonScheduler.disconnected publishes
        scheduler_disconnected_event and stops the driver, and MarathonSchedulerService
        (`startLeadership`, when driver.run() returns) abdicates: the leadership ends and
        Marathon exits (CrashStrategy.LeadershipLoss, 103); another Marathon leads and
        registers with the new master under the same framework id."""
        log.warning(
            "Disconnected: Mesos master %s is no longer the leading master (now %s)",
            self.master.get("pid") if self.master else None,
            master.get("pid") if master else None,
        )
        self.bus.publish(events.scheduler_disconnected())
        await asyncio.sleep(ABDICATE_FLUSH)  # the event reaches attached streams first
        die("Lost leadership; crashing (the driver stopped: Mesos master disconnected)", 103)

    async def _reconcile(self, view: dict[str, Any]) -> None:
        reported = {t["id"]: t for t in view["completed_tasks"] + view["tasks"]}
        agents: dict[str, str] = view.get("agents", {})
        recovering = set(view.get("recovering_agents", []))
        now = time.time()
        for instance in list(self.instances.values()):
            task = reported.get(instance["taskId"])
            if task is None:
                # Mesos master.cpp Master::reconcileTasks: no answer while the task's agent
                # has not re-registered after a failover; TASK_LOST once it has (it brings
                # its tasks), or when the master does not know the agent either.
                agent = instance.get("agentId")
                if agent not in recovering and now - instance["stagedAt"] > UNKNOWN_GRACE:
                    message = "Reconciliation: Task is unknown"
                    if agent in agents:
                        message += " to the agent"
                    await self._terminal(instance, LOST, message)
                continue
            if task["state"] in TERMINAL:
                await self._terminal(instance, task["state"], task.get("message", ""))
            elif task["state"] != instance["state"] or not instance.get("agentId"):
                changed = task["state"] != instance["state"]
                instance["state"] = task["state"]
                instance["agentId"] = task["slave_id"]
                instance["host"] = agents.get(task["slave_id"], instance.get("host", ""))
                if task.get("ports"):
                    instance["ports"] = [int(p) for p in task["ports"]]
                if task["state"] == RUNNING and not instance.get("startedAt"):
                    instance["startedAt"] = now
                await self._save_instance(instance)
                if changed:
                    self._publish_status(instance, task["state"])
                    app = self.apps.get(instance["appId"])
                    if app is not None and task["state"] != KILLING:
                        # NotifyRateLimiterStep: Staging/Starting/Running advance a delay
                        self.delays.advance(app, now)

    def _publish_status(self, instance: dict[str, Any], state: str, message: str = "") -> None:
        # core/task/update/impl/steps/PostToEventStreamStepImpl.scala: each instance change
        # publishes its MesosStatusUpdateEvent and InstanceChanged.
        condition = events.CONDITIONS.get(state, "Unknown")
        self.bus.publish(events.status_update(instance, state, message))
        self.bus.publish(events.instance_changed(instance, condition))

    async def _terminal(self, instance: dict[str, Any], state: str, message: str) -> None:
        app = self.apps.get(instance["appId"])
        if app is not None and state in backoff.LIMIT_WORTHY:
            self.delays.add(app, time.time())
        self.unhealthy.discard(instance["taskId"])
        if state in (FAILED, LOST):
            failure = {
                "appId": instance["appId"],
                "host": instance.get("host", ""),
                "message": message,
                "state": state,
                "taskId": instance["taskId"],
                "timestamp": layout.timestamp(time.time()),
                "version": instance["version"],
                "slaveId": instance.get("agentId", ""),
            }
            await self._io(
                self.store.put, "taskFailures", layout.safe_id(instance["appId"]), failure
            )
        await self._drop_instance(instance["instanceId"])
        self._publish_status(instance, state, message)

    def stale(self, app: dict[str, Any], instance: dict[str, Any]) -> bool:
        """Launched for an older configuration (its version predates the last config change;
        a scale-only change keeps the configuration)."""
        changed = app.get("versionInfo", {}).get("lastConfigChangeAt") or app["version"]
        return bool(instance["version"] < changed)

    async def _scale(self, base: str, view: dict[str, Any]) -> None:
        draining = {o["agent_id"] for o in view.get("inverse_offers", [])}
        known = {i["taskId"] for i in self.instances.values()}
        kills = [t["id"] for t in view["tasks"] if t["id"] not in known]
        launches: list[dict[str, Any]] = []
        done: set[str] = set()
        now = time.time()
        self.delays.clean_up(now)
        for app_id, app in self.apps.items():
            live = [
                planner.LiveTask(
                    i["taskId"],
                    i.get("agentId", ""),
                    i["state"],
                    i["stagedAt"],
                    self.stale(app, i),
                    healthy=self._healthy(i),
                    unhealthy=i["taskId"] in self.unhealthy,
                )
                for i in self.app_instances(app_id)
                if i["state"] in LIVE
            ]
            strategy = app.get("upgradeStrategy") or {}
            decision = planner.plan(
                int(app["instances"]),
                live,
                draining,
                float(strategy.get("minimumHealthCapacity", 1.0)),
                float(strategy.get("maximumOverCapacity", 1.0)),
                str(app.get("killSelection") or "YOUNGEST_FIRST"),
            )
            kills += decision.kill
            kills += [t.task_id for t in live if t.unhealthy and t.state != KILLING]
            if decision.launch and self.delays.deadline(app) <= now:
                for _ in range(decision.launch):
                    launches.append(await self._new_instance(app))
            if planner.satisfied(int(app["instances"]), live, draining):
                done.add(app_id)
        for app_id in {i["appId"] for i in self.instances.values()} - set(self.apps):
            kills += [i["taskId"] for i in self.app_instances(app_id) if i["state"] in LIVE]
        for dep_id, dep in list(self.deployments.items()):
            step = dep["steps"][dep["currentStep"] - 1]
            if all(self._action_done(a, done) for a in step):
                await self._advance(dep_id)
        await self._kill(base, kills)
        if launches:
            await self._launch(base, launches)
        mine = {i.get("agentId") for i in self.instances.values() if i["state"] in LIVE}
        for offer in view.get("inverse_offers", []):
            if offer["agent_id"] not in mine and offer["status"] != "ACCEPT":
                body = {"agent_id": offer["agent_id"], "status": "ACCEPT"}
                await self.client.post(base + "/inverse_offers", body)

    def _action_done(self, action: dict[str, str], satisfied: set[str]) -> bool:
        app_id = action["app"]
        if action["action"] == "StartApplication":
            return True  # starts with 0 instances: immediately successful
        if action["action"] == "StopApplication":
            return app_id not in self.apps and not self.app_instances(app_id)
        return app_id in satisfied

    def _healthy(self, instance: dict[str, Any]) -> bool:
        """Counts as healthy for a deployment (TaskStartActor/TaskReplaceActor with health
        checks: every check alive; without: running)."""
        if instance["state"] != RUNNING:
            return False
        if not instance.get("healthChecks"):
            return True
        return self.health.healthy(instance) is True

    def _health_kill(self, instance: dict[str, Any], cause: str) -> None:
        log.info("killing unhealthy %s: %s", instance["taskId"], cause[:200])
        self.unhealthy.add(instance["taskId"])
        self.killed.pop(instance["taskId"], None)

    def _check_env(self, instance: dict[str, Any]) -> dict[str, str]:
        """The task's environment, for a COMMAND health check."""
        app = self.apps.get(instance["appId"]) or {"id": instance["appId"], "version": ""}
        requests = [
            PortRequest(r.get("name"), int(r["port"]), r.get("host"))
            for r in ports.port_requests(app)
        ]
        host_ports: list[int | None] = list(instance.get("ports") or [])
        host_ports += [None] * (len(requests) - len(host_ports))
        env = ports.context_env(app, instance["taskId"])
        env.update(ports_env(requests, host_ports[: len(requests)]))
        env["HOST"] = str(instance.get("host") or "")
        env.update(ports.app_env(app))
        return env

    def tick_health(self) -> None:
        live = [i for i in self.instances.values() if i["state"] in LIVE]
        self.health.tick(live, self._check_env)

    async def _new_instance(self, app: dict[str, Any]) -> dict[str, Any]:
        unique = uuid.uuid4()
        safe = layout.safe_id(app["id"])
        instance = {
            "instanceId": f"{safe}.instance-{unique}",
            "taskId": f"{safe}.instance-{unique}._app.1",
            "appId": app["id"],
            "agentId": "",
            "host": "",
            "state": STAGING,
            "stagedAt": time.time(),
            "startedAt": None,
            "version": app["version"],
            "ports": [],
            "healthChecks": list(app.get("healthChecks") or []),
        }
        await self._save_instance(instance)
        return instance

    async def _launch(self, base: str, instances: list[dict[str, Any]]) -> None:
        specs = []
        for instance in instances:
            app = self.apps[instance["appId"]]
            specs.append(
                {
                    "task_id": instance["taskId"],
                    "name": app["id"].strip("/").replace("/", "."),
                    "resources": {"cpus": app["cpus"], "mem": app["mem"], "disk": app["disk"]},
                    "command": app.get("cmd") or shlex.join(app.get("args") or []),
                    "container": ports.container_info(app),
                    "port_requests": ports.port_requests(app),
                    "env": ports.context_env(app, instance["taskId"]),
                    "app_env": ports.app_env(app),
                    "kill_grace": app.get("taskKillGracePeriodSeconds"),
                }
            )
        status, data = await self.client.post(base + "/launch", {"tasks": specs})
        placed = {t["id"]: t for t in data.get("launched", [])} if status == 200 else {}
        for instance in instances:
            task = placed.get(instance["taskId"])
            if task is None:
                await self._drop_instance(instance["instanceId"])
            else:
                instance["agentId"] = task["slave_id"]
                instance["ports"] = [int(p) for p in task.get("ports") or []]
                await self._save_instance(instance)
                # Launched, no status from Mesos yet: condition Provisioned, task TASK_STAGING
                # (InstanceChangedEventsGenerator.scala).
                self.bus.publish(events.status_update(instance, STAGING))
                self.bus.publish(events.instance_changed(instance, "Provisioned"))

    async def _kill(self, base: str, task_ids: list[str]) -> None:
        now = time.time()
        for task_id in task_ids:
            if now - self.killed.get(task_id, 0.0) < KILL_RETRY:
                continue
            self.killed[task_id] = now
            await self.client.post(base + "/kill", {"task_id": task_id})
        self.killed = {t: at for t, at in self.killed.items() if now - at < 60.0}

    async def close(self) -> None:
        await self.health.close()
        await self.client.close()
