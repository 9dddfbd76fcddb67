"""The audit trail of a ZkMigration (operator/zkmigration/events.py): the Events a person
auditing a migration reads, collected while the state machine runs a manual migration,
rolls it back and fails it."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator_operator.models.vocabulary import ZkMigrationPhase
from orchestrator_operator.models.vocabulary import ZkMigrationPhaseState as PhaseState
from orchestrator_operator.models.zkmigration import ZkMigrationSpec, ZkMigrationStatus
from orchestrator_operator.operator.zkmigration.events import AuditEvent, audit_events
from orchestrator_operator.operator.zkmigration.machine import step
from tests.unit.test_migration_machine import World, _spec, fresh


def _run(
    world: World,
    spec: ZkMigrationSpec,
    status: ZkMigrationStatus,
    ticks: int,
    until: Callable[[ZkMigrationStatus], bool] = lambda _: False,
    decided_by: str | None = None,
) -> tuple[ZkMigrationStatus, list[AuditEvent]]:
    events: list[AuditEvent] = []
    for _ in range(ticks):
        decision = step("move", spec, status, world.observe())
        world.apply(decision)
        events += audit_events(status, decision.status, spec, decided_by)
        status = decision.status
        if until(status):
            break
    return status, events


def test_a_manual_migration_says_what_was_approved_and_when_it_waits() -> None:
    world = World()
    manual = _spec(approval={"mode": "Manual", "approvedThroughPhase": 0})
    status, events = _run(world, manual, fresh(), 5)
    assert [(e.reason, e.message) for e in events] == [
        ("AwaitingApproval", "phase 1 waits for approval: set"
         " spec.approval.approvedThroughPhase to 1"),
    ]  # fmt: skip
    approved = _spec(approval={"mode": "Manual", "approvedThroughPhase": 1})
    status, events = _run(world, approved, status, 200)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Normal", "PhaseStarted", "phase 1 (SyncTarget) started (approved:"
         " spec.approval.approvedThroughPhase is 1)"),
        ("Normal", "PhaseSucceeded", "phase 1 (SyncTarget) succeeded"),
        ("Normal", "AwaitingApproval", "phase 2 waits for approval: set"
         " spec.approval.approvedThroughPhase to 2"),
    ]  # fmt: skip


def test_the_events_name_who_decided_when_the_migration_says_so() -> None:
    """The annotation orchestrator.dev/decided-by (only ever the requesting user: the
    admission policy, tests/integration/test_zkmigration_decided_by.py) names the approver
    of a phase and the one who asked for a rollback."""
    world = World()
    alice = "system:serviceaccount:shop:alice"
    approved = _spec(approval={"mode": "Manual", "approvedThroughPhase": 1})
    _, events = _run(world, approved, fresh(), 3, decided_by=alice)
    assert events[0] == AuditEvent(
        "Normal", "PhaseStarted", "phase 1 (SyncTarget) started (approved:"
        f" spec.approval.approvedThroughPhase is 1, set by {alice})",
    )  # fmt: skip
    world = World()
    status, _ = _run(world, _spec(), fresh(), 400, lambda s: s.phases[1].state == "Succeeded")
    _, events = _run(world, _spec(rollbackToPhase=0), status, 2, decided_by=alice)
    assert events[0] == AuditEvent(
        "Warning", "RollbackStarted",
        f"rolling back to phase 0 (spec.rollbackToPhase is 0, set by {alice})",
    )  # fmt: skip


def test_a_rollback_is_a_warning_naming_the_field_then_each_phase_undone() -> None:
    world = World()
    status, _ = _run(world, _spec(), fresh(), 400, lambda s: s.phases[3].state == "Succeeded")
    back = _spec(rollbackToPhase=0)
    status, events = _run(world, back, status, 400, lambda s: s.phase == "RolledBack")
    assert status.phase == "RolledBack"
    assert events[0] == AuditEvent(
        "Warning", "RollbackStarted", "rolling back to phase 0 (spec.rollbackToPhase is 0)"
    )
    undone = [e.message for e in events if e.reason == "PhaseRolledBack"]
    started = max(r.number for r in status.phases if r.state == "RolledBack")
    assert undone == [f"phase {n} ({status.phases[n - 1].name}) undone" for n in
                      range(started, 0, -1)]  # fmt: skip
    assert events[-1] == AuditEvent("Normal", "RolledBack", "rolled back")
    # nothing new while it stays there
    assert _run(world, back, status, 10)[1] == []


def test_a_failed_phase_and_a_failed_migration_are_warnings_with_the_reason() -> None:
    before = fresh()
    before.phases = [p.model_copy() for p in _run(World(), _spec(), fresh(), 3)[0].phases]
    after = before.model_copy(deep=True)
    after.phase = ZkMigrationPhase.FAILED
    after.checks = ["MesosCluster demo was deleted: the migration cannot go on"]
    running = next(r for r in after.phases if r.state == "Running")
    running.state, running.message = PhaseState.FAILED, "MesosCluster demo was deleted"
    events = audit_events(before, after, _spec())
    assert events == [
        AuditEvent("Warning", "PhaseFailed", f"phase {running.number} ({running.name}) failed:"
                   " MesosCluster demo was deleted"),
        AuditEvent("Warning", "Failed", "the migration failed: MesosCluster demo was deleted:"
                   " the migration cannot go on"),
    ]  # fmt: skip


def test_every_phase_of_a_migration_starts_and_succeeds_even_one_with_nothing_to_do() -> None:
    status, events = _run(World(), _spec(), fresh(), 400, lambda s: s.phase == "Succeeded")
    reasons = [e.reason for e in events]
    assert reasons == ["PhaseStarted", "PhaseSucceeded"] * 6 + ["Succeeded"], reasons
    assert [e.message for e in events if e.reason == "PhaseStarted"] == [
        f"phase {r.number} ({r.name}) started" for r in status.phases
    ]
