"""Scenario: the operator drains and undrains Mesos agents (its maintenance step,
operator/mesoscluster/maintenance.py) while the masters, ZooKeeper, Marathon and the agents
are killed, frozen, partitioned and starved, one fault after another (issue 20).

Invariants, sampled every half second: never two masters acting as leader (committing registry
writes in the same period); no registry write committed by one leader missing from a later
leader's log (sim/logaudit.py); no task of the running app failed or lost and never fewer
running than its instances (a drain moves tasks: replacement first, then the kill); no process
crash-looping, and none exiting once the faults stop; and after each fault, a recovered leader
with every agent not taken DOWN, Marathon and all three ZooKeeper servers back within the
bound."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator_operator.operator.mesoscluster.maintenance import run_maintenance
from sim.logaudit import LogAuditor
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
    worker,
)
from tests.chaos.world import (
    LET_IT_CRASH,
    MesosWorld,
    NodeZkEnsemble,
    crash_loops,
    designed_exits,
    exits_since,
    wait_until,
)

pytestmark = pytest.mark.timeout(1800)
APP = "/chaos-sleep"
SCENARIO = "maintenance drain + master elections"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[MesosWorld]:
    network = Network()
    zk = NodeZkEnsemble(network, "zk", 3, tmp_path / "zk")
    zk.start()
    mesos = MesosWorld(network, zk, tmp_path / "mesos", agents=2)
    try:
        mesos.start()
        yield mesos
    finally:
        mesos.stop()
        zk.stop()
        network.remove()


def get(url: str, timeout: float = 2.0) -> Any:
    response = httpx.get(url, timeout=timeout, follow_redirects=True)
    response.raise_for_status()
    return response.json()


def pid_of(proc: Any) -> int:
    assert proc.popen is not None, proc.name
    return int(proc.popen.pid)


def leader_url(mesos: MesosWorld) -> str:
    index = mesos.leader_index()
    if index is None:
        raise RuntimeError("no leading master in ZooKeeper")
    return mesos.master_urls()[index]


def app_tasks(mesos: MesosWorld) -> dict[str, str]:
    tasks = get(f"{mesos.marathon_url}/v2/apps{APP}/tasks")["tasks"]
    return {t["id"]: t["state"] for t in tasks}


def unhealthy(mesos: MesosWorld, zk: NodeZkEnsemble, tasks: set[str]) -> str | None:
    """None once the whole cluster is back: what is still missing otherwise."""
    serving = zk.serving()
    if len(serving) != 3:
        return f"ZooKeeper serving on {sorted(serving)} only"
    url = leader_url(mesos)
    snap = get(url + "/metrics/snapshot")
    if not snap.get("master/elected") or "registrar/registry_size_bytes" not in snap:
        return "the leading master has not recovered its registry"
    down = get(url + "/maintenance/status").get("down_machines", [])
    if snap.get("master/slaves_active", 0) < len(mesos.agents) - len(down):
        return f"{snap.get('master/slaves_active')} agents active, {len(down)} machines down"
    if not mesos.marathon_leader():
        return "no leading Marathon"
    running = [i for i, s in app_tasks(mesos).items() if s == "TASK_RUNNING"]
    if len(running) < len(tasks):
        return f"Marathon shows {len(running)} of {len(tasks)} tasks running"
    return None


@contextlib.contextmanager
def zk_server_down(zk: NodeZkEnsemble, index: int) -> Iterator[None]:
    zk.kill_server(index)
    try:
        yield
    finally:
        zk.start_server(index, timeout=120)


def test_maintenance_and_elections_under_faults(world: MesosWorld) -> None:
    mesos, zk = world, world.zk
    assert isinstance(zk, NodeZkEnsemble)
    rng = random.Random(seed())
    record = Record(SCENARIO, seed())
    wait_until(lambda: mesos.marathon_leader() and mesos.leader_index() is not None, 90, "up")
    wait_until(
        lambda: get(leader_url(mesos) + "/metrics/snapshot")["master/slaves_active"] == 2,
        90,
        "both agents registered",
    )
    app = {"id": APP, "cmd": "sleep 100000", "instances": 2, "cpus": 0.1, "mem": 16}
    wait_until(lambda: httpx.post(f"{mesos.marathon_url}/v2/apps", json=app).status_code < 300,
               60, "the app created")  # fmt: skip
    wait_until(lambda: list(app_tasks(mesos).values()) == ["TASK_RUNNING"] * 2, 90, "2 tasks")
    tasks = set(app_tasks(mesos))
    auditor = LogAuditor()

    def no_lost_write() -> str | None:
        lost = auditor.lost_committed_writes()
        if not lost:
            return None
        evidence = mesos.base / "log-audits.json"
        evidence.write_text(json.dumps(auditor.audits, indent=1))
        return "; ".join(str(w) for w in lost) + f" (audits: {evidence})"

    def no_task_failed_and_capacity_held() -> str | None:
        """A drain moves tasks (Marathon starts a replacement, then kills the task on the
        draining agent): a KILLED task is fine, a failed or lost one is not, and the app
        never runs fewer than its instances. Counted on the leading master once every agent
        not taken DOWN has re-registered with it (before, it does not know their tasks)."""
        url = leader_url(mesos)
        state = get(url + "/master/state", timeout=3.0)
        down = get(url + "/maintenance/status", timeout=3.0).get("down_machines", [])
        frameworks = state.get("frameworks", [])
        bad = [
            f"{t['id']} {t['state']}"
            for fw in frameworks
            for t in fw.get("completed_tasks", [])
            if t["id"].startswith(APP.strip("/"))
            and t["state"] not in ("TASK_KILLED", "TASK_FINISHED")
        ]
        if bad:
            return f"tasks ended badly: {bad}"
        active = [a for a in state.get("slaves", []) if a.get("active")]
        if len(active) < len(mesos.agents) - len(down):
            return None  # not every agent back yet: the master cannot count
        running = [
            t["id"]
            for fw in frameworks
            for t in fw.get("tasks", [])
            if t["id"].startswith(APP.strip("/")) and t["state"] == "TASK_RUNNING"
        ]
        return None if len(running) >= 2 else f"only {len(running)} of 2 tasks running: {running}"

    def no_crash_loop() -> str | None:
        return crash_loops(mesos.supervisor, designed=LET_IT_CRASH)

    def two_acting_leaders() -> str | None:
        """A deposed leader believes it leads until its ZooKeeper client gives the session
        up (Mesos src/zookeeper/group.cpp: the session timeout after the disconnection,
        while the server expires it a session timeout after the last heartbeat), so two
        masters may *claim* leadership for a moment, as in Mesos. What must never happen is
        two of them committing registry writes in the same period."""
        claims = sum(
            1 for a in auditor.sample(mesos.master_urls(), timeout=1.0) if a.get("leading")
        )
        if claims > 1:
            record.samples["samples with 2 leadership claims (expected briefly)"] = (
                record.samples.get("samples with 2 leadership claims (expected briefly)", 0) + 1
            )
        pairs = auditor.interleaved_writers()
        return None if not pairs else f"masters committing in the same period: {pairs}"

    # The operator's work: cordon one agent's node, then the other, then none; one
    # maintenance step a second (as the MesosCluster timer does).
    hosts = [f"agent-{j}" for j in range(len(mesos.agents))]
    cordoned: set[str] = set()
    reports: list[Any] = []

    def maintenance(stop: Any) -> None:
        nonlocal cordoned
        if rng.random() < 0.15:
            cordoned = {rng.choice(hosts)} if not cordoned else set()
        index = mesos.leader_index()
        if index is not None:
            address = mesos.master_urls()[index].removeprefix("http://")
            reports.append(run_maintenance(address, set(cordoned)))
        stop.wait(1.0)

    def leader_node() -> tuple[str, faults.Node]:
        index = mesos.leader_index()
        i = index if index is not None else 0
        return f"master-{i}", mesos.master_nodes[i]

    def zk_leader() -> int:
        return next((i for i, m in zk.serving().items() if m == "leader"), 0)

    def kill_master(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        name, _ = leader_node()
        proc = next(p for p in mesos.masters if p.name == name)

        @contextlib.contextmanager
        def fault() -> Iterator[None]:
            mesos.supervisor.killed_by_fault(name)
            faults.kill(pid_of(proc))
            yield

        return name, fault, 1.0

    def stop_master(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        name, _ = leader_node()
        proc = next(p for p in mesos.masters if p.name == name)
        pid = pid_of(proc)
        # longer than the 4 s session: it wakes up deposed and must not lead (it exits)
        mesos.supervisor.killed_by_fault(name)
        return name, lambda: faults.stopped(pid, 60), 7.0

    zk_nodes = [zk.node_of(i) for i in range(3)]

    def cut_master(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        name, node = leader_node()
        mesos.supervisor.killed_by_fault(name)
        return name, lambda: faults.partition(node, list(zk_nodes), 60), 8.0

    def lossy_master(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        name, node = leader_node()
        return name, lambda: faults.loss(node, list(zk_nodes), 30, 60), 8.0

    def kill_zk_leader(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        i = zk_leader()
        return f"zk-{i}", lambda: zk_server_down(zk, i), 2.0

    def cut_zk_server(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        i = rng.randrange(3)
        peers = [n for j, n in enumerate(zk_nodes) if j != i]
        return f"zk-{i}", lambda: faults.partition(zk_nodes[i], list(peers), 60), 8.0

    def slow_zk_leader(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        i = zk_leader()
        return f"zk-{i}", lambda: faults.slow(zk_nodes[i], 64, 60), 8.0

    def kill_marathon(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        @contextlib.contextmanager
        def fault() -> Iterator[None]:
            mesos.supervisor.killed_by_fault("marathon-0")
            faults.kill(pid_of(mesos.marathon))
            yield

        return "marathon-0", fault, 1.0

    def stop_agent(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
        j = rng.randrange(len(mesos.agents))
        pid = pid_of(mesos.agents[j])
        return f"agent-{j}", lambda: faults.stopped(pid, 60), 5.0

    kinds = [
        FaultKind("SIGKILL leading master", kill_master),
        FaultKind("SIGSTOP leading master 7 s", stop_master),
        FaultKind("partition leading master | ZooKeeper 8 s", cut_master),
        FaultKind("30% loss leading master <-> ZooKeeper 8 s", lossy_master),
        FaultKind("SIGKILL ZooKeeper leader", kill_zk_leader),
        FaultKind("partition ZooKeeper server | its peers 8 s", cut_zk_server),
        FaultKind("slow link (64 kbit/s) ZooKeeper leader 8 s", slow_zk_leader),
        FaultKind("SIGKILL Marathon", kill_marathon),
        FaultKind("SIGSTOP agent 5 s", stop_agent),
    ]
    checks = {
        "never two masters acting as leader": two_acting_leaders,
        "no committed registry write lost": no_lost_write,
        "no task failed or lost, capacity held": no_task_failed_and_capacity_held,
        "no crash loop": no_crash_loop,
    }
    with Sampler(record, checks) as sampler, worker("maintenance", maintenance) as errors:
        sampler.pids = {p.name: pid_getter(p) for p in mesos.processes}
        run_faults(record, kinds, lambda: unhealthy(mesos, zk, tasks), time_box(60), rng)
        quiet = time.monotonic()
        time.sleep(15)  # no fault now: nothing may exit on its own any more
        sampler.check_now()
    if exits_since(mesos.supervisor, quiet):
        record.violate(
            "no crash loop", f"exits after the faults: {exits_since(mesos.supervisor, quiet)}"
        )
    record.samples["maintenance steps"] = len(reports)
    record.samples["Marathon's let-it-crash exits (100, 101, 103)"] = designed_exits(
        mesos.supervisor, LET_IT_CRASH
    )
    final = [i for i, s in app_tasks(mesos).items() if s == "TASK_RUNNING"]
    if len(final) != len(tasks):
        record.violate("no task failed or lost, capacity held", f"at the end: {final}")
    assert_clean(record)
    assert reports and any(r for r in reports if r), f"the operator never drained: {errors[-3:]}"
