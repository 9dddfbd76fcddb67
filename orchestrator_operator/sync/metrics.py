"""Prometheus metrics of the sync engine (own registry, so several engines can coexist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lag = Histogram(
            "orchestrator_zk_sync_replication_lag_seconds",
            "From a change seen on one side (watch event) to its application on the other.",
            ["direction"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.operations = Counter(
            "orchestrator_zk_sync_operations_total",
            "Write operations applied, by type (create, set, set_acl, delete, sequence_bump) "
            "and direction.",
            ["op", "direction"],
            registry=r,
        )
        self.bytes = Counter(
            "orchestrator_zk_sync_bytes_total",
            "Znode data bytes written, by direction.",
            ["direction"],
            registry=r,
        )
        self.conflicts = Counter(
            "orchestrator_zk_sync_conflicts_total",
            "Conflicts (a znode changed on both sides), by resolution.",
            ["resolution"],
            registry=r,
        )
        self.errors = Counter(
            "orchestrator_zk_sync_errors_total",
            "Errors, by kind (unreadable, write_failed, connection, reconcile).",
            ["kind"],
            registry=r,
        )
        self.events = Counter(
            "orchestrator_zk_sync_watch_events_total",
            "Watch events received, by side.",
            ["side"],
            registry=r,
        )
        self.last_full_reconcile = Gauge(
            "orchestrator_zk_sync_last_full_reconcile_timestamp_seconds",
            "Unix time of the last completed full reconcile.",
            registry=r,
        )
        self.full_reconcile_duration = Histogram(
            "orchestrator_zk_sync_full_reconcile_duration_seconds",
            "Duration of full reconciles (read both sides, diff, repair).",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
            registry=r,
        )
        self.znodes = Gauge(
            "orchestrator_zk_sync_znodes",
            "Znodes under the synced paths at the last full reconcile, by side.",
            ["side"],
            registry=r,
        )
        self.pending = Gauge(
            "orchestrator_zk_sync_pending_changes",
            "Changes seen but not yet applied.",
            registry=r,
        )
        self.manual_conflicts = Gauge(
            "orchestrator_zk_sync_unresolved_conflicts",
            "Conflicts recorded for a person (manual strategy) and not resolved yet.",
            registry=r,
        )
        self.connected = Gauge(
            "orchestrator_zk_sync_connected",
            "1 when the engine's session with that side is connected.",
            ["side"],
            registry=r,
        )
        self.acl_sweep_seconds = Gauge(
            "orchestrator_zk_sync_acl_sweep_seconds",
            "Time the last complete sweep of a side's ACL versions took: ZooKeeper fires no"
            " watch for setACL, so an ACL change is replicated within about this long.",
            ["side"],
            registry=r,
        )
        self.bootstrap_znodes_per_second = Gauge(
            "orchestrator_zk_sync_bootstrap_znodes_per_second",
            "Throughput of the initial copy (znodes read and written per second).",
            registry=r,
        )
