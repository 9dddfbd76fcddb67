"""Indexes of the workloads the operator manages, kept current by Kopf's watches.

The observers read children's health from here instead of asking the API server on every
tick: with a hundred clusters that is the difference between a quiet API server and
hundreds of GETs a second.
"""

from __future__ import annotations

from typing import Any

import kopf

from orchestrator_operator.operator.builders.meta import MANAGED_BY
from orchestrator_operator.operator.workloads import WorkloadSummary, summarize

OURS = {"app.kubernetes.io/managed-by": MANAGED_BY}
Key = tuple[str, str]  # (namespace, name)


@kopf.index("apps", "v1", "statefulsets", labels=OURS)
def statefulsets(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, WorkloadSummary]:
    return {(namespace or "", name): summarize("StatefulSet", body)}


@kopf.index("apps", "v1", "daemonsets", labels=OURS)
def daemonsets(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, WorkloadSummary]:
    return {(namespace or "", name): summarize("DaemonSet", body)}


@kopf.index("apps", "v1", "deployments", labels=OURS)
def deployments(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, WorkloadSummary]:
    return {(namespace or "", name): summarize("Deployment", body)}


class Workloads:
    """Lookups over the three indexes Kopf passes to every handler."""

    def __init__(self, handler_kwargs: dict[str, Any]) -> None:
        self._by_kind: dict[str, kopf.Index[Key, WorkloadSummary]] = {
            "StatefulSet": handler_kwargs["statefulsets"],
            "DaemonSet": handler_kwargs["daemonsets"],
            "Deployment": handler_kwargs["deployments"],
        }

    def get(self, kind: str, namespace: str, name: str) -> WorkloadSummary | None:
        store = self._by_kind[kind].get((namespace, name))
        return next(iter(store), None) if store is not None else None
