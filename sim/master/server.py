"""The simulated Mesos master process: candidacy, recovery, replication, HTTP API."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim import VERSION, masterinfo
from sim.contenders import Detected, detect
from sim.httputil import CLIENT_ERRORS, Client, run_app
from sim.master import routes
from sim.master.election import Candidacy
from sim.master.registry import MasterState
from sim.master.views import Identity
from sim.zksession import ExitPolicy, ZkSession, die, loop_forever
from sim.zkurl import ZkUrl

log = logging.getLogger("sim.master")

POLL = 0.3
REPLICATE_EVERY = 2.0


@dataclass(frozen=True)
class MasterConfig:
    zk: ZkUrl
    port: int
    ip: str = "127.0.0.1"
    hostname: str = ""
    quorum: int = 1
    cluster: str = "sim"
    zk_session_timeout: float = 10.0
    registry_fetch_timeout: float = 60.0
    agent_disconnect_timeout: float = 3.0
    agent_removal_timeout: float = 75.0
    work_dir: Path | None = None
    authenticate_agents: bool = False
    authenticate_frameworks: bool = False
    credentials: dict[str, str] | None = field(default=None, repr=False)


class Master:
    def __init__(self, config: MasterConfig) -> None:
        self.config = config
        self.master_id = str(uuid.uuid4())
        hostname = config.hostname or config.ip
        self.info = masterinfo.master_info(
            self.master_id, config.ip, config.port, hostname, VERSION
        )
        self.identity = Identity(
            info=self.info,
            cluster=config.cluster,
            start_time=time.time(),
            flags={
                "zk": str(config.zk),
                "quorum": str(config.quorum),
                "port": str(config.port),
                "ip": config.ip,
                "hostname": hostname,
                "cluster": config.cluster,
                "zk_session_timeout": f"{config.zk_session_timeout}secs",
                "registry": "replicated_log",
                "work_dir": str(config.work_dir or ""),
                "authenticate_agents": str(config.authenticate_agents).lower(),
                "authenticate_frameworks": str(config.authenticate_frameworks).lower(),
            },
        )
        self.zk = ZkSession(config.zk, config.zk_session_timeout, ExitPolicy.ON_SESSION_LOSS)
        self.candidacy = Candidacy(self.zk.client, config.zk.path, self.info)
        self.detected = Detected([], None, None, {})
        self.state: MasterState | None = None  # set once elected and recovered
        self.elected_time: float | None = None
        self.leading_since: float | None = None
        self.replica: dict[str, Any] = {"version": 0}
        self.pushed: dict[str, tuple[int, float]] = {}
        self.client = Client(timeout=2.0)
        self.lock = asyncio.Lock()
        self.background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ queries
    @property
    def leader(self) -> dict[str, Any] | None:
        return self.detected.leader

    @property
    def is_leader(self) -> bool:
        return self.detected.leader_node == self.candidacy.node and bool(self.candidacy.node)

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        cfg = self.config
        for kind, required in (
            ("frameworks", cfg.authenticate_frameworks),
            ("agents", cfg.authenticate_agents),
        ):
            log.info(
                "Master %s %s to register",
                "only allowing authenticated" if required else "allowing unauthenticated",
                kind,
            )
        if cfg.credentials is None and (cfg.authenticate_agents or cfg.authenticate_frameworks):
            log.warning("No credentials provided, authentication requests will be refused")
        log.info("using ZooKeeper %s", cfg.zk)  # str() hides the password
        await asyncio.to_thread(self.zk.start, 30.0)
        await asyncio.to_thread(self.candidacy.enter)
        log.info("contending as %s/%s", self.config.zk.path, self.candidacy.node)
        runner = await run_app(routes.build(self), self.config.ip, self.config.port)
        try:
            await loop_forever(self.step, POLL)
        finally:
            await runner.cleanup()
            await self.client.close()
            await asyncio.to_thread(self.zk.stop)

    async def step(self) -> None:
        detected = await asyncio.to_thread(
            detect, self.zk.client, self.config.zk.path, all_contenders=True
        )
        if self.candidacy.node not in detected.children:
            die("Lost candidacy: our json.info_ znode is gone")
        if detected.leader_node != self.detected.leader_node:
            log.info("detected leader %s", detected.leader and detected.leader.get("pid"))
        self.detected = detected
        if self.is_leader:
            await self._lead()
        elif self.state is not None:
            die("Lost leadership")
        else:
            self.leading_since = None

    async def _lead(self) -> None:
        if self.state is None:
            now = time.monotonic()
            self.leading_since = self.leading_since or now
            replicas = await asyncio.to_thread(self.candidacy.replicas)
            if replicas < self.config.quorum:
                if now - self.leading_since > self.config.registry_fetch_timeout:
                    die(
                        f"Recovery failed: only {replicas} of the {self.config.quorum} "
                        "log replicas needed for a quorum"
                    )
                return
            state = MasterState(
                self.master_id,
                disconnect_after=self.config.agent_disconnect_timeout,
                remove_after=self.config.agent_removal_timeout,
            )
            state.recover(self.replica)
            self.state = state
            self.elected_time = time.time()
            log.info("elected leader; recovered registry version %s", self.replica["version"])
        async with self.lock:
            self.state.tick()
        await self.replicate()

    async def replicate(self) -> None:
        """Push the registry to the other masters (the sim's replicated log). Handlers of
        registry operations await it before answering, as Mesos commits them first."""
        assert self.state is not None
        registry = self.state.registry()
        self.replica = registry
        now = time.monotonic()
        pushes = []
        for name, info in self.detected.contenders.items():
            if name == self.candidacy.node:
                continue
            version, at = self.pushed.get(name, (-1, 0.0))
            if version == registry["version"] and now - at < REPLICATE_EVERY:
                continue
            self.pushed[name] = (registry["version"], now)
            url = masterinfo.base_url(info) + "/sim/v1/registry"
            pushes.append(self.client.post(url, registry))
        for result in await asyncio.gather(*pushes, return_exceptions=True):
            if isinstance(result, BaseException) and not isinstance(result, CLIENT_ERRORS):
                raise result

    def accept_replica(self, registry: dict[str, Any]) -> None:
        if self.state is None and registry.get("version", 0) >= self.replica.get("version", 0):
            self.replica = registry

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def call_agent(self, url: str, body: dict[str, Any]) -> bool:
        try:
            status, _ = await self.client.post(url, body)
        except CLIENT_ERRORS as exc:
            log.warning("agent call %s failed: %s", url, exc)
            return False
        return status == 200


async def serve(config: MasterConfig) -> None:
    await Master(config).run()
