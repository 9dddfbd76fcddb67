"""The simulated Marathon process: leader latch, proxying followers, ZooKeeper state.

Every Marathon joins the latch under `<zk path>/leader-curator`; the lowest sequence leads,
loads the state from ZooKeeper and runs the scheduler. Followers proxy API calls to the
leader (`proxy`). With `--http_credentials` every route needs HTTP Basic auth (`auth`).

Exit codes are Marathon 1.11's (`core/base/CrashStrategy.scala`): 100 ZooKeeper unreachable at
start, 101 ZooKeeper connection lost (`RichCuratorFramework.ConnectionLostListener`: any
disconnection), 103 leadership lost (also after `DELETE /v2/leader`: abdication ends the
leadership, `core/election/ElectionService.scala`), 106 a Mesos scheduler error (the master
refused the framework's authentication or registration, `MarathonScheduler.error`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kazoo.client import KazooState
from kazoo.security import CREATOR_ALL_ACL, OPEN_ACL_UNSAFE

from sim import MARATHON_VERSION, masterinfo
from sim.httputil import error, json_response, run_app
from sim.marathon import auth, events, layout, routes
from sim.marathon.proxy import (
    EVENTS_PATH,
    SERVED_BY_LEADER,
    LeaderProxy,
    error_page,
    leader_headers,
)
from sim.marathon.scheduler import Scheduler
from sim.marathon.storage import Store
from sim.zksession import ExitPolicy, ZkSession, die, loop_forever
from sim.zkurl import ZkUrl

log = logging.getLogger("sim.marathon")

POLL = 0.5
EXIT_ZK_CONNECTION_FAILURE = 100
EXIT_ZK_CONNECTION_LOSS = 101
EXIT_LEADERSHIP_LOSS = 103
ABDICATION_DELAY = 0.5  # api/v2/LeaderResource.scala abdicationDelay


@dataclass(frozen=True)
class MarathonConfig:
    master: ZkUrl
    zk: ZkUrl
    port: int
    ip: str = "127.0.0.1"
    hostname: str = ""
    zk_session_timeout: float = 10.0
    zk_connection_timeout: float = 10.0
    framework_name: str = "marathon"
    http_credentials: auth.HttpCredentials | None = None
    http_realm: str = auth.DEFAULT_REALM
    leader_proxy_connection_timeout: float = 5.0
    leader_proxy_read_timeout: float = 10.0
    event_stream_max_outstanding_messages: int = events.MAX_OUTSTANDING
    mesos_principal: str | None = None  # with --mesos_authentication
    mesos_secret: str = field(default="", repr=False)


class Marathon:
    def __init__(self, config: MarathonConfig) -> None:
        self.config = config
        self.hostname = config.hostname or config.ip
        self.me = f"{self.hostname}:{config.port}"
        # Marathon creates its znodes CREATOR_ALL when its zk URL carries credentials, else
        # OPEN_ACL_UNSAFE (ZookeeperConf.scala, zkDefaultCreationACL).
        acl = CREATOR_ALL_ACL if config.zk.credentials else OPEN_ACL_UNSAFE
        self.zk = ZkSession(config.zk, config.zk_session_timeout, ExitPolicy.NEVER, acl=acl)
        self.zk.client.add_listener(self._on_zk_state)
        self.master_zk = ZkSession(config.master, config.zk_session_timeout, ExitPolicy.NEVER)
        self.stopping = False
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
        self.scheduler.bus.max_outstanding = config.event_stream_max_outstanding_messages
        if config.mesos_principal is not None:
            self.scheduler.framework_info["principal"] = config.mesos_principal
            self.scheduler.auth = (config.mesos_principal, config.mesos_secret)
        self.proxy = LeaderProxy(
            self, config.leader_proxy_connection_timeout, config.leader_proxy_read_timeout
        )

    def _on_zk_state(self, state: str) -> None:
        if self.stopping:
            return
        if state in (KazooState.SUSPENDED, KazooState.LOST):
            die("ZooKeeper connection lost", code=EXIT_ZK_CONNECTION_LOSS)

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

    def _leader(self) -> tuple[bool, bool, str | None]:
        """(our node is in the latch, our node is the lowest, the lowest node's host:port).
        Curator's LeaderLatch leads by its own node, not by the data: a Marathon restarted at
        the same host:port waits until its previous node's session expires."""
        children = list(self.zk.client.get_children(self.latch_dir))
        name = layout.latch_leader(children)
        if name is None:
            return self.node in children, False, None
        data, _ = self.zk.client.get(f"{self.latch_dir}/{name}")
        return self.node in children, name == self.node, bytes(data).decode()

    async def step(self) -> None:
        present, lowest, leader = await asyncio.to_thread(self._leader)
        if not present:
            die("Lost leadership latch membership", code=EXIT_LEADERSHIP_LOSS)
        self.leader = leader
        if lowest and not self.elected:
            log.info("elected leader")
            await self.scheduler.load()
            self.elected = True
        elif not lowest and self.elected:
            die("Lost leadership; crashing", code=EXIT_LEADERSHIP_LOSS)
        if self.elected:
            await self.scheduler.step()

    async def run(self) -> None:
        try:
            await asyncio.to_thread(self.zk.start, self.config.zk_connection_timeout)
        except Exception as exc:
            log.error("Failed to connect to ZK (%s). Marathon will exit now.", type(exc).__name__)
            die("ZooKeeper unreachable", code=EXIT_ZK_CONNECTION_FAILURE)
        await asyncio.to_thread(self.master_zk.start, 30.0)
        await asyncio.to_thread(self._join)
        log.info("joined the leader latch as %s", self.node)
        if self.config.http_credentials is not None:
            log.info(
                "HTTP Basic authentication required for user %s", self.config.http_credentials.user
            )
        app = web.Application(middlewares=[self._auth_middleware, self._proxy_middleware])
        app.on_response_prepare.append(self._leader_headers)
        self._add_local_routes(app)
        routes.add_routes(app, self)
        runner = await run_app(app, self.config.ip, self.config.port)
        try:
            await loop_forever(self.step, POLL)
        finally:
            self.stopping = True
            self.scheduler.bus.close_all()
            await runner.cleanup()
            await self.scheduler.close()
            await self.proxy.close()
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
                "master": _redacted(self.config.master),
                "hostname": self.hostname,
                "framework_name": self.config.framework_name,
                "failover_timeout": 604800,
                "leader_proxy_connection_timeout_ms": int(
                    self.config.leader_proxy_connection_timeout * 1000
                ),
                "leader_proxy_read_timeout_ms": int(self.config.leader_proxy_read_timeout * 1000),
                "checkpoint": True,
                "mesos_role": None,
                "mesos_user": "root",
                "mesos_leader_ui_url": f"{masterinfo.base_url(master)}/" if master else None,
            },
            "zookeeper_config": {
                "zk": _redacted(self.config.zk),
                "zk_timeout": int(self.config.zk_session_timeout * 1000),
                "zk_session_timeout": int(self.config.zk_session_timeout * 1000),
                "zk_max_versions": 50,
            },
            "http_config": {"http_port": self.config.port, "https_port": 8443},
            "event_subscriber": None,
        }

    def _add_local_routes(self, app: web.Application) -> None:
        async def ping(request: web.Request) -> web.StreamResponse:
            # api/SystemResource.scala: "pong" as text/plain (JSON "pong" if only JSON is
            # accepted); the proxy filter still applies: a follower asks the leader.
            accept = request.headers.get("Accept", "*/*")
            if "application/json" in accept and "text/" not in accept and "*/*" not in accept:
                return json_response("pong")
            return web.Response(text="pong")

        async def leader(request: web.Request) -> web.StreamResponse:
            if self.leader is None:
                return error(404, "There is no leader")
            return json_response({"leader": self.leader})

        async def abdicate(request: web.Request) -> web.StreamResponse:
            if not self.elected:
                return error(404, "There is no leader")
            asyncio.get_running_loop().call_later(
                ABDICATION_DELAY, die, "Abdicating leadership", EXIT_LEADERSHIP_LOSS
            )
            return json_response({"message": "Leadership abdicated"})

        async def event_stream(request: web.Request) -> web.StreamResponse:
            return await self._event_stream(request)

        app.router.add_get("/ping", ping)
        app.router.add_get("/v2/leader", leader)
        app.router.add_delete("/v2/leader", abdicate)
        app.router.add_get(EVENTS_PATH, event_stream)

    async def _event_stream(self, request: web.Request) -> web.StreamResponse:
        if events.EVENT_STREAM not in request.headers.getall("Accept", []):
            # Jetty EventSourceServlet: without `Accept: text/event-stream` HttpServlet.doGet
            return error_page(405, "HTTP method GET is not supported by this URL", request.path)
        bus = self.scheduler.bus
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream;charset=utf-8"}
        )
        response.force_close()  # Jetty: `Connection: close`
        sub = bus.attach(request.remote or "", request.query.getall("event_type", []))
        log.info("Add EventStream Handle as event listener: %s", sub.remote)
        try:
            await response.prepare(request)
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), events.HEARTBEAT_SECONDS)
                except TimeoutError:
                    await response.write(b"\r\n")
                    continue
                if event is None:
                    break
                if sub.wants(event):
                    await response.write(events.frame(event))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            bus.detach(sub)
        return response

    async def _leader_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.get(SERVED_BY_LEADER):
            response.headers.update(leader_headers(self.me))

    @web.middleware
    async def _auth_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        credentials = self.config.http_credentials
        if credentials is None or auth.basic_ok(request.headers.get("Authorization"), credentials):
            return await handler(request)
        response = error_page(401, "Unauthorized", request.path)
        response.headers["WWW-Authenticate"] = auth.challenge(self.config.http_realm)
        return response

    @web.middleware
    async def _proxy_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        return await self.proxy.dispatch(request, handler)


def _redacted(url: ZkUrl) -> str:
    """ZookeeperConf.ZkUrl.redactedConnectionString."""
    auth_part = "xxxxxxxx:xxxxxxxx@" if url.credentials else ""
    return f"zk://{auth_part}{url.hosts}{url.path}"


async def serve(config: MarathonConfig) -> None:
    await Marathon(config).run()
