"""Pure: the audit trail of a ZkMigration, from the status before a tick and the status after.

Each phase started, finished, failed or undone, a rollback begun, an approval awaited or the
migration ended is one Kubernetes Event on the ZkMigration (handlers.py posts them and writes
the same lines to the `orchestrator.operator.audit` logger). An Event says what happened and which
spec field made it happen (`spec.approval.approvedThroughPhase`, `spec.rollbackToPhase`)
and, when the migration carries the annotation orchestrator.dev/decided-by, who set it: the
admission policy of k8s/admission lets that annotation name only the user making the request
(docs/security.md, "Who decided"). Without it, who is in the API server's audit log only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator_operator.models.vocabulary import ZkMigrationPhase
from orchestrator_operator.models.vocabulary import ZkMigrationPhaseState as State
from orchestrator_operator.models.zkmigration import PhaseRecord, ZkMigrationSpec, ZkMigrationStatus


@dataclass(frozen=True)
class AuditEvent:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def _phase(record: PhaseRecord) -> str:
    return f"phase {record.number} ({record.name})"


def _by(decided_by: str | None) -> str:
    return f", set by {decided_by}" if decided_by else ""


def _phase_events(
    before: ZkMigrationStatus,
    after: ZkMigrationStatus,
    spec: ZkMigrationSpec,
    decided_by: str | None,
) -> list[AuditEvent]:
    out: list[AuditEvent] = []
    old = {r.number: r.state for r in before.phases}
    manual = spec.approval.mode == "Manual"
    for record in after.phases:
        was = old.get(record.number, State.PENDING)
        if record.state == was:
            continue
        what = _phase(record)
        # a phase with nothing to do starts and ends in one tick: it was started all the same
        started = record.state == State.RUNNING or (
            was == State.PENDING and record.state in (State.SUCCEEDED, State.FAILED)
        )
        if started and after.rolling_back and record.state == State.RUNNING:
            out.append(AuditEvent("Normal", "PhaseUndoing", f"undoing {what}"))
        elif started:
            approved = (
                f" (approved: spec.approval.approvedThroughPhase is"
                f" {spec.approval.approved_through_phase}{_by(decided_by)})"
                if manual
                else ""
            )
            out.append(AuditEvent("Normal", "PhaseStarted", f"{what} started{approved}"))
        if record.state == State.SUCCEEDED:
            out.append(AuditEvent("Normal", "PhaseSucceeded", f"{what} succeeded"))
        elif record.state == State.ROLLED_BACK:
            out.append(AuditEvent("Normal", "PhaseRolledBack", f"{what} undone"))
        elif record.state == State.FAILED:
            why = f": {record.message}" if record.message else ""
            out.append(AuditEvent("Warning", "PhaseFailed", f"{what} failed{why}"))
    return out


def audit_events(
    before: ZkMigrationStatus,
    after: ZkMigrationStatus,
    spec: ZkMigrationSpec,
    decided_by: str | None = None,
) -> list[AuditEvent]:
    """What changed between two statuses, as the Events a person auditing the migration
    reads; `decided_by`: the migration's DECIDED_BY_ANNOTATION, if any."""
    out: list[AuditEvent] = []
    if after.rolling_back and not before.rolling_back:
        target = spec.rollback_to_phase
        to = f" to phase {target}" if target is not None else ""
        out.append(
            AuditEvent(
                "Warning",
                "RollbackStarted",
                f"rolling back{to} (spec.rollbackToPhase is {target}{_by(decided_by)})",
            )
        )
    out += _phase_events(before, after, spec, decided_by)
    if after.phase != before.phase:
        if after.phase == ZkMigrationPhase.AWAITING_APPROVAL:
            following = (after.current_phase or 0) + 1
            waiting = next((r for r in after.phases if r.state == State.PENDING), None)
            number = waiting.number if waiting is not None else following
            out.append(
                AuditEvent(
                    "Normal",
                    "AwaitingApproval",
                    f"phase {number} waits for approval: set spec.approval.approvedThroughPhase"
                    f" to {number}",
                )
            )
        elif after.phase == ZkMigrationPhase.SUCCEEDED:
            out.append(AuditEvent("Normal", "Succeeded", "the cluster runs on the target ensemble"))
        elif after.phase == ZkMigrationPhase.ROLLED_BACK:
            out.append(AuditEvent("Normal", "RolledBack", "rolled back"))
        elif after.phase == ZkMigrationPhase.FAILED:
            why = f": {after.checks[0]}" if after.checks else ""
            out.append(AuditEvent("Warning", "Failed", f"the migration failed{why}"))
    return out
