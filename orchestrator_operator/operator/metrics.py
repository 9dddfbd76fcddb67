"""The operator's Prometheus metrics (prefix `orchestrator_`, base units)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Also exported by the operator, defined where they are counted: readiness (the health
# server) and the requests its handlers send (the Kubernetes API client).
from orchestrator_operator.common.health_server import READY as READY
from orchestrator_operator.common.kube_api import KUBE_API_REQUESTS as KUBE_API_REQUESTS

RECONCILES = Counter(
    "orchestrator_reconcile_total",
    "Reconciliations handled, by kind and result (ok, invalid, error).",
    ["kind", "result"],
)
RECONCILE_SECONDS = Histogram(
    "orchestrator_reconcile_duration_seconds",
    "Time spent in one reconciliation, by kind.",
    ["kind"],
)
MESOS_CONDITION = Gauge(
    "orchestrator_mesoscluster_condition",
    "1 when the MesosCluster condition is True, 0 otherwise (ZookeeperReady, MastersReady,"
    " LeaderElected, AgentsReady, MarathonReady, Ready).",
    ["namespace", "name", "condition"],
)
MESOS_REPLICAS = Gauge(
    "orchestrator_mesoscluster_replicas",
    "Desired and ready members per component of a MesosCluster.",
    ["namespace", "name", "component", "state"],
)
MESOS_LEADER_CHANGES = Counter(
    "orchestrator_mesoscluster_leader_changes_total",
    "Times the leading Mesos master (lowest json.info_ in ZooKeeper) changed.",
    ["namespace", "name"],
)
MESOS_AGENTS_IN_MAINTENANCE = Gauge(
    "orchestrator_mesoscluster_agents_in_maintenance",
    "Agents of cordoned nodes, by maintenance state (Draining, Down).",
    ["namespace", "name", "state"],
)
MIGRATION_PHASE = Gauge(
    "orchestrator_zkmigration_phase",
    "The phase a ZkMigration works on (1-6; 0 before it starts), with its overall state"
    " (Pending, Running, AwaitingApproval, RollingBack, RolledBack, Succeeded) as a label"
    " whose series is 1 for the current state.",
    ["namespace", "name", "state"],
)
MIGRATION_PHASE_STARTED = Gauge(
    "orchestrator_zkmigration_phase_started_timestamp_seconds",
    "Unix time the current phase started (a stalled migration keeps an old one).",
    ["namespace", "name"],
)
MIGRATION_HOLDING_CHECKS = Gauge(
    "orchestrator_zkmigration_holding_checks",
    "Checks that currently hold a ZkMigration's phase (0: it moves on).",
    ["namespace", "name"],
)


def create_reconcile_series(kinds: list[str]) -> None:
    """Every kind's reconcile series at 0 from the start: `rate()` cannot see a counter's
    first increment when the series appears with it."""
    for kind in kinds:
        for result in ("ok", "invalid", "error"):
            RECONCILES.labels(kind, result)
        RECONCILE_SECONDS.labels(kind)
