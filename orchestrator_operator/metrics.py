"""The operator's Prometheus metrics (prefix `orchestrator_`, base units)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
READY = Gauge("orchestrator_operator_ready", "1 once the operator has started and found its CRDs.")
KUBE_API_REQUESTS = Counter(
    "orchestrator_kube_api_requests_total",
    "Requests the handlers sent to the Kubernetes API, by verb and kind (the operator's own"
    " watches are not counted).",
    ["verb", "kind"],
)
