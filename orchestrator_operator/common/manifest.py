"""The Kubernetes object as the programs pass it around, and who owns it.

One definition each: `Manifest` (a Kubernetes object as a JSON-like dict), `Owner` (the
custom resource that owns children) and `owner_reference` (the controller reference that
lets garbage collection delete a child with its owner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator_operator.models import MESOS_CLUSTER

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Owner:
    """The custom resource that owns the children: what owner references and labels need."""

    name: str
    namespace: str
    uid: str
    kind: str = MESOS_CLUSTER.kind
    api_version: str = MESOS_CLUSTER.api_version
    part_of: str = "mesos"

    def child_name(self, component: str) -> str:
        return f"{self.name}-{component}"


def owner_reference(owner: Owner) -> Manifest:
    """The controller reference to `owner` (garbage collection deletes the child with it)."""
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Manifest | None, uid: str) -> bool:
    """`obj` exists and `uid` is among its owner references."""
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)
