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
