"""Mirror a ZkMigration's status into Prometheus gauges (dashboards and the stalled alert)."""

from __future__ import annotations

import contextlib

from orchestrator_operator.models.vocabulary import ZkMigrationPhase
from orchestrator_operator.models.zkmigration import ZkMigrationStatus
from orchestrator_operator.operator.metrics import (
    MIGRATION_HOLDING_CHECKS,
    MIGRATION_PHASE,
    MIGRATION_PHASE_STARTED,
)

STATES = tuple(phase for phase in ZkMigrationPhase if phase != ZkMigrationPhase.INVALID)


def export_status(namespace: str, name: str, status: ZkMigrationStatus) -> None:
    phase = status.current_phase or 0
    for state in STATES:
        MIGRATION_PHASE.labels(namespace, name, state).set(phase if state == status.phase else 0)
    record = next((r for r in status.phases if r.number == phase), None)
    if record is not None and record.started_at is not None:
        MIGRATION_PHASE_STARTED.labels(namespace, name).set(record.started_at.timestamp())
    MIGRATION_HOLDING_CHECKS.labels(namespace, name).set(len(status.checks))


def forget(namespace: str, name: str) -> None:
    series = [
        *((MIGRATION_PHASE, (namespace, name, state)) for state in STATES),
        (MIGRATION_PHASE_STARTED, (namespace, name)),
        (MIGRATION_HOLDING_CHECKS, (namespace, name)),
    ]
    for metric, labels in series:
        with contextlib.suppress(KeyError):
            metric.remove(*labels)
