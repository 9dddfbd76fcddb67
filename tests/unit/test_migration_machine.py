"""The ZkMigration state machine against a small deterministic world: workloads follow the
routing the machine writes, one tick per second."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.models.zkmigration import SyncStatus, ZkMigrationSpec, ZkMigrationStatus
from orchestrator_operator.operator.zkmigration.machine import (
    Decision,
    level_checks,
    master_moves,
    next_masters,
    routing_for,
    step,
    sync_request,
)
from orchestrator_operator.operator.zkmigration.observation import (
    EnsembleView,
    MesosView,
    Observation,
    WorkloadView,
)

A, B = "a1:2181,a2:2181,a3:2181", "b1:2181,b2:2181,b3:2181"
TASKS = frozenset(f"web.{i}" for i in range(200))


def _spec(**changes: object) -> ZkMigrationSpec:
    raw: dict[str, object] = {"clusterRef": "demo", "target": {"external": {"connectString": B}}}
    raw.update(changes)
    return ZkMigrationSpec.model_validate(raw)


@dataclass
class World:
    """What a tick observes, given the routing the cluster has been given."""

    replicas: int = 3
    agents: int = 4
    routing: ZkRouting | None = None
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 27, tzinfo=UTC))
    target_servers_up: int = 3
    running: frozenset[str] = TASKS
    failed: frozenset[str] = frozenset()
    cluster_connect: str = A
    archived: list[str] = field(default_factory=list)
    sync_active: bool = False
    sync_unreadable: int = 0
    history: list[tuple[int, int]] = field(default_factory=list)  # (masters on A, on B)
    catching_up: int = 0  # ticks a new master's log replica stays EMPTY before VOTING
    unrecovered: dict[tuple[int, int], int] = field(default_factory=dict)  # ticks left

    def observe(self) -> Observation:
        routing = self.routing or ZkRouting()
        source = self.replicas if routing.source_masters is None else routing.source_masters
        target = routing.target_masters if routing.migrating else 0
        leader = "master-a" if source else ("master-b" if target else None)
        sync = (
            SyncStatus(
                state="Running",
                bootstrapped=True,
                digests_equal=True,
                lag_p99_seconds=0.01,
                unreadable=self.sync_unreadable,
            )
            if self.sync_active
            else SyncStatus(state="Stopped")
        )
        both = self.sync_active
        return Observation(
            now=self.now,
            source=EnsembleView(A, 3, 3, ephemerals=0),
            target=EnsembleView(B, 3, self.target_servers_up),
            mesos=MesosView(
                leader_id=leader,
                leader_address="127.0.0.1:5050",
                leader_on_source=leader,
                leader_on_target=leader if both else None,
                contenders_source=source + target,
                contenders_target=(source + target) if both else 0,
                log_recovered=source + target - len(self.unrecovered),
                agents_active=self.agents,
                frameworks={"marathon": True},
                running_tasks=self.running,
                failed_tasks=self.failed,
            ),
            routing=self.routing,
            masters_replicas=self.replicas,
            source_masters=WorkloadView(source, source, source),
            target_masters=WorkloadView(target, target, target, exists=routing.migrating),
            agents=WorkloadView(self.agents, self.agents, self.agents),
            marathon=WorkloadView(2, 2, 2),
            sync=sync,
            cluster_connect=self.cluster_connect,
        )

    def apply(self, decision: Decision) -> None:
        if decision.routing is not None:
            self.routing = decision.routing
        self.sync_active = decision.sync_active
        if decision.finalize and not self.sync_active and (self.routing or ZkRouting()).migrating:
            # What the handler does in phase 6: archive A, then point the cluster at B.
            self.archived = ["demo-archive-0"]
            decision.status.archive = self.archived
            self.cluster_connect = B
            component = (
                "master-b"
                if (self.routing or ZkRouting()).masters_component == "master"
                else "master"
            )
            self.routing = ZkRouting(masters_component=component)
        routing = self.routing or ZkRouting()
        source = self.replicas if routing.source_masters is None else routing.source_masters
        pair = (source, routing.target_masters if routing.migrating else 0)
        if not self.history or self.history[-1] != pair:
            if self.history and sum(pair) > sum(self.history[-1]) and self.catching_up:
                self.unrecovered[pair] = self.catching_up  # the master that joined
            self.history.append(pair)
        for joined in list(self.unrecovered):
            self.unrecovered[joined] -= 1
            if self.unrecovered[joined] <= 0:
                del self.unrecovered[joined]
        self.now += timedelta(seconds=1)


Until = str | Callable[[ZkMigrationStatus], bool] | None


def run(
    world: World, spec: ZkMigrationSpec, status: ZkMigrationStatus, until: Until, ticks: int = 400
) -> ZkMigrationStatus:
    """Tick until the phase is `until` (or `until(status)` holds); with None, `ticks` ticks."""
    for _ in range(ticks):
        decision = step("move", spec, status, world.observe())
        world.apply(decision)
        status = decision.status
        if until is not None and (
            status.phase == until if isinstance(until, str) else until(status)
        ):
            return status
    if until is None:
        return status
    raise AssertionError(f"never reached {until}: phase {status.phase}, checks {status.checks}")


def fresh() -> ZkMigrationStatus:
    return ZkMigrationStatus(phase="Pending", source_connect_string=A, target_connect_string=B)


def test_forward_runs_six_phases_and_moves_masters_one_at_a_time() -> None:
    world = World()
    status = run(world, _spec(), fresh(), "Succeeded")
    assert [(r.number, r.state) for r in status.phases] == [(n, "Succeeded") for n in range(1, 7)]
    assert all(r.started_at and r.finished_at for r in status.phases)
    # One for one: never more log replicas than the 3 that quorum 2 is sized for.
    assert max(a + b for a, b in world.history) == 3
    assert world.cluster_connect == B
    assert world.routing == ZkRouting(masters_component="master-b")
    assert status.baseline is not None and status.baseline.task_count == 200
    assert status.report and "cutover" in status.report


def test_masters_sequence_is_exact() -> None:
    world = World()
    run(world, _spec(), fresh(), "Succeeded")
    steps = world.history[: world.history.index((0, 3)) + 1]
    assert steps == [(3, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 3)]
    assert all(a + b < 2 * 2 for a, b in world.history)


def test_rollback_from_phase_four_returns_everything_to_a() -> None:
    world = World()
    spec = _spec()
    status = fresh()
    status = run(world, spec, status, lambda s: s.phases[3].state == "Succeeded")
    assert world.routing is not None and world.routing.agents_on_target
    back = _spec(rollbackToPhase=0)
    status = run(world, back, status, "RolledBack")
    assert [r.state for r in status.phases[:4]] == ["RolledBack"] * 4
    assert world.routing == ZkRouting()
    assert not world.sync_active
    # Undoing goes back the same safe way: one master leaves B before one joins A.
    tail = world.history[world.history.index((0, 3)) :]
    assert tail[:7] == [(0, 3), (0, 2), (1, 2), (1, 1), (2, 1), (2, 0), (3, 0)]
    assert all(a + b < 2 * 2 for a, b in world.history)


def test_rollback_to_a_middle_phase_holds_there_until_cleared() -> None:
    world = World()
    status = fresh()
    status = run(world, _spec(), status, lambda s: s.phases[2].state == "Succeeded")
    status = run(world, _spec(rollbackToPhase=2), status, "RolledBack")
    assert status.phases[2].state == "RolledBack"
    # After phase 2 a quorum of the masters (2 of 3) runs on B.
    assert world.routing is not None and world.routing.target_masters == 2
    assert world.routing.source_masters == 1
    status = run(world, _spec(rollbackToPhase=2), status, None, ticks=20)  # it stays there
    assert status.phase == "RolledBack" and status.current_phase == 3
    status = run(world, _spec(), status, "Succeeded")  # cleared: forward again


def test_manual_approval_waits_at_each_unapproved_phase() -> None:
    world = World()
    manual = _spec(approval={"mode": "Manual", "approvedThroughPhase": 0})
    status = run(world, manual, fresh(), "AwaitingApproval", ticks=5)
    assert status.current_phase == 1 and world.routing is None
    approved = _spec(approval={"mode": "Manual", "approvedThroughPhase": 2})
    status = run(world, approved, status, "AwaitingApproval", ticks=200)
    assert status.current_phase == 3
    assert [r.state for r in status.phases[:3]] == ["Succeeded", "Succeeded", "Pending"]


def test_an_unhealthy_target_ensemble_holds_the_phase_with_a_clear_message() -> None:
    world = World()
    status = fresh()
    status = run(world, _spec(), status, lambda s: s.current_phase == 2)
    world.target_servers_up = 2
    status = run(world, _spec(), status, None, ticks=30)
    assert status.current_phase == 2 and status.phases[1].state == "Running"
    assert any(
        "ensemble B (b1:2181,b2:2181,b3:2181): 2 of 3 servers answer" in c for c in status.checks
    )
    world.target_servers_up = 3
    run(world, _spec(), status, "Succeeded")


def test_a_failed_task_holds_the_migration() -> None:
    world = World()
    status = run(world, _spec(), fresh(), "Running", ticks=3)
    world.failed = frozenset({"web.7"})
    world.running = TASKS - {"web.7"}
    status = run(world, _spec(), status, None, ticks=60)
    assert status.phase == "Running" and status.current_phase == 1
    assert any("1 tasks failed" in c for c in status.checks)
    assert any("baseline tasks not running (e.g. web.7)" in c for c in status.checks)


def test_routing_for_each_level() -> None:
    assert routing_for(0, "m", B, 3, "master") == ZkRouting()
    second = routing_for(2, "m", B, 3, "master")
    assert (second.source_masters, second.target_masters) == (1, 2)
    fifth = routing_for(2, "m", B, 5, "master", quorum=3)
    assert (fifth.source_masters, fifth.target_masters) == (2, 3)
    third = routing_for(3, "m", B, 3, "master")
    assert (third.source_masters, third.agents_on_target) == (0, False)
    assert routing_for(4, "m", B, 3, "master").agents_on_target
    assert routing_for(6, "m", B, 3, "master") == ZkRouting(masters_component="master-b")


@pytest.mark.parametrize("phase", [1, 2, 3, 4, 5, 6])
def test_rollback_from_each_phase_returns_the_cluster_to_a(phase: int) -> None:
    """Rolled back as soon as phase `phase` has started (or, when its checks pass at once,
    just finished)."""
    world = World()
    status = fresh()
    for _ in range(400):
        decision = step("move", _spec(), status, world.observe())
        status = decision.status
        if status.phases[phase - 1].state in ("Running", "Succeeded"):
            break
        world.apply(decision)
    assert status.phase != "Succeeded"
    status = run(world, _spec(rollbackToPhase=0), status, "RolledBack")
    assert [r.state for r in status.phases[:phase]] == ["RolledBack"] * phase
    assert world.routing in (None, ZkRouting())
    assert world.cluster_connect == A and not world.sync_active
    assert world.history[-1] == (3, 0)
    assert status.checks == []


def test_znodes_the_engine_cannot_read_hold_phase_one() -> None:
    """Digests compare only what both sides could read: a znode unreadable by the engine
    (an ACL without READ, or one that reads redacted) is never synced, so the migration
    waits, in words, until someone gives the engine access."""
    world = World(sync_unreadable=2)
    status = run(world, _spec(), fresh(), None, ticks=60)
    assert status.current_phase == 1 and status.phases[0].state == "Running"
    assert any("2 znodes unreadable by the sync engine" in c for c in status.checks)
    world.sync_unreadable = 0
    run(world, _spec(), status, "Succeeded")


def test_a_new_master_catches_up_before_the_next_one_moves() -> None:
    """Mesos src/log/recover.cpp: a new replica is EMPTY and catches up from a quorum of
    VOTING ones; with one VOTING and two EMPTY the log never recovers (its cases 3 and 4).
    So no master leaves A while the one that joined B has not recovered its log."""
    world = World(catching_up=8)
    status = run(world, _spec(), fresh(), lambda s: s.current_phase == 2)
    seen_waiting = False
    for _ in range(400):
        decision = step("move", _spec(), status, world.observe())
        status = decision.status
        if world.unrecovered:
            seen_waiting = seen_waiting or any(
                "log replicas recovered: 2 of 3" in c for c in status.checks
            )
            # While a replica catches up, the routing's masters do not change.
            assert (
                decision.routing is None
                or (
                    decision.routing.source_masters,
                    decision.routing.target_masters,
                )
                == (world.history[-1])
            )
        world.apply(decision)
        if status.phase == "Succeeded":
            break
    assert status.phase == "Succeeded" and seen_waiting
    assert world.history[: world.history.index((0, 3)) + 1] == [
        (3, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 3)
    ]  # fmt: skip


def test_a_single_master_never_moves_and_says_why() -> None:
    """Quorum 1: removing the only master first leaves no replica for the new one to catch
    up from (it would start a fresh, empty log on B); adding first runs two quorums of 1."""
    world = World(replicas=1)
    status = run(world, _spec(), fresh(), None, ticks=80)
    assert status.current_phase == 2 and status.phases[1].state == "Running"
    assert any("a single master (quorum 1) cannot move to B" in c for c in status.checks)
    assert world.history[-1] == (1, 0)


def _valid(quorum: int) -> list[tuple[int, int]]:
    limit = 2 * quorum - 1
    return [(a, b) for a in range(limit + 1) for b in range(limit + 1) if a + b <= limit]


@pytest.mark.parametrize("quorum", [1, 2, 3, 4])
def test_every_master_move_keeps_any_two_quorums_intersecting(quorum: int) -> None:
    """Exhaustive over every (A, B) start and goal a cluster of 2*quorum-1 masters can be
    at: each step moves one master, 2*quorum > A+B at every step, a set grows only while a
    quorum of masters runs (a new replica catches up from them), and the goal is reached
    unless that is impossible (quorum 1)."""
    for start in _valid(quorum):
        for goal in _valid(quorum):
            moves = master_moves(start, goal, quorum)
            for before, after in itertools.pairwise(moves):
                assert after[0] + after[1] < 2 * quorum, (start, goal, moves)
                assert abs(after[0] - before[0]) + abs(after[1] - before[1]) == 1
                if sum(after) > sum(before):
                    assert sum(before) >= quorum, (start, goal, moves)
            if quorum >= 2 and sum(start) >= quorum and sum(goal) >= quorum:
                assert moves[-1] == goal, (start, goal, moves)


def test_an_overlap_left_by_an_older_operator_shrinks_first() -> None:
    """A migration an older operator left at 3 + 3 (two quorums of 2 need not intersect)
    only removes masters until the live replicas are back within 3."""
    moves = master_moves((3, 3), (0, 3), 2)
    assert moves == [(3, 3), (2, 3), (1, 3), (0, 3)]
    assert next_masters((3, 3), (3, 0), 2) == (3, 2)


def test_the_old_one_sided_overlap_breaks_the_invariant() -> None:
    """What the machine did before (all of B added, then A removed) fails the same check."""
    old = [(3, 0), (3, 1), (3, 2), (3, 3), (2, 3), (1, 3), (0, 3)]
    assert [s for s in old if sum(s) >= 2 * 2] == [(3, 1), (3, 2), (3, 3), (2, 3), (1, 3)]
    assert all(sum(s) < 2 * 2 for s in master_moves((3, 0), (0, 3), 2))


def _at_level_five(**mesos: object) -> tuple[Observation, ZkMigrationStatus]:
    world = World()
    status = run(world, _spec(), fresh(), lambda s: s.current_phase == 5)
    obs = world.observe()
    nodes = frozenset({"node-1", "node-2", "node-3", "node-4"})
    obs = dataclasses.replace(
        obs,
        agent_nodes=nodes,
        mesos=dataclasses.replace(obs.mesos, **{"agent_hosts": nodes, **mesos}),  # type: ignore[arg-type]
    )
    return obs, status


def test_phase_five_waits_for_machines_it_took_down_and_says_which() -> None:
    """Mesos shuts down an agent that registers from a DOWN machine (src/master/master.cpp,
    'Machine is `DOWN`'), so its pod crash-loops until machine/up: phase 5 cannot end while
    a machine is DOWN, and says which and what brings it back."""
    obs, status = _at_level_five(
        down_machines=frozenset({"node-2"}),
        agent_hosts=frozenset({"node-1", "node-3", "node-4"}),
        agents_active=3,
    )
    routing = obs.routing or ZkRouting()
    stale = dataclasses.replace(obs, stale_agent_nodes=frozenset({"node-2"}))
    checks = level_checks(5, routing, stale, status)
    assert "machines DOWN in Mesos maintenance: node-2 (their agents are shut down until" in (
        " ".join(checks)
    )
    assert any("node-2 still to be replaced by an agent on B" in c for c in checks)
    replaced = level_checks(5, routing, obs, status)
    assert any("brought up once the agent pod runs B's template" in c for c in replaced)
    # A DOWN machine's agent is not counted as missing twice.
    assert not any("agents not registered with the leading master" in c for c in replaced)


def test_phase_five_waits_for_an_agent_to_re_register_after_machine_up() -> None:
    """After machine/up the agent must register again (its pod is restarted at once, else a
    crash-loop back-off of up to 5 minutes): until then phase 5 names it."""
    obs, status = _at_level_five(
        agent_hosts=frozenset({"node-1", "node-3", "node-4"}), agents_active=3
    )
    checks = level_checks(5, obs.routing or ZkRouting(), obs, status)
    assert "agents not registered with the leading master on: node-2" in checks
    obs, status = _at_level_five()
    assert level_checks(5, obs.routing or ZkRouting(), obs, status) == []


def test_a_tls_side_is_asked_of_the_sync_controller_on_its_tls_port() -> None:
    """A managed ensemble A with spec.zookeeper.tls: the syncRequest names its members'
    certificate names on 2281 and marks the side, so the controller connects over TLS with
    its own certificate; B on plain 2181 stays as it is."""
    plain_a = "prod-zookeeper-client.shop.svc:2181"
    tls_a = ",".join(
        f"prod-zookeeper-{i}.prod-zookeeper-headless.shop.svc.cluster.local:2281" for i in range(3)
    )
    target = "zk-b.shop.svc:2181"
    spec = _spec(paths=["/mesos", "/marathon"], conflictStrategy="Manual")
    request = sync_request(True, plain_a, target, {plain_a: tls_a}, spec, None, None)
    assert (request.source, request.source_tls) == (tls_a, True)
    assert (request.target, request.target_tls) == (target, False)
    assert request.active and request.paths == ["/mesos", "/marathon"]
    assert request.strategy == "Manual"
    plain = sync_request(False, plain_a, target, {}, spec, None, None)
    assert (plain.source, plain.source_tls, plain.active) == (plain_a, False, False)
