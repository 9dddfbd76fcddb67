"""Pure: the six phases of a ZkMigration as a state machine over its status.

One call of `step` per tick: it reads the status (where all progress lives, so a restarted
operator resumes where it stopped), the spec and an Observation, and returns the new status
and what the handler must do. Going forward works on the first phase not yet Succeeded;
rolling back undoes the highest started phase, one at a time, down to `rollbackToPhase`.

Each phase has a *level*: the routing of the cluster once the phase is done
(`routing_for`). Working on phase N moves the routing toward level N; undoing phase N moves
it toward level N-1. Masters move one at a time, and only while the set is settled and the
leader stable; a phase (or its undoing) ends when the routing is reached and every check of
that level passes.

Masters move one for one (`next_masters`): a master leaves one set before another joins the
other, so the live log replicas never outnumber the `2*quorum-1` that Mesos sizes the log
for and any two quorums of them intersect (2*quorum > masters on A + masters on B). A new
master's log replica starts EMPTY and catches up from a quorum of recovered replicas
(Mesos src/log/recover.cpp); the next move waits until every master reports
`registrar/log/recovered`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ROUTING_ANNOTATION, MastersComponent, ZkRouting
from orchestrator_operator.models.vocabulary import SyncState, ZkMigrationPhase
from orchestrator_operator.models.vocabulary import ZkMigrationPhaseState as State
from orchestrator_operator.models.zkmigration import (
    PHASES,
    Baseline,
    LeaderRecord,
    PhaseRecord,
    SyncRequest,
    ZkMigrationSpec,
    ZkMigrationStatus,
)
from orchestrator_operator.operator.zkmigration.observation import Observation

STABLE_SECONDS = 5.0  # a leader must hold this long before a master is added or removed
MAX_LAG_SECONDS = 0.1
BASELINE_IDS_KEPT = 2000
STARTED = (State.RUNNING, State.SUCCEEDED, State.FAILED)


@dataclass(frozen=True)
class Decision:
    status: ZkMigrationStatus
    routing: ZkRouting | None  # write this routing on the cluster; None: leave it
    sync_active: bool
    drain_nodes: frozenset[str] = frozenset()
    finalize: bool = False  # phase 6: archive ensemble A, then point the cluster at B


def other_component(component: MastersComponent) -> MastersComponent:
    return "master-b" if component == "master" else "master"


def majority(replicas: int) -> int:
    """Mesos's quorum for a masters set of `replicas` (the MesosCluster's default)."""
    return replicas // 2 + 1


def routing_for(
    level: int,
    name: str,
    target: str,
    replicas: int,
    component: MastersComponent,
    quorum: int | None = None,
) -> ZkRouting:
    """Where every part of the cluster points once phase `level` is done. After phase 2 a
    quorum of the masters runs on B (B alone holds the registry's log), after phase 3 all."""
    if level <= 0:
        return ZkRouting(masters_component=component)
    if level >= 6:
        return ZkRouting(masters_component=other_component(component))
    on_b = {1: 0, 2: min(quorum or majority(replicas), replicas)}.get(level, replicas)
    return ZkRouting(
        migration=name,
        target=target,
        masters_component=component,
        source_masters=replicas - on_b,
        target_masters=on_b,
        agents_on_target=level >= 4,
        marathon_on_target=level >= 4,
    )


def next_masters(current: tuple[int, int], wanted: tuple[int, int], quorum: int) -> tuple[int, int]:
    """The next (masters on A, masters on B) on the way from `current` to `wanted`.

    One master at a time, and one for one: a set grows only while fewer than `2*quorum-1`
    masters run (the log's size in Mesos, src/log/recover.cpp), so at every step
    2*quorum > A+B and any two quorums of the live replicas intersect; and only while at
    least `quorum` run, since a new, EMPTY replica catches up from a quorum of VOTING ones and
    stays EMPTY for ever without them (recover.cpp, cases 3 and 4). A set shrinks first
    when the other cannot grow yet, but never below `quorum` while the other must still grow
    (a single master, quorum 1, therefore never moves: its log would start empty on B).
    Returns `current` when no safe step exists."""
    a, b = current
    want_a, want_b = wanted
    if current == wanted:
        return current
    limit = 2 * quorum - 1
    total = a + b
    if quorum <= total < limit:
        if b < want_b:
            return a, b + 1
        if a < want_a:
            return a + 1, b
    must_grow = a < want_a or b < want_b
    if must_grow and total - 1 < quorum:
        return current
    if a > want_a:
        return a - 1, b
    if b > want_b:
        return a, b - 1
    return current


def master_moves(
    current: tuple[int, int], wanted: tuple[int, int], quorum: int
) -> list[tuple[int, int]]:
    """Every (A, B) from `current` to `wanted` as `next_masters` steps it, both included;
    it stops early where no safe step exists."""
    moves = [current]
    while moves[-1] != wanted:
        step_to = next_masters(moves[-1], wanted, quorum)
        if step_to == moves[-1]:
            break
        moves.append(step_to)
    return moves


def _counts(routing: ZkRouting, replicas: int) -> tuple[int, int]:
    source = replicas if routing.source_masters is None else routing.source_masters
    return source, routing.target_masters if routing.migrating else 0


def _log_settled(a: int, b: int, obs: Observation) -> bool:
    """Both sets at (a, b), all of them in the election on both sides, and every master's
    log replica recovered: only then may the next master leave or join."""
    sets = (obs.source_masters, a), (obs.target_masters, b)
    if any((view.desired, view.ready) != (n, n) for view, n in sets):
        return False
    mesos = obs.mesos
    return (
        mesos.contenders_source == mesos.contenders_target == a + b and mesos.log_recovered == a + b
    )


def approach(current: ZkRouting, wanted: ZkRouting, obs: Observation, stable: bool) -> ZkRouting:
    """The next routing on the way from `current` to `wanted`."""
    if not wanted.migrating or current.target != wanted.target:
        return wanted  # entering or leaving migration mode: the sets keep their sizes
    now = _counts(current, obs.masters_replicas)
    goal = _counts(wanted, obs.masters_replicas)
    if now != goal and stable and _log_settled(*now, obs):
        now = next_masters(now, goal, obs.quorum)
    return wanted.model_copy(update={"source_masters": now[0], "target_masters": now[1]})


def task_digest(task_ids: frozenset[str]) -> str:
    return hashlib.sha256("\n".join(sorted(task_ids)).encode()).hexdigest()[:16]


def _leader(previous: LeaderRecord | None, obs: Observation) -> LeaderRecord:
    record = previous or LeaderRecord()
    if obs.mesos.leader_id == record.id:
        return record
    return LeaderRecord(
        id=obs.mesos.leader_id,
        address=obs.mesos.leader_address,
        since=obs.now,
        changes=record.changes + (1 if record.id else 0),
    )


def _stable(leader: LeaderRecord, now: datetime) -> bool:
    return bool(
        leader.id and leader.since and (now - leader.since).total_seconds() >= STABLE_SECONDS
    )


def _sets_checks(level: int, routing: ZkRouting, obs: Observation) -> list[str]:
    problems = []
    source_wanted = (
        obs.masters_replicas if routing.source_masters is None else routing.source_masters
    )
    if (obs.source_masters.desired, obs.source_masters.ready) != (source_wanted, source_wanted):
        problems.append(
            f"masters on A: {obs.source_masters.ready} ready of {obs.source_masters.desired},"
            f" want {source_wanted}"
        )
    target_wanted = routing.target_masters if routing.migrating else 0
    if obs.target_masters.exists and obs.target_masters.ready != target_wanted:
        problems.append(f"masters on B: {obs.target_masters.ready} ready, want {target_wanted}")
    for what, workload in (("agents", obs.agents), ("marathon", obs.marathon)):
        if not workload.settled:
            problems.append(
                f"{what}: {workload.updated} updated and {workload.ready} ready of"
                f" {workload.desired}"
            )
    active = obs.mesos.agents_active
    if level >= 4 and active is not None and active < obs.agents.desired:
        problems.append(f"{obs.mesos.agents_active} agents registered of {obs.agents.desired}")
    if level >= 4:
        problems += _maintenance_checks(obs)
    return problems


def _maintenance_checks(obs: Observation) -> list[str]:
    """Agents on machines that Mesos holds DOWN, or that have not re-registered since.

    A real agent on a DOWN machine exits on the master's shutdown message, on every
    restart, so its pod crash-loops until the machine is up (Mesos
    docs/maintenance.md; src/master/master.cpp shuts down an agent registering from a DOWN
    machine); after machine/up the kubelet's back-off could delay it for up to 5 minutes,
    which is why its pod is restarted then (phase 5 does that for the machines it drained)."""
    mesos = obs.mesos
    problems = []
    down = sorted(mesos.down_machines)
    if down:
        stale = sorted(set(down) & obs.stale_agent_nodes)
        problems.append(
            f"machines DOWN in Mesos maintenance: {', '.join(down)} (their agents are shut"
            " down until machine/up"
            + (
                f"; {', '.join(stale)} still to be replaced by an agent on B)"
                if stale
                else "; brought up once the agent pod runs B's template)"
            )
        )
    if mesos.agent_hosts is not None:
        waiting = sorted(
            node
            for node in obs.agent_nodes - obs.stale_agent_nodes
            if node.lower() not in mesos.agent_hosts and node not in mesos.down_machines
        )
        if waiting:
            problems.append(
                f"agents not registered with the leading master on: {', '.join(waiting)}"
            )
    return problems


def level_checks(
    level: int, routing: ZkRouting, obs: Observation, status: ZkMigrationStatus
) -> list[str]:
    """Everything that must hold once phase `level` is done, as plain sentences."""
    problems: list[str] = []
    if level < 6 and not obs.source.healthy:
        problems.append(obs.source.describe("A"))
    if level >= 1 and not obs.target.healthy:
        problems.append(obs.target.describe("B"))
    mesos = obs.mesos
    leader = status.leader or LeaderRecord()
    if mesos.error:
        problems.append(f"leading master: {mesos.error}")
    if mesos.leader_id is None:
        problems.append("no leading master in ZooKeeper")
    elif 1 <= level <= 5 and mesos.leader_on_source != mesos.leader_on_target:
        problems.append(
            f"the elections disagree: A says {mesos.leader_on_source}, B says"
            f" {mesos.leader_on_target}"
        )
    elif not _stable(leader, obs.now):
        problems.append(f"leader {mesos.leader_id} not yet stable for {STABLE_SECONDS:.0f}s")
    if 1 <= level <= 5:
        # Every master of both sets registered, and seen alike on both sides (sync).
        source_masters = (
            obs.masters_replicas if routing.source_masters is None else routing.source_masters
        )
        expected = source_masters + routing.target_masters
        if not mesos.contenders_source == mesos.contenders_target == expected:
            problems.append(
                f"contenders: {mesos.contenders_source} on A, {mesos.contenders_target} on B,"
                f" want {expected} on both"
            )
        elif mesos.log_recovered != expected:
            waiting = (
                f" (not yet: {', '.join(mesos.log_unrecovered)})" if mesos.log_unrecovered else ""
            )
            problems.append(
                f"log replicas recovered: {mesos.log_recovered or 0} of {expected} masters"
                f"{waiting}; a new master catches up from a quorum before the next one moves"
            )
    if 2 <= level <= 5 and obs.quorum < 2:
        problems.append(
            "a single master (quorum 1) cannot move to B: its replicated log would start empty"
            " there; scale masters.replicas to 3 first"
        )
    baseline = status.baseline
    if baseline and mesos.running_tasks is not None:
        missing = sorted(set(baseline.task_ids) - mesos.running_tasks)
        if missing or len(mesos.running_tasks) < baseline.task_count:
            problems.append(
                f"{baseline.task_count - len(mesos.running_tasks & set(baseline.task_ids))}"
                f" baseline tasks not running (e.g. {', '.join(missing[:3])})"
            )
        disconnected = [f for f in baseline.framework_ids if not mesos.frameworks.get(f)]
        if disconnected:
            problems.append(f"frameworks not connected: {', '.join(disconnected)}")
    if mesos.failed_tasks:
        problems.append(
            f"{len(mesos.failed_tasks)} tasks failed, lost or killed since the start"
            f" (e.g. {', '.join(sorted(mesos.failed_tasks)[:3])})"
        )
    sync = obs.sync
    if 1 <= level <= 5:
        if sync is None or sync.state != SyncState.RUNNING or not sync.bootstrapped:
            state = f"{sync.state}: {sync.message}" if sync else "not started"
            problems.append(f"sync engine not running and bootstrapped ({state})")
        elif sync.unreadable:
            problems.append(
                f"{sync.unreadable} znodes unreadable by the sync engine (status.sync.message"
                " says which and why)"
            )
        elif sync.digests_equal is False:
            problems.append(f"digests differ ({sync.differences} differences)")
        elif sync.lag_p99_seconds is not None and sync.lag_p99_seconds > MAX_LAG_SECONDS:
            problems.append(f"sync lag p99 {sync.lag_p99_seconds * 1000:.0f} ms > 100 ms")
    if level <= 5:
        problems += _sets_checks(level, routing, obs)
    if level == 5 and obs.stale_agent_nodes:
        problems.append(f"agents still on A: {', '.join(sorted(obs.stale_agent_nodes))}")
    if level == 6:
        if sync is not None and sync.state != SyncState.STOPPED:
            problems.append(f"sync engine still {sync.state}")
        if obs.source.ephemerals:
            problems.append(f"{obs.source.ephemerals} sessions still hold znodes on A")
        if not status.archive:
            problems.append("ensemble A not archived yet")
        if obs.cluster_connect != status.target_connect_string:
            problems.append("the MesosCluster does not name ensemble B yet")
    return problems


def _records(status: ZkMigrationStatus) -> list[PhaseRecord]:
    known = {record.number: record for record in status.phases}
    return [
        known.get(n) or PhaseRecord(number=n, name=name) for n, name in enumerate(PHASES, start=1)
    ]


def _baseline(obs: Observation) -> Baseline | None:
    tasks = obs.mesos.running_tasks
    if tasks is None:
        return None
    return Baseline(
        recorded_at=obs.now,
        task_count=len(tasks),
        task_digest=task_digest(tasks),
        task_ids=sorted(tasks)[:BASELINE_IDS_KEPT],
        framework_ids=sorted(f for f, connected in obs.mesos.frameworks.items() if connected),
    )


def step(name: str, spec: ZkMigrationSpec, status: ZkMigrationStatus, obs: Observation) -> Decision:
    st = status.model_copy(deep=True)
    st.phases = _records(st)
    st.leader = _leader(st.leader, obs)
    target = st.target_connect_string or ""
    component: MastersComponent = obs.routing.masters_component if obs.routing else "master"
    if st.phase == ZkMigrationPhase.SUCCEEDED:
        st.checks = (
            ["finished: rolling back now means a new ZkMigration from B to A"]
            if spec.rollback_to_phase is not None
            else []
        )
        return Decision(st, None, sync_active=False)

    started = [r.number for r in st.phases if r.state in STARTED]
    highest = max(started, default=0)
    rollback_to = spec.rollback_to_phase
    record: PhaseRecord | None = None
    if rollback_to is not None and highest > rollback_to:
        st.rolling_back, st.current_phase, st.phase = True, highest, ZkMigrationPhase.ROLLING_BACK
        record = st.phases[highest - 1]
        level = highest - 1
        record.message = f"undoing: returning to the state after phase {level}"
    else:
        st.rolling_back = False
        current = next((r.number for r in st.phases if r.state != State.SUCCEEDED), 7)
        st.current_phase = min(current, 6)
        manual = spec.approval.mode == "Manual"
        if rollback_to is not None and current > rollback_to:
            level = current - 1
            st.phase = ZkMigrationPhase.ROLLED_BACK
        elif manual and current > spec.approval.approved_through_phase and current not in started:
            level = current - 1
            st.phase = ZkMigrationPhase.AWAITING_APPROVAL
        else:
            level = current
            st.phase = ZkMigrationPhase.RUNNING
            record = st.phases[current - 1]
            if record.state != State.RUNNING:
                record.state, record.started_at, record.finished_at = State.RUNNING, obs.now, None
                record.message = ""
            if current == 1 and st.baseline is None:
                st.baseline = _baseline(obs)

    wanted = routing_for(level, name, target, obs.masters_replicas, component, obs.quorum)
    current_routing = obs.routing or ZkRouting(masters_component=component)
    routing: ZkRouting | None = None
    if level < 6:
        routing = approach(current_routing, wanted, obs, _stable(st.leader, obs.now))
        if routing == current_routing:
            routing = None  # nothing to write
    problems = level_checks(level, wanted if level < 6 else current_routing, obs, st)
    if level == 1 and st.baseline is None:
        problems.append("waiting to record the baseline of running tasks")
    if level < 6 and current_routing != wanted:
        problems.append("routing the cluster: " + _routing_words(routing or wanted))
    st.checks = problems
    if record is not None and not problems:
        if st.rolling_back:
            record.state, record.finished_at = State.ROLLED_BACK, obs.now
            record.message = f"rolled back to the state after phase {level}"
        else:
            record.state, record.finished_at = State.SUCCEEDED, obs.now
            record.message = "exit checks passed"
            if record.number == 6:
                st.phase = ZkMigrationPhase.SUCCEEDED
                st.report = report(st)
    elif record is not None and problems:
        record.message = "; ".join(problems)[:1000]
    sync_active = 1 <= level <= 5
    drain = obs.stale_agent_nodes if level == 5 and not st.rolling_back else frozenset()
    finalize = level == 6 and record is not None and record.state == State.RUNNING
    return Decision(st, routing, sync_active, drain, finalize)


def _routing_words(routing: ZkRouting) -> str:
    if not routing.migrating:
        return f"every part on the spec's ensemble (masters set {routing.masters_component})"
    source = "all" if routing.source_masters is None else routing.source_masters
    return (
        f"masters on A {source}, on B {routing.target_masters};"
        f" agents on {'B' if routing.agents_on_target else 'A'};"
        f" Marathon on {'B' if routing.marathon_on_target else 'A'}"
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def report(status: ZkMigrationStatus) -> str:
    """The human report: per-phase durations, cutover time, tasks and leader changes."""
    lines = [
        "ZkMigration report",
        f"from {status.source_connect_string or 'A (not recorded)'}"
        f" to {status.target_connect_string or 'B (not recorded)'}",
    ]
    for record in status.phases:
        took = _seconds(record.started_at, record.finished_at)
        lines.append(
            f"  phase {record.number} {record.name:<20} {record.state:<10}"
            + (f" {took:7.1f} s" if took is not None else "")
        )
    phases = {r.number: r for r in status.phases}
    cutover = _seconds(
        phases[2].started_at if 2 in phases else None,
        phases[6].finished_at if 6 in phases else None,
    )
    if cutover is not None:
        lines.append(f"cutover (phase 2 start to phase 6 end): {cutover:.1f} s")
    if status.baseline:
        lines.append(
            f"tasks: {status.baseline.task_count} running at the start (digest"
            f" {status.baseline.task_digest}); all still running, none failed"
        )
    if status.leader:
        leader = status.leader.id or "none known"
        lines.append(f"leader changes: {status.leader.changes}; leader now {leader}")
    return "\n".join(lines)


def sync_request(
    active: bool,
    source: str,
    target: str,
    tls_routes: Mapping[str, str],
    spec: ZkMigrationSpec,
    source_ref: SecretKeyRef | None,
    target_ref: SecretKeyRef | None,
) -> SyncRequest:
    """What the sync controller is asked to run. A side in `tls_routes` (its plain connect
    string -> the members' certificate names on the TLS port) is asked for on its TLS port,
    and the controller presents its own client certificate there."""
    return SyncRequest(
        active=active,
        source=tls_routes.get(source, source),
        target=tls_routes.get(target, target),
        source_tls=source in tls_routes,
        target_tls=target in tls_routes,
        paths=list(spec.paths),
        strategy=spec.conflict_strategy,
        source_auth_secret_ref=source_ref,
        target_auth_secret_ref=target_ref,
    )


def handover_patch(final: ZkRouting, target: str, target_tls: str | None = None) -> dict[str, Any]:
    """Phase 6's one merge patch of the MesosCluster: its ZooKeeper is B from now on (an
    external ensemble to the cluster: `tls`, for a managed ensemble only, goes with
    `replicas`; the API server would refuse the pair) and the routing leaves migration mode.
    `target_tls`: B's TLS servers (a managed B with tls), which the operator keeps using."""
    external: dict[str, Any] = {"connectString": target}
    if target_tls:
        external["tlsServers"] = target_tls
    return {
        "metadata": {"annotations": {ROUTING_ANNOTATION: final.to_annotation()}},
        "spec": {"zookeeper": {"replicas": None, "tls": None, "external": external}},
    }


def plain_target_refusal(spec: ZkMigrationSpec, cluster: MesosClusterSpec) -> str | None:
    """A managed ensemble B without tls for a cluster whose ensemble has it: refused, so a
    migration never turns the quorum's encryption off (nor gives B A's certificate, which
    does not name B's members)."""
    managed = spec.target.managed
    if managed is None or managed.tls is not None or cluster.zookeeper.tls is None:
        return None
    return (
        "the cluster's ZooKeeper uses TLS (spec.zookeeper.tls): set target.managed.tls to a"
        " Secret whose certificate names B's members"
        " (*.<migration>-zookeeper-headless.<namespace>.svc.cluster.local), from the issuer"
        " of the operator's client certificate"
    )
