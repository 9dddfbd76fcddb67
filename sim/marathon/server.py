"""The simulated Marathon process: leader latch, proxying followers, ZooKeeper state.

Every Marathon joins the latch under `<zk path>/leader-curator`; the lowest sequence leads,
loads the state from ZooKeeper and runs the scheduler. Followers proxy API calls to the
leader. Marathon exits on any ZooKeeper connection loss and when it loses leadership.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from sim import MARATHON_VERSION, masterinfo
from sim.httputil import CLIENT_ERRORS, error, json_response, run_app
from sim.marathon import layout, routes
from sim.marathon.scheduler import Scheduler
from sim.marathon.storage import Store
from sim.zksession import ExitPolicy, ZkSession, die, loop_forever
from sim.zkurl import ZkUrl

log = logging.getLogger("sim.marathon")

POLL = 0.5
LOCAL = {"/ping", "/v2/leader"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class MarathonConfig:
    master: ZkUrl
    zk: ZkUrl
    port: int
    ip: str = "127.0.0.1"
    hostname: str = ""
    zk_session_timeout: float = 10.0
    framework_name: str = "marathon"


class Marathon:
    def __init__(self, config: MarathonConfig) -> None:
        self.config = config
        self.hostname = config.hostname or config.ip
        self.me = f"{self.hostname}:{config.port}"
        self.zk = ZkSession(config.zk, config.zk_session_timeout, ExitPolicy.ON_CONNECTION_LOSS)
        self.master_zk = ZkSession(config.master, config.zk_session_timeout, ExitPolicy.NEVER)
        self.latch_dir = f"{config.zk.path}/{layout.LATCH_DIR}"
        self.node = ""
        self.leader: str | None = None
        self.elected = False
        self.scheduler = Scheduler(
            Store(self.zk.client, config.zk.path),
            self.master_zk.client,
            config.master.path,
            {
                "name": config.framework_name,
                "hostname": self.hostname,
                "webui_url": f"http://{self.me}",
                "user": "root",
                "role": "*",
                "failover_timeout": 604800.0,
                "checkpoint": True,
            },
        )
        self.proxy_session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ latch
    def _join(self) -> None:
        self.zk.client.ensure_path(self.latch_dir)
        created = self.zk.client.create(
            f"{self.latch_dir}/{layout.LATCH_PREFIX}{uuid.uuid4()}{layout.LATCH_MARK}",
            self.me.encode(),
            ephemeral=True,
            sequence=True,
        )
        self.node = str(created).rsplit("/", 1)[1]

    def _leader(self) -> tuple[bool, str | None]:
        children = list(self.zk.client.get_children(self.latch_dir))
        name = layout.latch_leader(children)
        if name is None:
            return self.node in children, None
        data, _ = self.zk.client.get(f"{self.latch_dir}/{name}")
        return self.node in children, bytes(data).decode()

    async def step(self) -> None:
        present, leader = await asyncio.to_thread(self._leader)
        if not present:
            die("Lost leadership latch membership", code=4)
        self.leader = leader
        if leader == self.me and not self.elected:
            log.info("elected leader")
            await self.scheduler.load()
            self.elected = True
        elif leader != self.me and self.elected:
            die("Lost leadership", code=4)
        if self.elected:
            await self.scheduler.step()

    async def run(self) -> None:
        await asyncio.to_thread(self.zk.start, 30.0)
        await asyncio.to_thread(self.master_zk.start, 30.0)
        await asyncio.to_thread(self._join)
        log.info("joined the leader latch as %s", self.node)
        app = web.Application(middlewares=[self._proxy_middleware])
        self._add_local_routes(app)
        routes.add_routes(app, self)
        runner = await run_app(app, self.config.ip, self.config.port)
        try:
            await loop_forever(self.step, POLL)
        finally:
            await runner.cleanup()
            await self.scheduler.close()
            if self.proxy_session is not None:
                await self.proxy_session.close()
            await asyncio.to_thread(self.zk.stop)
            await asyncio.to_thread(self.master_zk.stop)

    # ------------------------------------------------------------------ http
    def info(self) -> dict[str, Any]:
        master = self.scheduler.master
        return {
            "name": "marathon",
            "version": MARATHON_VERSION,
            "buildref": "sim",
            "elected": self.elected,
            "leader": self.leader,
            "frameworkId": self.scheduler.framework_id,
            "marathon_config": {
                "master": str(self.config.master),
                "hostname": self.hostname,
                "framework_name": self.config.framework_name,
                "failover_timeout": 604800,
                "checkpoint": True,
                "mesos_role": None,
                "mesos_user": "root",
                "mesos_leader_ui_url": f"{masterinfo.base_url(master)}/" if master else None,
            },
            "zookeeper_config": {
                "zk": str(self.config.zk),
                "zk_timeout": int(self.config.zk_session_timeout * 1000),
                "zk_session_timeout": int(self.config.zk_session_timeout * 1000),
                "zk_max_versions": 50,
            },
            "http_config": {"http_port": self.config.port, "https_port": 8443},
            "event_subscriber": None,
        }

    def _add_local_routes(self, app: web.Application) -> None:
        async def ping(request: web.Request) -> web.StreamResponse:
            return web.Response(text="pong\n")

        async def leader(request: web.Request) -> web.StreamResponse:
            if self.leader is None:
                return error(404, "There is no leader")
            return json_response({"leader": self.leader})

        async def abdicate(request: web.Request) -> web.StreamResponse:
            if not self.elected:
                return error(404, "There is no leader")
            asyncio.get_running_loop().call_later(0.2, die, "Abdicating leadership", 0)
            return json_response({"message": "Leadership abdicated"})

        app.router.add_get("/ping", ping)
        app.router.add_get("/v2/leader", leader)
        app.router.add_delete("/v2/leader", abdicate)

    @web.middleware
    async def _proxy_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if (request.path in LOCAL and request.method == "GET") or self.elected:
            response = await handler(request)
            response.headers["X-Marathon-Leader"] = f"http://{self.leader or ''}"
            return response
        if self.leader is None or self.leader == self.me:
            return error(503, "Could not determine the current leader")
        return await self._proxy(request, self.leader)

    async def _proxy(self, request: web.Request, leader: str) -> web.StreamResponse:
        if self.proxy_session is None:
            self.proxy_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["X-Marathon-Via"] = f"1.1 {self.me}"
        try:
            async with self.proxy_session.request(
                request.method,
                f"http://{leader}{request.path_qs}",
                data=await request.read(),
                headers=headers,
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
                return web.Response(body=body, status=upstream.status, headers=out)
        except CLIENT_ERRORS as exc:
            return error(502, f"Could not reach the leader {leader}: {exc}")


async def serve(config: MarathonConfig) -> None:
    await Marathon(config).run()
