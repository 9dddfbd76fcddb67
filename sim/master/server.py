"""The simulated Mesos master process: candidacy, recovery, replication, HTTP API."""

from __future__ import annotations

import asyncio
import json
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
from sim.master.replog import Demoted, NoQuorum, ReplicatedLog
from sim.master.views import Identity
from sim.zksession import ExitPolicy, ZkSession, die, loop_forever
from sim.zkurl import ZkUrl

log = logging.getLogger("sim.master")

POLL = 0.3


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
    registry_store_timeout: float = 20.0
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
        self.state: MasterState | None = None  # set once elected and the registry recovered
        self.elected_time: float | None = None
        self.recovery: asyncio.Task[None] | None = None
        self.committed_version = -1
        self.client = Client(timeout=2.0)
        self.log = ReplicatedLog(
            address=f"{config.ip}:{config.port}",
            quorum=config.quorum,
            work_dir=config.work_dir,
            master_id=self.master_id,
            client=Client(timeout=1.0),
        )
        self.lock = asyncio.Lock()
        self.background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ queries
    @property
    def leader(self) -> dict[str, Any] | None:
        return self.detected.leader

    @property
    def is_leader(self) -> bool:
        """Elected in ZooKeeper (Mesos `elected()`), recovered or not."""
        return self.detected.leader_node == self.candidacy.node and bool(self.candidacy.node)

    def log_metrics(self) -> dict[str, float]:
        out = {
            "registrar/log/ensemble_size": float(self.log.ensemble_size),
            "sim/log/quorum_intersection_unsafe": 1.0 if self.log.unsafe else 0.0,
            "sim/log/quorum_intersection_unsafe_seen": float(self.log.unsafe_seen),
        }
        if self.state is not None:
            # src/master/registrar.cpp: a gauge that fails ("Not recovered yet") until the
            # registry is recovered, so it is absent from the snapshot before.
            out["registrar/registry_size_bytes"] = float(len(json.dumps(self.state.registry())))
        return out

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
        log.info("replica %s at position %d", self.log.replica.status, self.log.replica.position)
        await asyncio.to_thread(self.zk.start, 30.0)
        await asyncio.to_thread(self.candidacy.enter)
        log.info("contending as %s/%s", self.config.zk.path, self.candidacy.node)
        runner = await run_app(routes.build(self), self.config.ip, self.config.port)
        await self.refresh_replicas()
        self.spawn(self.log.recover_replica(self.refresh_replicas))
        try:
            await loop_forever(self.step, POLL)
        finally:
            await runner.cleanup()
            await self.client.close()
            await self.log.client.close()
            await asyncio.to_thread(self.zk.stop)

    async def refresh_replicas(self) -> None:
        self.log.set_peers(await asyncio.to_thread(self.candidacy.replica_addresses))

    async def step(self) -> None:
        detected = await asyncio.to_thread(
            detect, self.zk.client, self.config.zk.path, all_contenders=True
        )
        if self.candidacy.node not in detected.children:
            die("Lost candidacy as a leader... committing suicide! (json.info_ znode gone)", code=1)
        if detected.leader_node != self.detected.leader_node:
            log.info("detected leader %s", detected.leader and detected.leader.get("pid"))
        self.detected = detected
        await self.refresh_replicas()
        if self.is_leader:
            await self._lead()
        elif self.elected_time is not None:
            # src/master/master.cpp Master::detected: an elected master that is no longer
            # the leader commits suicide, recovered or not.
            if detected.leader_node is None:
                die("Lost leadership after indecisive election... committing suicide!", code=1)
            die("Conceded leadership to another master... committing suicide!", code=1)

    async def _lead(self) -> None:
        if self.elected_time is None:
            self.elected_time = time.time()
            log.info("elected leading master; recovering the registry")
            self.recovery = asyncio.create_task(self._recover_registry())
        if self.state is None:
            return
        async with self.lock:
            self.state.tick()
            await self.commit()

    async def _recover_registry(self) -> None:
        """src/master/registrar.cpp recover(): fetch the registry through the log (the
        local replica recovered, then the coordinator elected by a quorum) within
        --registry_fetch_timeout, else master.cpp exits "Recovery failed"."""
        timeout = self.config.registry_fetch_timeout
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self.log.recovered.wait(), timeout)
            registry = await self.log.elect(deadline)
        except (TimeoutError, NoQuorum):
            die(
                "Recovery failed: Failed to recover registrar: Failed to perform fetch within "
                f"{timeout:g}secs ({self.log.replica.status} replica, "
                f"{self.log.ensemble_size} log replicas, quorum {self.config.quorum})",
                code=1,
            )
            return
        state = MasterState(
            self.master_id,
            disconnect_after=self.config.agent_disconnect_timeout,
            remove_after=self.config.agent_removal_timeout,
        )
        state.recover(registry)
        async with self.lock:
            self.committed_version = state.registry_version
            self.state = state
        log.info("recovered registry version %s", registry.get("version", 0))

    async def commit(self) -> None:
        """Append the registry to the log if it changed, and return once a quorum of
        replicas accepted it (src/master/registrar.cpp: a store that fails or outlasts
        --registry_store_timeout aborts the master). Callers hold `self.lock`."""
        assert self.state is not None
        if self.state.registry_version == self.committed_version:
            return
        registry = self.state.registry()
        timeout = self.config.registry_store_timeout
        try:
            await asyncio.wait_for(self.log.append(registry), timeout)
        except (TimeoutError, NoQuorum, Demoted) as exc:
            die(
                f"Registrar aborting: Failed to update registry: {exc or 'Failed to perform '}"
                f"{'' if exc else f'store within {timeout:g}secs'}",
                code=1,
            )
        self.committed_version = registry["version"]

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
