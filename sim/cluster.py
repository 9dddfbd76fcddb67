"""`SimCluster`: N masters, M agents and K Marathons as subprocesses against a ZooKeeper.

    with SimCluster(zk.connect_string, masters=3, agents=2, marathons=2) as cluster:
        leader = cluster.leader()                      # MasterInfo read from ZooKeeper
        cluster.kill_master(cluster.leader_index())    # SIGKILL: a crash
        cluster.wait_for_leader(exclude=leader["id"])
        httpx.post(cluster.marathon_url() + "/v2/apps", json={...})

Every cluster works under its own ZooKeeper namespace (`/sim-<id>/mesos` and
`/sim-<id>/marathon` unless given), so clusters can share one ensemble.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from kazoo.client import KazooClient

from sim import logaudit, masterinfo
from sim.contenders import detect
from sim.marathon import layout
from sim.procs import SimProcess, free_ports, wait_until
from sim.tasks import RUNNING


class SimCluster:
    def __init__(
        self,
        zk_hosts: str,
        *,
        masters: int = 3,
        agents: int = 2,
        marathons: int = 1,
        quorum: int | None = None,
        namespace: str | None = None,
        base_dir: Path | None = None,
        zk_session_timeout: float = 4.0,
        agent_resources: str = "cpus:4;mem:4096;disk:10240",
        agent_removal_timeout: float = 75.0,
        start_timeout: float = 60.0,
        zk_credentials: str | None = None,
        master_flags: list[str] | None = None,
        agent_flags: list[str] | None = None,
    ) -> None:
        """`zk_credentials` ("user:password"): masters and agents get `--zk=file://<a 0600
        file>` holding `zk://user:password@hosts/path` (never in argv) and authenticate with
        digest; so does the cluster's own client. `master_flags`/`agent_flags` are appended
        to every master's/agent's command line (e.g. `--authenticate_agents`)."""
        self.zk_hosts = zk_hosts
        self.zk_credentials = zk_credentials
        self.master_flags = list(master_flags or [])
        self.agent_flags = list(agent_flags or [])
        ns = namespace if namespace is not None else f"/sim-{uuid.uuid4().hex[:8]}"
        self.mesos_path = f"{ns}/mesos"
        self.marathon_path = f"{ns}/marathon"
        self.quorum = quorum if quorum is not None else masters // 2 + 1
        self.zk_session_timeout = zk_session_timeout
        self.agent_resources = agent_resources
        self.agent_removal_timeout = agent_removal_timeout
        self.start_timeout = start_timeout
        self._owns_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="sim-cluster-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.mesos_zk_flag = self.mesos_zk
        if zk_credentials is not None:
            url_file = self.base_dir / "mesos-zk.url"
            fd = os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"zk://{zk_credentials}@{zk_hosts}{self.mesos_path}\n")
            self.mesos_zk_flag = f"file://{url_file}"
        ports = free_ports(masters + agents + marathons)
        self.master_ports = ports[:masters]
        self.agent_ports = ports[masters : masters + agents]
        self.marathon_ports = ports[masters + agents :]
        self.masters = [self._master(i) for i in range(masters)]
        self.agents = [self._agent(j) for j in range(agents)]
        self.marathons = [self._marathon(k) for k in range(marathons)]
        self._zk: KazooClient | None = None
        self.http = httpx.Client(timeout=5.0, follow_redirects=True)

    # ------------------------------------------------------------------ urls
    @property
    def mesos_zk(self) -> str:
        return f"zk://{self.zk_hosts}{self.mesos_path}"

    @property
    def marathon_zk(self) -> str:
        return f"zk://{self.zk_hosts}{self.marathon_path}"

    def master_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.master_ports[i]}"

    def agent_url(self, j: int) -> str:
        return f"http://127.0.0.1:{self.agent_ports[j]}"

    def agent_hostname(self, j: int) -> str:
        return f"sim-agent-{j}"

    def agent_machine(self, j: int) -> dict[str, str]:
        """The agent's MachineID for the maintenance endpoints."""
        return {"hostname": self.agent_hostname(j), "ip": "127.0.0.1"}

    def marathon_instance_url(self, k: int) -> str:
        return f"http://127.0.0.1:{self.marathon_ports[k]}"

    # ------------------------------------------------------------------ processes
    def _master(self, i: int) -> SimProcess:
        args = [
            "master",
            f"--zk={self.mesos_zk_flag}",
            f"--port={self.master_ports[i]}",
            f"--quorum={self.quorum}",
            f"--zk_session_timeout={self.zk_session_timeout}",
            f"--agent_removal_timeout={self.agent_removal_timeout}",
            f"--work_dir={self.base_dir / f'master-{i}'}",
            *self.master_flags,
        ]
        return SimProcess(f"master-{i}", args, self.base_dir / "logs" / f"master-{i}.log")

    def _agent(self, j: int) -> SimProcess:
        args = [
            "agent",
            f"--zk={self.mesos_zk_flag}",
            f"--port={self.agent_ports[j]}",
            f"--hostname={self.agent_hostname(j)}",
            f"--work-dir={self.base_dir / f'agent-{j}'}",
            f"--resources={self.agent_resources}",
            "--recover=reconnect",
            *self.agent_flags,
        ]
        return SimProcess(f"agent-{j}", args, self.base_dir / "logs" / f"agent-{j}.log")

    def _marathon(self, k: int) -> SimProcess:
        args = [
            "marathon",
            f"--master={self.mesos_zk}",
            f"--zk={self.marathon_zk}",
            f"--port={self.marathon_ports[k]}",
            # Marathon's --zk_session_timeout is in milliseconds (ZookeeperConf.scala)
            f"--zk_session_timeout={round(self.zk_session_timeout * 1000)}",
        ]
        return SimProcess(f"marathon-{k}", args, self.base_dir / "logs" / f"marathon-{k}.log")

    def start(self, masters: list[int] | None = None) -> SimCluster:
        """Start everything and wait until it is up; `masters`: start only those masters
        and the rest (agents, Marathons) without waiting for anything."""
        try:
            auth = [("digest", self.zk_credentials)] if self.zk_credentials else None
            self._zk = KazooClient(hosts=self.zk_hosts, timeout=10.0, auth_data=auth)
            self._zk.start(timeout=30)
            if masters is not None:
                for i in masters:
                    self.masters[i].start()
                for proc in self.agents + self.marathons:
                    proc.start()
                return self
            for proc in self.masters + self.agents + self.marathons:
                proc.start()
            if self.masters:
                self.wait_for_leader(timeout=self.start_timeout)
                self.wait_for_agents(len(self.agents), timeout=self.start_timeout)
            if self.marathons:
                self.wait_for_marathon(timeout=self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in self.masters:
            proc.signal(signal.SIGCONT)  # a paused master could not handle SIGTERM
        for proc in self.marathons + self.agents + self.masters:
            proc.signal(signal.SIGTERM)
        for proc in self.marathons + self.agents + self.masters:
            proc.stop(grace=5.0)
        for proc in self.agents:  # their tasks outlive them on purpose (--recover=reconnect)
            proc.kill_tasks()
        self.http.close()
        if self._zk is not None:
            with contextlib.suppress(Exception):
                self._zk.stop()
                self._zk.close()
            self._zk = None
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def kill_master(self, i: int) -> None:
        self.masters[i].kill()

    def stop_master(self, i: int) -> None:
        self.masters[i].stop()

    def start_master(self, i: int) -> None:
        self.masters[i].start()

    def pause_master(self, i: int) -> None:
        """SIGSTOP: the master neither answers nor writes (its ZooKeeper session lives
        until the session timeout)."""
        self.masters[i].signal(signal.SIGSTOP)

    def resume_master(self, i: int) -> None:
        self.masters[i].signal(signal.SIGCONT)

    def master_urls(self) -> list[str]:
        return [self.master_url(i) for i in range(len(self.masters))]

    def log_audits(self) -> list[dict[str, Any]]:
        """Every running master's replicated-log audit (`GET /sim/v1/log`)."""
        return logaudit.fetch_audits(self.master_urls())

    def lost_committed_writes(
        self, audits: list[dict[str, Any]] | None = None
    ) -> list[logaudit.LostWrite]:
        """Registry writes committed by one leader and missing from a later leader's
        recovered log (see sim/logaudit.py); `audits` as sampled earlier, else now."""
        return logaudit.lost_committed_writes(self.log_audits() if audits is None else audits)

    def leaders_at_once(self) -> list[str]:
        """Masters that each consider themselves the recovered leader right now."""
        return logaudit.leaders_at_once(self.master_urls())

    def kill_agent(self, j: int) -> None:
        self.agents[j].kill()

    def start_agent(self, j: int) -> None:
        self.agents[j].start()

    def restart_agent(self, j: int) -> None:
        """Crash the agent (SIGKILL) and start it again on the same work dir."""
        self.agents[j].kill()
        self.agents[j].start()

    def kill_marathon(self, k: int) -> None:
        self.marathons[k].kill()

    def start_marathon(self, k: int) -> None:
        self.marathons[k].start()

    def logs(self) -> str:
        procs = self.masters + self.agents + self.marathons
        return "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in procs)

    # ------------------------------------------------------------------ queries
    @property
    def zk(self) -> KazooClient:
        if self._zk is None:
            raise RuntimeError("the cluster is not started")
        return self._zk

    def leader(self) -> dict[str, Any] | None:
        """The leading master's MasterInfo, found as Mesos clients find it."""
        return detect(self.zk, self.mesos_path).leader

    def leader_index(self) -> int | None:
        info = self.leader()
        if info is None:
            return None
        port = masterinfo.http_address(info)[1]
        return self.master_ports.index(port) if port in self.master_ports else None

    def leader_url(self) -> str:
        info = self.leader()
        if info is None:
            raise RuntimeError("no leading master")
        return masterinfo.base_url(info)

    def get(self, url: str) -> Any:
        response = self.http.get(url)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.get(self.leader_url() + "/master/state")
        return state

    def metrics(self) -> dict[str, float]:
        snapshot: dict[str, float] = self.get(self.leader_url() + "/metrics/snapshot")
        return snapshot

    def tasks(self, state: str | None = None) -> list[dict[str, Any]]:
        """Live tasks in the leading master's `/master/state`, optionally of one state."""
        tasks = [t for fw in self.state()["frameworks"] for t in fw["tasks"]]
        return [t for t in tasks if state is None or t["state"] == state]

    def marathon_leader(self) -> str | None:
        latch = f"{self.marathon_path}/{layout.LATCH_DIR}"
        try:
            name = layout.latch_leader(list(self.zk.get_children(latch)))
            if name is None:
                return None
            data, _ = self.zk.get(f"{latch}/{name}")
        except Exception:
            return None
        return bytes(data).decode()

    def marathon_index(self) -> int | None:
        leader = self.marathon_leader()
        if leader is None:
            return None
        port = int(leader.rsplit(":", 1)[1])
        return self.marathon_ports.index(port) if port in self.marathon_ports else None

    def marathon_url(self) -> str:
        """The leading Marathon's URL (any Marathon proxies to it)."""
        index = self.marathon_index()
        if index is None:
            raise RuntimeError("no leading Marathon")
        return self.marathon_instance_url(index)

    def framework_id(self) -> str | None:
        """Marathon's framework id as stored in ZooKeeper (protobuf FrameworkID)."""
        key = layout.FRAMEWORK_ID_KEY
        path = f"{self.marathon_path}/state/framework-id/{layout.bucket(key)}/{key}"
        try:
            data, _ = self.zk.get(path)
        except Exception:
            return None
        return layout.decode_framework_id(bytes(data))

    # ------------------------------------------------------------------ waits
    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
        try:
            wait_until(predicate, timeout, what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.logs()}") from None

    def wait_for_leader(self, exclude: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until a master other than `exclude` (a master id) leads and has recovered."""

        def elected() -> bool:
            info = self.leader()
            if info is None or info["id"] == exclude:
                return False
            snap = self.get(masterinfo.base_url(info) + "/metrics/snapshot")
            # master/elected is 1 from the ZooKeeper election on; the registry is
            # recovered once registrar/registry_size_bytes is reported.
            return bool(snap["master/elected"]) and "registrar/registry_size_bytes" in snap

        self.wait_for(elected, timeout, "an elected master")
        info = self.leader()
        assert info is not None
        return info

    def wait_for_agents(self, count: int, timeout: float = 30.0) -> None:
        def registered() -> bool:
            snap = self.metrics()
            return snap["master/slaves_active"] >= count

        self.wait_for(registered, timeout, f"{count} active agents")

    def wait_for_marathon(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            info = self.get(self.marathon_url() + "/v2/info")
            return bool(info["elected"] and info["frameworkId"])

        self.wait_for(ready, timeout, "an elected Marathon registered as a framework")

    def wait_for_tasks(
        self, app_id: str, count: int, timeout: float = 30.0, state: str = RUNNING
    ) -> list[dict[str, Any]]:
        """Wait until Marathon reports exactly `count` tasks of the app in `state`."""
        found: list[dict[str, Any]] = []

        def done() -> bool:
            nonlocal found
            tasks = self.get(f"{self.marathon_url()}/v2/apps/{app_id.strip('/')}/tasks")["tasks"]
            found = [t for t in tasks if t["state"] == state]
            return len(found) == count and len(tasks) == count

        self.wait_for(done, timeout, f"{count} {state} tasks of {app_id}")
        return found
