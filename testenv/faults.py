"""Faults for chaos tests: partitions, packet loss and slow links between processes, SIGKILL and
SIGSTOP of any process, a full disk, an API server restart. Each is bounded in time and undone
by itself (issue 20).

Where the faults live. Network faults need their own network namespaces; this module never
touches the machine's own interfaces or firewall. The test process first enters a *private
world* (`enter_private_world()`: new network and mount namespaces, made before any thread
starts; `make chaos` does it through tests/chaos/conftest.py). In that world:

- the test process's namespace is the *hub*: a bridge `chaos0` with 10.99.0.1/24 (HUB) and
  its own loopback, where everything not given a node runs (kube-apiserver, samplers, ...);
- each `Node` is a named network namespace (`/run/netns` is a tmpfs of the world, so the
  names are invisible outside it) with a veth into the bridge and one address 10.99.0.N;
  a process runs in it through `node.wrapper` (`ip netns exec <name>`);
- `partition`, `loss` and `slow` put nftables rules (table `inet chaos`) or a tbf qdisc inside
  the node's namespace only.

When the test process dies, even by SIGKILL, the world goes with it: the namespaces hold only
processes started with PR_SET_PDEATHSIG (testenv/processes.py, sim/procs.py), and nothing was
mounted or added outside. Within a live test, every fault registers its undo with the
`WATCHDOG`, which runs it at the fault's deadline even if the test thread hangs, and at exit.

This kernel has no `sch_netem` module: a *delay* is a rate-limited link (tbf), i.e. queueing
delay that grows with the traffic, not a fixed added latency; `loss` is nftables' random drop.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import heapq
import itertools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
HUB = "10.99.0.1"
SUBNET = "10.99.0"
BRIDGE = "chaos0"
WORLD_MARKER = "ORCHESTRATOR_CHAOS_WORLD"
IP = shutil.which("ip") or "/usr/sbin/ip"
NFT = shutil.which("nft") or "/usr/sbin/nft"
TC = shutil.which("tc") or "/usr/sbin/tc"
MAX_FAULT_SECONDS = 600.0


class FaultError(RuntimeError):
    """A fault could not be set up or undone."""


def _run(*argv: str, input: str | None = None) -> str:
    done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise FaultError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# ---------------------------------------------------------------------------------- world
def _netns_inode(pid: str) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def in_private_world() -> bool:
    """True once `enter_private_world()` ran in this process or an ancestor."""
    return os.environ.get(WORLD_MARKER) == str(_netns_inode("self"))


def enter_private_world() -> None:
    """Move this process (which must have no other thread yet) into new network and mount
    namespaces: loopback up, `/run/netns` a private tmpfs, the bridge with HUB. Root only."""
    if in_private_world():
        return
    if threading.active_count() != 1:
        raise FaultError("enter_private_world() must run before any thread starts")
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
        errno = ctypes.get_errno()
        raise FaultError(f"unshare(NEWNET|NEWNS) failed: {os.strerror(errno)} (root needed)")
    _run("mount", "--make-rprivate", "/")
    Path("/run/netns").mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "chaos-netns", "/run/netns")
    _run(IP, "link", "set", "lo", "up")
    _run(IP, "link", "add", BRIDGE, "type", "bridge")
    _run(IP, "addr", "add", f"{HUB}/24", "dev", BRIDGE)
    _run(IP, "link", "set", BRIDGE, "up")
    os.environ[WORLD_MARKER] = str(_netns_inode("self"))


def _require_world() -> None:
    if not in_private_world():
        raise FaultError(
            "network faults run only inside the chaos world (enter_private_world(); "
            "`make chaos` or tests/chaos/conftest.py does it)"
        )


# ------------------------------------------------------------------------------- watchdog
class Watchdog:
    """Runs each registered undo at its deadline (a hung test still heals) and every pending
    one at interpreter exit. An undo runs at most once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int, str]] = []
        self._undos: dict[int, tuple[str, Callable[[], None]]] = {}
        self._ids = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.expired: list[str] = []  # faults undone by the deadline, not by their test

    def register(self, what: str, seconds: float, undo: Callable[[], None]) -> int:
        if not 0 < seconds <= MAX_FAULT_SECONDS:
            raise ValueError(f"a fault lasts 0 < seconds <= {MAX_FAULT_SECONDS}, got {seconds}")
        with self._lock:
            token = next(self._ids)
            self._undos[token] = (what, undo)
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, what))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="fault-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return token

    def undo(self, token: int) -> None:
        with self._lock:
            entry = self._undos.pop(token, None)
        if entry is not None:
            entry[1]()

    def pending(self) -> list[str]:
        with self._lock:
            return [what for what, _ in self._undos.values()]

    def undo_all(self) -> None:
        with self._lock:
            entries = list(self._undos.values())
            self._undos.clear()
        for _, undo in entries:
            with contextlib.suppress(Exception):
                undo()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][1] not in self._undos:
                    heapq.heappop(self._heap)
                timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                if timeout is None or timeout > 0:
                    self._wake.wait(timeout)
                    continue
                _, token, what = heapq.heappop(self._heap)
                entry = self._undos.pop(token, None)
                if entry is not None:
                    self.expired.append(what)
            if entry is not None:
                with contextlib.suppress(Exception):
                    entry[1]()


WATCHDOG = Watchdog()
atexit.register(WATCHDOG.undo_all)


@contextlib.contextmanager
def bounded(
    what: str, seconds: float, do: Callable[[], None], undo: Callable[[], None]
) -> Iterator[None]:
    """`do` now; `undo` when the block ends or `seconds` have passed, whichever is first
    (and at once when `do` fails half-way)."""
    try:
        do()
    except BaseException:
        with contextlib.suppress(Exception):
            undo()
        raise
    token = WATCHDOG.register(what, seconds, undo)
    try:
        yield
    finally:
        WATCHDOG.undo(token)


# ---------------------------------------------------------------------------------- nodes
@dataclass
class Node:
    """A network namespace of the world with one address on the bridge."""

    name: str
    index: int
    address: str
    netns: str

    @property
    def wrapper(self) -> list[str]:
        """Prefix a command with this to run it in the node (`ip netns exec` execs it: the
        pid is the command's)."""
        return [IP, "netns", "exec", self.netns]

    def run(self, *argv: str, input: str | None = None) -> str:
        return _run(*self.wrapper, *argv, input=input)


_NODE_INDEXES = itertools.count(2)


@dataclass
class Network:
    """Nodes on the world's bridge; the hub (this process) is HUB."""

    nodes: dict[str, Node] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        _require_world()
        if name in self.nodes:
            return self.nodes[name]
        index = next(_NODE_INDEXES)  # never reused: a deleted namespace goes away lazily
        if index > 250:
            raise FaultError("at most 249 nodes per world")
        netns = f"chaos-{index}"
        host_end = f"cv{index}"
        _run(IP, "netns", "add", netns)
        _run(IP, "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _run(IP, "link", "set", host_end, "master", BRIDGE, "up")
        node = Node(name, index, f"{SUBNET}.{index}", netns)
        node.run(IP, "link", "set", "lo", "up")
        node.run(IP, "addr", "add", f"{node.address}/24", "dev", "eth0")
        node.run(IP, "link", "set", "eth0", "up")
        self.nodes[name] = node
        return node

    def remove(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(FaultError):
                _run(IP, "netns", "del", node.netns)
        self.nodes.clear()


def _addresses(peers: list[Node | str]) -> str:
    return ", ".join(p.address if isinstance(p, Node) else p for p in peers)


def _nft_table(node: Node, name: str, rules: list[str]) -> Callable[[], None]:
    body = "\n".join(
        [
            f"table inet {name} {{",
            "  chain input { type filter hook input priority -10; policy accept;",
            *[f"    {r.replace('@dir', 'saddr')}" for r in rules],
            "  }",
            "  chain output { type filter hook output priority -10; policy accept;",
            *[f"    {r.replace('@dir', 'daddr')}" for r in rules],
            "  }",
            "}",
        ]
    )
    node.run(NFT, "-f", "-", input=body + "\n")

    def undo() -> None:
        node.run(NFT, "delete", "table", "inet", name)

    return undo


_TABLES = itertools.count()


@contextlib.contextmanager
def partition(node: Node, peers: list[Node | str], seconds: float) -> Iterator[None]:
    """No packet between `node` and any of `peers` (nodes or addresses, HUB for the hub)
    in either direction; established connections stall as a cable cut would."""
    name = f"chaos_part_{next(_TABLES)}"
    holder: list[Callable[[], None]] = []
    rules = [f"ip @dir {{ {_addresses(peers)} }} drop"]
    with bounded(
        f"partition {node.name} | {_addresses(peers)}",
        seconds,
        lambda: holder.append(_nft_table(node, name, rules)),
        lambda: holder[0](),
    ):
        yield


@contextlib.contextmanager
def loss(node: Node, peers: list[Node | str], percent: int, seconds: float) -> Iterator[None]:
    """Drop `percent` % of the packets between `node` and `peers`, each way, at random."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be 1..100, got {percent}")
    name = f"chaos_loss_{next(_TABLES)}"
    holder: list[Callable[[], None]] = []
    rules = [f"ip @dir {{ {_addresses(peers)} }} numgen random mod 100 <= {percent - 1} drop"]
    with bounded(
        f"loss {percent}% {node.name} | {_addresses(peers)}",
        seconds,
        lambda: holder.append(_nft_table(node, name, rules)),
        lambda: holder[0](),
    ):
        yield


@contextlib.contextmanager
def slow(node: Node, kbit: int, seconds: float) -> Iterator[None]:
    """Everything the node sends goes through a `kbit` kbit/s token bucket (tbf): the delay
    is the queue's, so it grows with the traffic (no netem in this kernel)."""
    if not 8 <= kbit <= 10_000_000:
        raise ValueError(f"kbit must be 8..10000000, got {kbit}")

    def do() -> None:
        node.run(TC, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", f"{kbit}kbit",
                 "burst", "16kb", "latency", "2s")  # fmt: skip

    def undo() -> None:
        node.run(TC, "qdisc", "del", "dev", "eth0", "root")

    with bounded(f"slow {node.name} {kbit}kbit", seconds, do, undo):
        yield


def rules_in(node: Node) -> str:
    """The node's nftables ruleset and qdiscs (tests check a fault left nothing)."""
    return node.run(NFT, "list", "ruleset") + node.run(TC, "qdisc", "show", "dev", "eth0")


# ------------------------------------------------------------------------------ processes
class HasPid(Protocol):
    @property
    def pid(self) -> int | None: ...


def pid_of(target: int | HasPid) -> int:
    pid = target if isinstance(target, int) else target.pid
    if pid is None or pid <= 0:  # never 0 or -1: kill(2) would signal our group or everyone
        raise FaultError(f"{target!r} has no process")
    return pid


def kill(target: int | HasPid) -> None:
    """SIGKILL: a crash, no cleanup (whoever supervises it restarts it)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid_of(target), signal.SIGKILL)


@contextlib.contextmanager
def stopped(target: int | HasPid, seconds: float) -> Iterator[None]:
    """SIGSTOP for the block (at most `seconds`), SIGCONT after: a long GC pause, a frozen VM."""
    pid = pid_of(target)

    def send(sig: signal.Signals) -> Callable[[], None]:
        def go() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

        return go

    with bounded(f"SIGSTOP pid {pid}", seconds, send(signal.SIGSTOP), send(signal.SIGCONT)):
        yield


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state (R, S, T for stopped, Z...), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def resident_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# ----------------------------------------------------------------------------------- disk
@contextlib.contextmanager
def small_tmpfs(path: Path, megabytes: int) -> Iterator[Path]:
    """A size-limited tmpfs at `path` for the block (a ZooKeeper data directory on a disk
    that can fill). Only inside the world: the mount is in its private mount namespace."""
    _require_world()
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "chaos-disk", str(path))
    try:
        yield path
    finally:
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def full_disk(directory: Path, seconds: float, leave_bytes: int = 0) -> Iterator[None]:
    """Fill the file system of `directory` (a `small_tmpfs`) until writes fail with ENOSPC;
    the filler is removed when the block ends or `seconds` have passed."""
    filler = directory / ".chaos-filler"

    def do() -> None:
        chunk = b"\0" * (1 << 20)
        # Unbuffered: the process whose disk this is keeps writing too, so the last write
        # may find less room than was measured; it fails here, with nothing left in a buffer
        # to fail again (and raise) when the filler is closed.
        with filler.open("wb", buffering=0) as out:
            while True:
                free = shutil.disk_usage(directory).free
                if free <= leave_bytes:
                    break
                try:
                    out.write(chunk[: max(1, min(len(chunk), free - leave_bytes))])
                except OSError:
                    break

    def undo() -> None:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()

    with bounded(f"full disk {directory}", seconds, do, undo):
        yield


# ---------------------------------------------------------------------------- API server
class Restartable(Protocol):
    def stop(self, timeout: float = 15) -> None: ...
    def start(self) -> None: ...
    def running(self) -> bool: ...


def restart_process(process: Restartable, down_seconds: float = 0.0) -> None:
    """Stop a testenv ManagedProcess (SIGTERM, then SIGKILL) and start it again after
    `down_seconds`: e.g. the kube-apiserver (`KubeTestEnv.processes`)."""
    process.stop(timeout=15)
    if down_seconds > 0:
        time.sleep(down_seconds)
    process.start()
