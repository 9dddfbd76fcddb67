"""A MarathonApp's status as Prometheus series (what dashboards and alerts read)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge

from orchestrator_operator.models.vocabulary import ConditionType

STATES = ("desired", "staged", "running", "healthy", "unhealthy")
CONDITIONS = (
    ConditionType.ACCEPTED,
    ConditionType.AVAILABLE,
    ConditionType.PROGRESSING,
    ConditionType.DEGRADED,
)

INSTANCES = Gauge(
    "orchestrator_marathonapp_instances",
    "A MarathonApp's instances in Marathon by state (desired: what the operator asks for;"
    " staged, running, healthy, unhealthy: Marathon's task counts).",
    ["namespace", "name", "state"],
)
DEPLOYMENT_IN_PROGRESS = Gauge(
    "orchestrator_marathonapp_deployment_in_progress",
    "1 while a Marathon deployment of the app runs.",
    ["namespace", "name"],
)
FLAPPING = Gauge(
    "orchestrator_marathonapp_flapping",
    "1 while Marathon delays the app's launches because its tasks keep failing.",
    ["namespace", "name"],
)
RELAUNCHES = Gauge(
    "orchestrator_marathonapp_relaunches",
    "Failed tasks of the app Marathon relaunched, as the operator has seen them.",
    ["namespace", "name"],
)
CONDITION = Gauge(
    "orchestrator_marathonapp_condition",
    "1 when the MarathonApp condition is True, 0 otherwise (Accepted, Available, Progressing,"
    " Degraded).",
    ["namespace", "name", "condition"],
)
DRIFT_REVERTED = Counter(
    "orchestrator_marathonapp_drift_reverted_total",
    "Times a change made in Marathon behind the spec's back was put back (drift: Revert).",
    ["namespace", "name"],
)
DRIFT_DETECTED = Gauge(
    "orchestrator_marathonapp_drift_detected",
    "1 while Marathon runs something else than the spec (drift: Report keeps it so).",
    ["namespace", "name"],
)


def export_status(namespace: str, name: str, status: Mapping[str, Any], desired: int) -> None:
    marathon = status.get("marathon") or {}
    INSTANCES.labels(namespace, name, "desired").set(desired)
    for state in STATES[1:]:
        INSTANCES.labels(namespace, name, state).set(int(marathon.get(state) or 0))
    DEPLOYMENT_IN_PROGRESS.labels(namespace, name).set(1 if marathon.get("deployment") else 0)
    FLAPPING.labels(namespace, name).set(1 if marathon.get("flapping") else 0)
    RELAUNCHES.labels(namespace, name).set(int(marathon.get("relaunches") or 0))
    DRIFT_DETECTED.labels(namespace, name).set(
        1 if (status.get("drift") or {}).get("detected") else 0
    )
    for condition in status.get("conditions") or []:
        if condition.get("type") in CONDITIONS:
            value = 1 if condition.get("status") == "True" else 0
            CONDITION.labels(namespace, name, condition["type"]).set(value)


def drift_reverted(namespace: str, name: str) -> None:
    DRIFT_REVERTED.labels(namespace, name).inc()


def forget(namespace: str, name: str) -> None:
    """Drop a deleted app's series so dashboards do not show ghosts."""
    series: list[tuple[Any, tuple[str, ...]]] = [
        *((INSTANCES, (namespace, name, state)) for state in STATES),
        *((CONDITION, (namespace, name, c)) for c in CONDITIONS),
        *(
            (metric, (namespace, name))
            for metric in (
                DEPLOYMENT_IN_PROGRESS, FLAPPING, RELAUNCHES, DRIFT_REVERTED, DRIFT_DETECTED,
            )
        ),
    ]  # fmt: skip
    for metric, labels in series:
        with contextlib.suppress(KeyError):
            metric.remove(*labels)
