"""Every child object of a MesosCluster, in the order they should be applied."""

from __future__ import annotations

from ..models.mesoscluster import MesosClusterSpec
from . import agents, marathon, masters, zookeeper
from .meta import Manifest, Owner


def build_children(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    """ZooKeeper first (the others need it), then masters, agents and Marathon."""
    return [
        *zookeeper.build(owner, spec),
        *masters.build(owner, spec),
        *agents.build(owner, spec),
        *marathon.build(owner, spec),
    ]


def stale_children(owner: Owner, spec: MesosClusterSpec) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of children an earlier spec may have made that this one does
    not want: today, the managed ensemble once the cluster moves to an external one."""
    wanted = {(c["kind"], c["metadata"]["name"]) for c in build_children(owner, spec)}
    managed = spec.model_copy(
        update={"zookeeper": spec.zookeeper.model_copy(update={"external": None})}
    )
    return [
        (c["apiVersion"], c["kind"], c["metadata"]["name"])
        for c in zookeeper.build(owner, managed)
        if (c["kind"], c["metadata"]["name"]) not in wanted
    ]
