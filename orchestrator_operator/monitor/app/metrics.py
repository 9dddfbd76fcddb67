"""Prometheus metrics of the monitoring app (``orchestrator_monitor_`` prefix, own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REJECT_REASONS = (
    "unauthorized",
    "too_large",
    "bad_encoding",
    "malformed",
    "invalid",
    "too_many_probes",
)


class AppMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reports = Counter(
            "orchestrator_monitor_reports", "Probe reports accepted and merged.", registry=r
        )
        self.rejected = Counter(
            "orchestrator_monitor_reports_rejected",
            "Probe reports refused with a 4xx, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        self.report_bytes = Counter(
            "orchestrator_monitor_report_bytes",
            "Bytes of accepted reports as received (compressed).",
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "orchestrator_monitor_ingest_duration_seconds",
            "Time to decode, validate and merge one report.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.probes = Gauge(
            "orchestrator_monitor_probes", "Probes with an unexpired report.", registry=r
        )
        self.probes_expired = Counter(
            "orchestrator_monitor_probes_expired", "Probes dropped for not reporting.", registry=r
        )
        self.control_channels = Gauge(
            "orchestrator_monitor_control_channels",
            "Probes with an open control channel.",
            registry=r,
        )
        self.nodes = Gauge(
            "orchestrator_monitor_topology_nodes", "Nodes per topology.", ["topology"], registry=r
        )
        self.websockets = Gauge(
            "orchestrator_monitor_websocket_clients", "Open topology WebSockets.", registry=r
        )
        self.diffs = Counter(
            "orchestrator_monitor_websocket_diffs", "Diff messages sent to viewers.", registry=r
        )
        self.controls = Counter(
            "orchestrator_monitor_controls",
            "Container controls forwarded to probes, by action and result.",
            ["action", "result"],
            registry=r,
        )
