"""Scenario: the operator scales a real ZooKeeper ensemble 3 -> 5 -> 3 -> 5 ... (its
zk_scale.scale_step, driven as its timer does, the servers standing in for the StatefulSet's
pods as in tests/integration/test_zk_scale.py) while members are SIGKILLed (and restarted,
as the kubelet would) and SIGSTOPped, the leader included (issue 20).

Invariants, sampled: the ensemble is never below quorum by the operator's hand (serving
voters plus the members a fault holds always reach a majority of the current voters); a
client's acknowledged writes are never lost; once the faults stop, every member holds the
same tree (read by the chaos walker on each member directly)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from orchestrator_operator.operator.mesoscluster.zk_scale import kazoo_reconfigure, scale_step
from orchestrator_operator.operator.mesoscluster.zk_scale_plan import Wait, parse_config
from testenv import faults
from testenv.zookeeper import ZkEnsemble
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
    zk_tree,
)
from tests.chaos.world import wait_until
from tests.integration.test_zk_scale import SUPER_DIGEST, SUPER_PASSWORD, ProcessFleet

pytestmark = pytest.mark.timeout(1800)
SCENARIO = "ZooKeeper scale 3 -> 5 -> 3"


class LockedFleet(ProcessFleet):
    """The stand-in StatefulSet; its changes and the kubelet's restarts take turns."""

    def __init__(self, ensemble: ZkEnsemble) -> None:
        super().__init__(ensemble)
        self.lock = threading.RLock()

    def scale(self, replicas: int) -> None:
        with self.lock:
            super().scale(replicas)


@pytest.fixture
def ensemble(tmp_path: Path) -> Iterator[ZkEnsemble]:
    zk = ZkEnsemble(
        3, tmp_path / "zk", extra_config={"DigestAuthenticationProvider.superDigest": SUPER_DIGEST}
    )
    zk.start()
    try:
        yield zk
    finally:
        zk.stop()


def voters(client: Any) -> set[int]:
    client.sync("/zookeeper/config")
    data, _ = client.get("/zookeeper/config")
    return set(parse_config(data.decode()).voters)


def test_scaling_under_kills_and_pauses(ensemble: ZkEnsemble) -> None:
    rng = random.Random(seed())
    record = Record(SCENARIO, seed())
    fleet = LockedFleet(ensemble)
    stable = ",".join(s.address for s in ensemble.servers[:3])
    reconfigure = kazoo_reconfigure(stable, ("digest", f"super:{SUPER_PASSWORD}"))
    operator = KazooClient(hosts=stable, timeout=10.0)
    operator.start(timeout=30)
    app = KazooClient(hosts=stable, timeout=10.0)
    app.start(timeout=30)
    app.ensure_path("/chaos")
    held: set[int] = set()  # members a fault holds (1-based myid), until they serve again
    acknowledged: list[str] = []
    target = [5]
    sizes: list[int] = []

    def operator_step(stop: threading.Event) -> None:
        result = scale_step(
            operator, fleet, target[0],
            lambda i: ensemble.servers[i - 1].server_line(), reconfigure,
        )  # fmt: skip
        if result.done:
            sizes.append(target[0])
            target[0] = 3 if target[0] == 5 else 5
        stop.wait(0.3 if isinstance(result.action, Wait) else 0.2)

    killing: set[int] = set()  # indexes a SIGKILL fault restarts itself
    own_exits: list[tuple[float, int, int | None]] = []  # (when, myid, exit code)

    def kubelet(stop: threading.Event) -> None:
        """A member that exited on its own (no fault killed it) is started again, as the
        kubelet restarts a pod's container, by the pod's start logic (ProcessFleet.scale):
        its own dynamic configuration if that still lists it, else it joins afresh."""
        with fleet.lock:
            for i in range(fleet.count):
                server = ensemble.servers[i]
                if server.running or i in killing or server.process is None:
                    continue
                own_exits.append((time.monotonic(), i + 1, server.process.returncode))
                with contextlib.suppress(Exception):
                    fleet.start_pod(i, timeout=60)
        stop.wait(1.0)

    def no_crash_loop() -> str | None:
        recent = [(myid, code) for at, myid, code in own_exits if time.monotonic() - at < 60]
        return None if len(recent) <= 5 else f"members exited on their own: {recent}"

    def writer(stop: threading.Event) -> None:
        with contextlib.suppress(Exception):
            path = app.create("/chaos/w-", b"x", sequence=True)
            acknowledged.append(path)
        stop.wait(0.05)

    def serving_voters() -> tuple[set[int], set[int]]:
        current = voters(operator)
        serving = {
            myid for myid in current
            if myid <= len(ensemble.servers)
            and ensemble.server_state(myid - 1) in ("leader", "follower")
        }  # fmt: skip
        return current, serving

    def quorum() -> str | None:
        current, serving = serving_voters()
        majority = len(current) // 2 + 1
        if len(serving | (held & current)) < majority:
            return (
                f"voters {sorted(current)}: serving {sorted(serving)}, held by a fault "
                f"{sorted(held & current)}; a majority is {majority}"
            )
        return None

    def healthy() -> str | None:
        with fleet.lock:
            count = fleet.count
        not_serving = [
            i + 1 for i in range(count) if ensemble.server_state(i) not in ("leader", "follower")
        ]
        if not_serving:
            return f"members {not_serving} not serving"
        held.clear()
        return None

    def serves(index: int) -> bool:
        return ensemble.server_state(index) in ("leader", "follower")

    def member(rng: random.Random, leader: bool) -> int:
        with fleet.lock:
            running = [i for i in range(fleet.count) if ensemble.servers[i].running]
        index = ensemble.leader_index() if leader else None
        return index if index is not None and index in running else rng.choice(running)

    @contextlib.contextmanager
    def killed(index: int) -> Iterator[None]:
        held.add(index + 1)
        killing.add(index)
        faults.kill(ensemble.servers[index].process.pid)  # type: ignore[union-attr]
        ensemble.servers[index].process.wait(timeout=30)  # type: ignore[union-attr]
        try:
            yield
        finally:
            with fleet.lock:  # the kubelet restarts the pod if it still exists
                killing.discard(index)
                if index < fleet.count and not ensemble.servers[index].running:
                    # the pod's start logic: the operator may have removed the member while
                    # it was dead (it used to start on its stale configuration: exit code 1)
                    fleet.start_pod(index, timeout=120)

    def kill_member(leader: bool) -> Callable[[random.Random], tuple[str, Any, float]]:
        def make(rng: random.Random) -> tuple[str, Any, float]:
            index = member(rng, leader)
            return f"zk{index + 1}", lambda: killed(index), 2.0

        return make

    def stop_member(leader: bool) -> Callable[[random.Random], tuple[str, Any, float]]:
        def make(rng: random.Random) -> tuple[str, Any, float]:
            index = member(rng, leader)
            held.add(index + 1)
            pid = ensemble.servers[index].pid
            assert pid is not None
            return f"zk{index + 1}", lambda: faults.stopped(pid, 60), 6.0

        return make

    kinds = [
        FaultKind("SIGKILL ZooKeeper member", kill_member(False)),
        FaultKind("SIGKILL ZooKeeper leader", kill_member(True)),
        FaultKind("SIGSTOP ZooKeeper member 6 s", stop_member(False)),
        FaultKind("SIGSTOP ZooKeeper leader 6 s", stop_member(True)),
    ]
    try:
        with worker("kubelet", kubelet):
            with (
                Sampler(
                    record,
                    {"never below quorum by the operator": quorum, "no crash loop": no_crash_loop},
                ) as sampler,
                worker("operator", operator_step) as operator_errors,
                worker("writer", writer),
            ):
                sampler.pids = {f"zk{s.myid}": pid_getter(s) for s in ensemble.servers[:3]}
                run_faults(record, kinds, healthy, time_box(60), rng, recovery_bound=120)
            # the operator finishes its current scaling with no fault: it must get there
            deadline = time.monotonic() + 180
            goal = target[0]
            while True:
                result = scale_step(
                    operator, fleet, goal,
                    lambda i: ensemble.servers[i - 1].server_line(), reconfigure,
                )  # fmt: skip
                if result.done:
                    break
                if time.monotonic() > deadline:
                    states = {s.myid: ensemble.server_state(s.index) for s in ensemble.servers}
                    record.violate(
                        "the operator's scaling finishes once faults stop",
                        f"scaling to {goal} not done 180 s after the faults: {result.message}; "
                        f"fleet {fleet.count}, voters {sorted(voters(operator))}, servers {states}",
                    )
                    assert_clean(record)
                time.sleep(0.3)
            record.samples["scalings completed"] = len(sizes)
            record.samples["members that exited on their own"] = len(own_exits)
            trees = {}
            for server in ensemble.servers[: fleet.count]:
                try:
                    wait_until(partial(serves, server.index), 120, f"zk{server.myid} serving")
                except TimeoutError as exc:
                    record.violate("every member serves once faults stop", str(exc))
                    assert_clean(record)
                direct = KazooClient(hosts=server.address, timeout=10.0)
                direct.start(timeout=60)
                try:
                    trees[server.myid] = zk_tree(direct, "/chaos")
                finally:
                    direct.stop()
                    direct.close()
        first = trees[1]
        for myid, tree in trees.items():
            difference = tree_difference(first, tree)
            if difference:
                record.violate("trees equal once faults stop", f"zk1 vs zk{myid}: {difference}")
        missing = [p for p in acknowledged if p not in first]
        if missing:
            record.violate("no acknowledged write lost", f"{len(missing)} lost: {missing[:5]}")
        record.samples["acknowledged writes"] = len(acknowledged)
        assert_clean(record)
        assert sizes, f"no scaling finished during the faults: {operator_errors[-3:]}"
    finally:
        for client in (operator, app):
            client.stop()
            client.close()
