"""Mirror a MesosCluster's status into Prometheus gauges (what dashboards and alerts read)."""

from __future__ import annotations

import contextlib
from typing import Any

from orchestrator_operator.models.vocabulary import ConditionType, MaintenanceState
from orchestrator_operator.operator.mesoscluster.status import COMPONENT_CONDITIONS as CONDITIONS
from orchestrator_operator.operator.metrics import (
    MESOS_AGENTS_IN_MAINTENANCE,
    MESOS_CONDITION,
    MESOS_LEADER_CHANGES,
    MESOS_REPLICAS,
)

COMPONENTS = ("zookeeper", "masters", "agents", "marathon")


def export_status(
    namespace: str, name: str, status: dict[str, Any], previous_leader: str | None
) -> None:
    for condition in status.get("conditions") or []:
        value = 1 if condition["status"] == "True" else 0
        MESOS_CONDITION.labels(namespace, name, condition["type"]).set(value)
    for component in COMPONENTS:
        counts = status.get(component) or {}
        for state in ("desired", "ready"):
            MESOS_REPLICAS.labels(namespace, name, component, state).set(counts.get(state, 0))
    leader = status.get("leadingMaster")
    if leader and previous_leader and leader != previous_leader:
        MESOS_LEADER_CHANGES.labels(namespace, name).inc()
    entries = status.get("maintenance") or []
    for state in MaintenanceState:
        count = sum(1 for entry in entries if entry.get("state") == state)
        MESOS_AGENTS_IN_MAINTENANCE.labels(namespace, name, state).set(count)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted cluster's series so dashboards do not show ghosts."""
    series = [
        *(
            (MESOS_CONDITION, (namespace, name, c))
            for c in (*CONDITIONS, ConditionType.ACCEPTED, ConditionType.READY)
        ),
        *(
            (MESOS_REPLICAS, (namespace, name, component, state))
            for component in COMPONENTS
            for state in ("desired", "ready")
        ),
        *((MESOS_AGENTS_IN_MAINTENANCE, (namespace, name, s)) for s in MaintenanceState),
        (MESOS_LEADER_CHANGES, (namespace, name)),
    ]
    for metric, labels in series:
        with contextlib.suppress(KeyError):  # never set for this cluster
            metric.remove(*labels)
