"""The sync controller's /metrics: every engine keeps its own registry (zk/metrics.py, the
same names as ``zk-sync run``); this collector exposes all of them with two more labels,
``namespace`` and ``migration`` (the ZkMigration's name)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from orchestrator_operator.sync.controller.status import Key

MIGRATION_LABELS = ("namespace", "migration")


class PerMigrationCollector(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registries: dict[Key, CollectorRegistry] = {}

    def add(self, key: Key, registry: CollectorRegistry) -> None:
        with self._lock:
            self._registries[key] = registry

    def remove(self, key: Key, registry: CollectorRegistry) -> None:
        with self._lock:
            if self._registries.get(key) is registry:
                del self._registries[key]

    def describe(self) -> Iterable[Metric]:
        return []  # names vary with the engines; no collision check at registration

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            registries = sorted(self._registries.items())
        merged: dict[str, Metric] = {}
        for (namespace, name), registry in registries:
            for family in registry.collect():
                out = merged.get(family.name)
                if out is None:
                    out = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = out
                for sample in family.samples:
                    labels = {"namespace": namespace, "migration": name, **sample.labels}
                    out.add_sample(
                        sample.name, labels, sample.value, sample.timestamp, sample.exemplar
                    )
        return list(merged.values())


def controller_gauge(registry: CollectorRegistry = REGISTRY) -> Gauge:
    """Migrations the controller runs an engine for, by the state it reports."""
    return Gauge(
        "orchestrator_zk_sync_controller_migrations",
        "ZkMigrations with an engine in this sync controller, by state"
        " (Starting, Running, Retrying, Failed, Stopping).",
        ["state"],
        registry=registry,
    )
