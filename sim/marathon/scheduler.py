"""The leading Marathon's state and scheduling loop.

State lives in memory and is written through to ZooKeeper (`Store`); a new leader loads it.
Each step: find the leading Mesos master (lowest `json.info_`), (re-)register the framework
with the stored framework id, read the framework's tasks and inverse offers from the master,
reconcile instances, scale apps (`planner`) and finish deployments.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from kazoo.client import KazooClient

from sim import masterinfo
from sim.contenders import detect
from sim.httputil import CLIENT_ERRORS, Client
from sim.marathon import layout, planner
from sim.marathon.storage import Store
from sim.tasks import FAILED, LIVE, LOST, RUNNING, STAGING, TERMINAL

log = logging.getLogger("sim.marathon.scheduler")

UNKNOWN_GRACE = 3.0  # a launched task the master does not report yet is not lost before
KILL_RETRY = 5.0


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

    # ------------------------------------------------------------------ persistence
    async def _io(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def load(self) -> None:
        await self._io(self.store.ensure_layout)
        self.apps = {a["id"]: a for a in (await self._io(self.store.load, "apps")).values()}
        self.instances = dict(await self._io(self.store.load, "instance"))
        self.deployments = dict(await self._io(self.store.load, "deployment"))
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

    async def start_deployment(self, app_id: str, action: str, version: str) -> str:
        for dep_id, dep in list(self.deployments.items()):
            if app_id in dep["affectedApps"]:
                self.deployments.pop(dep_id)
                await self._io(self.store.delete, "deployment", dep_id)
        dep_id = str(uuid.uuid4())
        deployment = {"id": dep_id, "version": version, "affectedApps": [app_id], "action": action}
        self.deployments[dep_id] = deployment
        await self._io(self.store.put, "deployment", dep_id, deployment)
        return dep_id

    def app_instances(self, app_id: str) -> list[dict[str, Any]]:
        return [i for i in self.instances.values() if i["appId"] == app_id]

    def app_deployments(self, app_id: str) -> list[str]:
        return [d for d, dep in self.deployments.items() if app_id in dep["affectedApps"]]

    # ------------------------------------------------------------------ master
    async def _register(self, master: dict[str, Any]) -> bool:
        if self.framework_id is None and self.instances:
            log.error("Refusing to create a new Framework ID while there are existing instances")
            return False
        body = {"framework_id": self.framework_id, "framework_info": self.framework_info}
        status, data = await self.client.post(
            masterinfo.base_url(master) + "/sim/v1/frameworks/register", body
        )
        if status != 200:
            return False
        framework_id = str(data["framework_id"])
        if self.framework_id is None:
            encoded = layout.encode_framework_id(framework_id)
            await self._io(self.store.put_bytes, "framework-id", layout.FRAMEWORK_ID_KEY, encoded)
            self.framework_id = framework_id
        log.info("registered framework %s with master %s", framework_id, master.get("pid"))
        self.master = master
        self.registered = True
        return True

    async def step(self) -> None:
        detected = await asyncio.to_thread(detect, self.master_zk, self.master_path)
        master = detected.leader
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
                await self._scale(base, view)
        except CLIENT_ERRORS as exc:
            log.warning("master %s unreachable: %s", master.get("pid"), exc)
            self.registered = False

    async def _reconcile(self, view: dict[str, Any]) -> None:
        reported = {t["id"]: t for t in view["completed_tasks"] + view["tasks"]}
        agents: dict[str, str] = view.get("agents", {})
        recovering = set(view.get("recovering_agents", []))
        now = time.time()
        for instance in list(self.instances.values()):
            task = reported.get(instance["taskId"])
            if task is None:
                # After a master failover, tasks come back when their agent re-registers;
                # a task of an agent the master knows is reported (if lost, as TASK_LOST).
                agent = instance.get("agentId")
                waiting = agent in recovering or agent in agents
                if not waiting and now - instance["stagedAt"] > UNKNOWN_GRACE:
                    await self._terminal(instance, LOST, "task unknown to the master")
                continue
            if task["state"] in TERMINAL:
                await self._terminal(instance, task["state"], "")
            elif task["state"] != instance["state"] or not instance.get("agentId"):
                instance["state"] = task["state"]
                instance["agentId"] = task["slave_id"]
                instance["host"] = agents.get(task["slave_id"], instance.get("host", ""))
                if task["state"] == RUNNING and not instance.get("startedAt"):
                    instance["startedAt"] = now
                await self._save_instance(instance)

    async def _terminal(self, instance: dict[str, Any], state: str, message: str) -> None:
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

    async def _scale(self, base: str, view: dict[str, Any]) -> None:
        draining = {o["agent_id"] for o in view.get("inverse_offers", [])}
        known = {i["taskId"] for i in self.instances.values()}
        kills = [t["id"] for t in view["tasks"] if t["id"] not in known]
        launches: list[dict[str, Any]] = []
        for app_id, app in self.apps.items():
            live = [
                planner.LiveTask(i["taskId"], i.get("agentId", ""), i["state"], i["stagedAt"])
                for i in self.app_instances(app_id)
                if i["state"] in LIVE
            ]
            decision = planner.plan(int(app["instances"]), live, draining)
            kills += decision.kill
            for _ in range(decision.launch):
                launches.append(await self._new_instance(app))
            if planner.satisfied(int(app["instances"]), live, draining):
                await self._finish_deployments(app_id)
        for app_id in {i["appId"] for i in self.instances.values()} - set(self.apps):
            kills += [i["taskId"] for i in self.app_instances(app_id) if i["state"] in LIVE]
        for dep_id, dep in list(self.deployments.items()):
            if not any(a in self.apps or self.app_instances(a) for a in dep["affectedApps"]):
                self.deployments.pop(dep_id)
                await self._io(self.store.delete, "deployment", dep_id)
        await self._kill(base, kills)
        if launches:
            await self._launch(base, launches)
        mine = {i.get("agentId") for i in self.instances.values() if i["state"] in LIVE}
        for offer in view.get("inverse_offers", []):
            if offer["agent_id"] not in mine and offer["status"] != "ACCEPT":
                body = {"agent_id": offer["agent_id"], "status": "ACCEPT"}
                await self.client.post(base + "/inverse_offers", body)

    async def _finish_deployments(self, app_id: str) -> None:
        for dep_id in self.app_deployments(app_id):
            self.deployments.pop(dep_id, None)
            await self._io(self.store.delete, "deployment", dep_id)

    async def _new_instance(self, app: dict[str, Any]) -> dict[str, Any]:
        unique = uuid.uuid4()
        safe = layout.safe_id(app["id"])
        instance = {
            "instanceId": f"{safe}.marathon-{unique}",
            "taskId": f"{safe}.instance-{unique}._app.1",
            "appId": app["id"],
            "agentId": "",
            "host": "",
            "state": STAGING,
            "stagedAt": time.time(),
            "startedAt": None,
            "version": app["version"],
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
                    "command": app.get("cmd") or "",
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
                await self._save_instance(instance)

    async def _kill(self, base: str, task_ids: list[str]) -> None:
        now = time.time()
        for task_id in task_ids:
            if now - self.killed.get(task_id, 0.0) < KILL_RETRY:
                continue
            self.killed[task_id] = now
            await self.client.post(base + "/kill", {"task_id": task_id})
        self.killed = {t: at for t, at in self.killed.items() if now - at < 60.0}

    async def close(self) -> None:
        await self.client.close()
