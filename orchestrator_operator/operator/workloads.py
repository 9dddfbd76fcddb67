"""Pure: the few facts the operator needs from a StatefulSet, DaemonSet or Deployment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkloadSummary:
    desired: int
    ready: int
    updated: int
    generation: int | None
    observed_generation: int | None
    update_revision: str | None

    @property
    def settled(self) -> bool:
        """The workload controller has seen the latest spec."""
        return self.generation is not None and self.generation == self.observed_generation


def summarize(kind: str, body: Mapping[str, Any]) -> WorkloadSummary:
    spec, status = body.get("spec", {}), body.get("status", {})
    if kind == "DaemonSet":
        desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
        updated = status.get("updatedNumberScheduled", 0)
    else:
        desired, ready = spec.get("replicas", 0), status.get("readyReplicas", 0)
        updated = status.get("updatedReplicas", 0)
    return WorkloadSummary(
        desired=desired,
        ready=ready,
        updated=updated,
        generation=body.get("metadata", {}).get("generation"),
        observed_generation=status.get("observedGeneration"),
        update_revision=status.get("updateRevision"),
    )
