"""Scenario: the sync engine of a ZkMigration (phase 1, `orchestrator zk-sync run`, as the sync
controller runs it) replicates ensemble A to ensemble B under a random workload while the
engine is killed and frozen, cut from A or B or made lossy, and servers of both ensembles are
killed, frozen and partitioned (issue 20). Each server and the engine run in their own node.

Invariants: the engine never crash-loops (it exits on its own only when told to) and resumes
from its state file; once the faults and the writes stop, A and B hold the same tree, as read
by the chaos walker (plain reads of data, ACL and ephemeral flag on each side: not the engine's
digests), within the bound. Recovery after a fault is the time until a znode written to A
once the fault ended is read on B."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError

from sim.procs import SimProcess
from testenv import faults
from testenv.faults import Network
from tests.chaos.harness import (
    FaultKind,
    Record,
    Sampler,
    assert_clean,
    pid_getter,
    run_faults,
    seed,
    time_box,
    tree_difference,
    worker,
)
from tests.chaos.world import NodeZkEnsemble, Supervisor, crash_loops, exits_since, wait_until
from tests.fixtures.zk_sync import ACL_VARIANTS, RandomWorkload

pytestmark = pytest.mark.timeout(1800)
SCENARIO = "ZkMigration sync (phase 1)"
ROOT = "/chaos-sync"
REPO = Path(__file__).resolve().parents[2]


class EngineProcess(SimProcess):
    """`orchestrator zk-sync run` in a node, supervised like the sync controller's engine."""

    def popen_args(self) -> tuple[list[str], dict[str, str] | None, Path]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [*self.wrapper, sys.executable, "-m", "orchestrator_operator.cli", "zk-sync", "run"]
        return [*argv, *self.args], env, REPO


def tree(client: KazooClient, root: str) -> dict[str, tuple[bytes, bool]]:
    """The chaos walker with ACLs: (data + ACL, ephemeral?) per znode."""
    client.sync(root)
    out: dict[str, tuple[bytes, bool]] = {}
    pending = [root]
    while pending:
        path = pending.pop()
        try:
            acls, _ = client.get_acls(path)
            try:
                data, stat = client.get(path)
                children = client.get_children(path)
            except NoAuthError:
                data, stat, children = b"<no read>", client.exists(path), []
        except NoNodeError:
            continue
        if stat is None:
            continue
        acl = ";".join(sorted(f"{a.id.scheme}:{a.id.id}:{a.perms}" for a in acls))
        out[path] = (bytes(data) + b"|" + acl.encode(), stat.ephemeralOwner != 0)
        pending.extend(f"{path}/{c}" for c in children)
    return out


@pytest.fixture
def ensembles(tmp_path: Path) -> Iterator[tuple[Network, NodeZkEnsemble, NodeZkEnsemble]]:
    network = Network()
    a = NodeZkEnsemble(network, "zka", 3, tmp_path / "a")
    b = NodeZkEnsemble(network, "zkb", 3, tmp_path / "b")
    try:
        a.start()
        b.start()
        yield network, a, b
    finally:
        a.stop()
        b.stop()
        network.remove()


def test_sync_converges_after_faults(
    ensembles: tuple[Network, NodeZkEnsemble, NodeZkEnsemble], tmp_path: Path
) -> None:
    network, a, b = ensembles
    rng = random.Random(seed())
    record = Record(SCENARIO, seed())
    node = network.node("engine")
    engine = EngineProcess(
        "zk-sync",
        ["--source", a.connect_string, "--target", b.connect_string, "--path", ROOT,
         "--state-file", str(tmp_path / "state.json"), "--metrics-port", "0",
         "--reconcile-interval", "5", "--session-timeout", "4", "--log-level", "INFO"],
        tmp_path / "engine.log",
        wrapper=node.wrapper,
    )  # fmt: skip
    supervisor = Supervisor()
    # no ip:127.0.0.1 ACL (clients come from their nodes' addresses); the seed uses the first 3
    variants = [ACL_VARIANTS[0], ACL_VARIANTS[1], ACL_VARIANTS[0], ACL_VARIANTS[3]]
    work = RandomWorkload([a.connect_string], ROOT, rng, acl_variants=variants)
    ca = KazooClient(hosts=a.connect_string, timeout=10.0)
    cb = KazooClient(hosts=b.connect_string, timeout=10.0)
    lock = threading.Lock()
    try:
        ca.start(timeout=30)
        cb.start(timeout=30)
        work.seed(100)
        engine.start()
        supervisor.watch(engine)
        supervisor.start()
        wait_until(lambda: tree_difference(tree(ca, ROOT), tree(cb, ROOT)) is None, 120,
                   "the first copy")  # fmt: skip

        def writes(stop: threading.Event) -> None:
            with lock:
                work.run(10)
            stop.wait(0.2)

        def engine_pid() -> int:
            assert engine.popen is not None
            return int(engine.popen.pid)

        @contextlib.contextmanager
        def engine_killed() -> Iterator[None]:
            supervisor.killed_by_fault(engine.name)
            faults.kill(engine_pid())
            yield

        @contextlib.contextmanager
        def server_down(ensemble: NodeZkEnsemble, index: int) -> Iterator[None]:
            ensemble.kill_server(index)
            try:
                yield
            finally:
                ensemble.start_server(index, timeout=120)

        sides = {"A": a, "B": b}
        all_servers = [e.node_of(i) for e in (a, b) for i in range(3)]

        def fault(
            target: str, make: Callable[[], Any], hold: float
        ) -> Callable[[random.Random], tuple[str, Any, float]]:
            return lambda rng: (target, make, hold)

        def side_server(
            what: str, leader: bool, stop: bool
        ) -> Callable[[random.Random], tuple[str, Any, float]]:
            def make(rng: random.Random) -> tuple[str, Any, float]:
                ensemble = sides[what]
                index = ensemble.leader_index() if leader else None
                index = index if index is not None else rng.randrange(3)
                name = f"{ensemble.name}-{index}"
                if stop:
                    pid = ensemble.servers[index].pid
                    assert pid is not None
                    return name, lambda: faults.stopped(pid, 60), 6.0
                return name, lambda: server_down(ensemble, index), 3.0

            return make

        def cut_member(rng: random.Random) -> tuple[str, Any, float]:
            ensemble = sides[rng.choice("AB")]
            index = rng.randrange(3)
            me = ensemble.node_of(index)
            peers: list[faults.Node | str] = [ensemble.node_of(i) for i in range(3) if i != index]
            return me.name, lambda: faults.partition(me, peers, 60), 8.0

        a_nodes: list[faults.Node | str] = [a.node_of(i) for i in range(3)]
        b_nodes: list[faults.Node | str] = [b.node_of(i) for i in range(3)]
        kinds = [
            FaultKind("SIGKILL sync engine", fault("engine", engine_killed, 1.0)),
            FaultKind("SIGSTOP sync engine 6 s",
                      lambda rng: ("engine", lambda: faults.stopped(engine_pid(), 60), 6.0)),
            FaultKind("partition engine | ensemble B 8 s", fault(
                "engine", lambda: faults.partition(node, b_nodes, 60), 8.0)),
            FaultKind("partition engine | ensemble A 8 s", fault(
                "engine", lambda: faults.partition(node, a_nodes, 60), 8.0)),
            FaultKind("30% loss engine <-> both ensembles 8 s", fault(
                "engine", lambda: faults.loss(node, list(all_servers), 30, 60), 8.0)),
            FaultKind("SIGKILL leader of A", side_server("A", leader=True, stop=False)),
            FaultKind("SIGKILL member of B", side_server("B", leader=False, stop=False)),
            FaultKind("SIGSTOP leader of B 6 s", side_server("B", leader=True, stop=True)),
            FaultKind("partition a ZooKeeper member | its peers 8 s", cut_member),
        ]  # fmt: skip

        marker: list[str] = []

        def healthy() -> str | None:
            """Replication works again: a znode written to A once the fault ended is in B."""
            if not engine.running:
                return "the engine is not running"
            for name, ensemble in sides.items():
                serving = ensemble.serving()
                if len(serving) != 3:
                    return f"ensemble {name} serving on {sorted(serving)} only"
            if not marker:
                marker.append(ca.create(f"{ROOT}/marker-", b"m", sequence=True))
            cb.sync(marker[0])
            if cb.exists(marker[0]) is None:
                if ca.exists(marker[0]) is None:
                    # the random workload walks the whole root and deleted the marker on A
                    # before it was copied: it can never reach B, so write another
                    marker.clear()
                    return "the marker was deleted on A by the workload: writing another"
                return f"{marker[0]}, written to A after the fault, not in B yet"
            marker.clear()
            return None

        with (
            Sampler(
                record, {"sync engine never crash-loops": lambda: crash_loops(supervisor)}
            ) as sampler,
            worker("writes", writes),
        ):
            sampler.pids = {"zk-sync engine": pid_getter(engine)}
            run_faults(record, kinds, healthy, time_box(60), rng, recovery_bound=120)
            quiet = time.monotonic()
        with lock:
            work.close_sessions()
        began = time.monotonic()
        try:
            wait_until(lambda: tree_difference(tree(ca, ROOT), tree(cb, ROOT)) is None, 180,
                       "A and B equal")  # fmt: skip
            record.samples["converged after the faults (s)"] = round(time.monotonic() - began)
        except TimeoutError:
            record.violate(
                "trees equal once faults stop",
                f"A and B differ 180 s after the faults: "
                f"{tree_difference(tree(ca, ROOT), tree(cb, ROOT))}",
            )
        if exits_since(supervisor, quiet):
            record.violate("sync engine never crash-loops",
                           f"exits after the faults: {exits_since(supervisor, quiet)}")  # fmt: skip
        record.samples["engine restarts"] = supervisor.restarts.get(engine.name, 0)
        record.samples["workload operations"] = sum(work.counts.values())
        assert_clean(record)
    finally:
        supervisor.stop()
        engine.stop()
        work.close()
        for client in (ca, cb):
            with contextlib.suppress(Exception):
                client.stop()
                client.close()
