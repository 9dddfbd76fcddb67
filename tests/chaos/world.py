"""The systems the chaos scenarios break: ZooKeeper servers and simulated Mesos masters, agents
and Marathon each in their own node (testenv/faults.py), so a partition can cut any of them
from any other; a supervisor restarts what exits, as the kubelet restarts a pod's container."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from sim.contenders import detect
from sim.marathon import layout
from sim.procs import SimProcess
from testenv.faults import Network, Node
from testenv.zookeeper import (
    ZkEnsemble,
    ZkServer,
    four_letter_word,
    parse_mntr,
    parse_srvr_mode,
)

ZK_CLIENT_PORT, ZK_PEER_PORT, ZK_ELECTION_PORT = 2181, 2888, 3888


@dataclass
class NodeZkServer(ZkServer):
    host: str = "127.0.0.1"
    node: Node | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    def server_line(self) -> str:
        return (
            f"server.{self.myid}={self.host}:{self.peer_port}:{self.election_port}"
            f":participant;{self.host}:{self.client_port}"
        )


class NodeZkEnsemble(ZkEnsemble):
    """A ZkEnsemble whose server i runs in node `<name>-<i>` on the node's address."""

    def __init__(self, network: Network, name: str, size: int, base_dir: Path) -> None:
        super().__init__(size, base_dir, extra_config={"syncLimit": "3", "initLimit": "10"})
        self.network = network
        self.name = name

    def _layout(self) -> None:
        super()._layout()
        nodes = [self.network.node(f"{self.name}-{i}") for i in range(self.size)]
        self.servers = [
            NodeZkServer(
                index=s.index,
                myid=s.myid,
                client_port=ZK_CLIENT_PORT,
                peer_port=ZK_PEER_PORT,
                election_port=ZK_ELECTION_PORT,
                data_dir=s.data_dir,
                config_path=s.config_path,
                log_path=s.log_path,
                host=node.address,
                node=node,
            )
            for s, node in zip(self.servers, nodes, strict=True)
        ]
        members = "\n".join(s.server_line() for s in self.servers)
        for server in self.servers:
            body = "".join(f"{k}={v}\n" for k, v in self._base_config(server).items())
            server.config_path.write_text(body + members + "\n")

    def node_of(self, index: int) -> Node:
        server = self.servers[index]
        assert isinstance(server, NodeZkServer) and server.node is not None
        return server.node

    def _java_command(self, server: ZkServer) -> list[str]:
        assert isinstance(server, NodeZkServer) and server.node is not None
        return [*server.node.wrapper, *super()._java_command(server)]

    def four_letter_word(self, index: int, word: str, timeout: float = 5.0) -> str:
        server = self.servers[index]
        assert isinstance(server, NodeZkServer)
        return four_letter_word(server.host, server.client_port, word, timeout)

    def _wait_ruok(self, server: ZkServer, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive(server)
            with contextlib.suppress(OSError):
                if self.four_letter_word(server.index, "ruok", 2.0) == "imok":
                    return
            time.sleep(0.2)
        raise TimeoutError(f"ZooKeeper server {server.myid} did not answer ruok")

    def serving(self) -> dict[int, str]:
        """index -> leader|follower for every server that answers as a quorum member."""
        out: dict[int, str] = {}
        for server in self.servers:
            with contextlib.suppress(OSError):
                mode = parse_srvr_mode(self.four_letter_word(server.index, "srvr", 1.0))
                if mode in ("leader", "follower"):
                    out[server.index] = mode
        return out

    def zxids(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for server in self.servers:
            with contextlib.suppress(OSError, ValueError, KeyError):
                mntr = parse_mntr(self.four_letter_word(server.index, "mntr", 1.0))
                out[server.index] = int(mntr["zk_zxid"], 16) if "zk_zxid" in mntr else -1
        return out


class Supervisor:
    """Restarts every watched process that exited (a pod's restartPolicy: Always), after a
    short back-off; counts restarts, and exits that were not a fault's."""

    def __init__(self, backoff: float = 1.0) -> None:
        self.backoff = backoff
        self.watched: dict[str, SimProcess] = {}
        self.restarts: dict[str, int] = {}
        self.unexpected_exits: dict[str, list[tuple[float, int | None]]] = {}
        self.expected: set[str] = set()  # names a fault just killed
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)

    def watch(self, proc: SimProcess) -> None:
        with self.lock:
            self.watched[proc.name] = proc
            self.restarts.setdefault(proc.name, 0)

    def killed_by_fault(self, name: str) -> None:
        with self.lock:
            self.expected.add(name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            with self.lock:
                dead = [p for p in self.watched.values() if p.popen is not None and not p.running]
            for proc in dead:
                if self._stop.wait(self.backoff):
                    return
                with self.lock:
                    if proc.running:
                        continue
                    if proc.name in self.expected:
                        self.expected.discard(proc.name)
                    else:
                        exits = self.unexpected_exits.setdefault(proc.name, [])
                        exits.append((time.monotonic(), proc.returncode))
                    self.restarts[proc.name] += 1
                    proc.start()


class MesosWorld:
    """3 masters, `agents` agents and one Marathon, each in its node, on a NodeZkEnsemble."""

    def __init__(self, network: Network, zk: NodeZkEnsemble, base: Path, agents: int = 2) -> None:
        self.network, self.zk, self.base = network, zk, base
        self.mesos_path, self.marathon_path = "/chaos/mesos", "/chaos/marathon"
        hosts = ",".join(s.address for s in zk.servers)
        self.mesos_zk = f"zk://{hosts}{self.mesos_path}"
        self.supervisor = Supervisor()
        self.master_nodes = [network.node(f"master-{i}") for i in range(3)]
        self.agent_nodes = [network.node(f"agent-{j}") for j in range(agents)]
        self.marathon_node = network.node("marathon-0")
        logs = base / "logs"
        self.masters = [
            SimProcess(
                f"master-{i}",
                [
                    "master",
                    f"--zk={self.mesos_zk}",
                    f"--ip={n.address}",
                    "--port=5050",
                    "--quorum=2",
                    "--zk_session_timeout=4",
                    "--agent_removal_timeout=300",
                    f"--work_dir={base / f'master-{i}'}",
                    f"--hostname={n.address}",
                ],
                logs / f"master-{i}.log",
                wrapper=n.wrapper,
            )
            for i, n in enumerate(self.master_nodes)
        ]
        self.agents = [
            SimProcess(
                f"agent-{j}",
                [
                    "agent",
                    f"--zk={self.mesos_zk}",
                    f"--ip={n.address}",
                    "--port=5051",
                    f"--hostname=agent-{j}",
                    f"--work-dir={base / f'agent-{j}'}",
                    "--resources=cpus:4;mem:4096;disk:10240;ports:[31000-32000]",
                    "--recover=reconnect",
                ],
                logs / f"agent-{j}.log",
                wrapper=n.wrapper,
            )
            for j, n in enumerate(self.agent_nodes)
        ]
        m = self.marathon_node
        self.marathon = SimProcess(
            "marathon-0",
            [
                "marathon",
                f"--master={self.mesos_zk}",
                f"--zk=zk://{hosts}{self.marathon_path}",
                f"--ip={m.address}",
                "--port=8080",
                f"--hostname={m.address}",
                "--zk_session_timeout=4000",
            ],
            logs / "marathon-0.log",
            wrapper=m.wrapper,
        )
        self.zk_client = KazooClient(hosts=hosts, timeout=10.0)

    @property
    def processes(self) -> list[SimProcess]:
        return [*self.masters, *self.agents, self.marathon]

    def master_urls(self) -> list[str]:
        return [f"http://{n.address}:5050" for n in self.master_nodes]

    @property
    def marathon_url(self) -> str:
        return f"http://{self.marathon_node.address}:8080"

    def start(self) -> None:
        self.zk_client.start(timeout=30)
        for proc in self.processes:
            proc.start()
            self.supervisor.watch(proc)
        self.supervisor.start()

    def stop(self) -> None:
        self.supervisor.stop()
        for proc in self.processes:
            proc.signal(signal.SIGCONT)
            proc.stop(grace=5.0)
        for agent in self.agents:
            agent.kill_tasks()
        with contextlib.suppress(Exception):
            self.zk_client.stop()
            self.zk_client.close()

    def leader(self) -> dict[str, Any] | None:
        try:
            return detect(self.zk_client, self.mesos_path).leader
        except Exception:
            return None

    def leader_index(self) -> int | None:
        info = self.leader()
        if info is None:
            return None
        ip = info.get("address", {}).get("ip") or info.get("hostname")
        addresses = [n.address for n in self.master_nodes]
        return addresses.index(ip) if ip in addresses else None

    def marathon_leader(self) -> bool:
        try:
            latch = f"{self.marathon_path}/{layout.LATCH_DIR}"
            return layout.latch_leader(list(self.zk_client.get_children(latch))) is not None
        except NoNodeError:
            return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # a probe of a system under faults may fail: try again
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"not within {timeout:.0f} s: {what} (last error: {last!r})")


# Marathon follows "let it crash": it exits to be restarted by its supervisor when it cannot
# reach ZooKeeper (100), loses its ZooKeeper connection (101) or its leadership (103)
# (Marathon 1.11 docs/docs/exit-codes.md; core/base/CrashStrategy.scala). Under ZooKeeper and
# master faults those exits are its design, however often the faults come; any other code,
# and any exit once the faults have stopped (`exits_since`), is still a failure.
LET_IT_CRASH: dict[str, frozenset[int]] = {"marathon": frozenset({100, 101, 103})}


def _designed(name: str, code: int | None, designed: dict[str, frozenset[int]]) -> bool:
    return any(name.startswith(prefix) and code in codes for prefix, codes in designed.items())


def crash_loops(
    supervisor: Supervisor,
    window: float = 60.0,
    most: int = 5,
    designed: dict[str, frozenset[int]] | None = None,
) -> str | None:
    """A process that exited on its own (non-zero: a clean exit 0 is a shutdown it was told
    to do) more than `most` times in the last `window` seconds is crash-looping; exits a
    program is designed to make under faults (`designed`: name prefix -> codes) do not count."""
    now = time.monotonic()
    with supervisor.lock:
        bad = {
            name: [
                code
                for at, code in exits
                if code != 0 and now - at <= window and not _designed(name, code, designed or {})
            ]
            for name, exits in supervisor.unexpected_exits.items()
        }
    bad = {name: codes for name, codes in bad.items() if len(codes) > most}
    return None if not bad else f"exited more than {most} times in {window:.0f} s: {bad}"


def designed_exits(supervisor: Supervisor, designed: dict[str, frozenset[int]]) -> int:
    """How many exits were a program's designed reaction to a fault (for the report)."""
    with supervisor.lock:
        return sum(
            1
            for name, exits in supervisor.unexpected_exits.items()
            for _, code in exits
            if _designed(name, code, designed)
        )


def exits_since(supervisor: Supervisor, since: float) -> dict[str, list[int | None]]:
    with supervisor.lock:
        found = {
            name: [code for at, code in exits if at >= since and code != 0]
            for name, exits in supervisor.unexpected_exits.items()
        }
    return {name: codes for name, codes in found.items() if codes}
