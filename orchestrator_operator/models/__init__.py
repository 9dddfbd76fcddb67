"""Pydantic models: the single source of truth for every CRD schema."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from orchestrator_operator.models.base import API_GROUP, API_VERSION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec, MesosClusterStatus
from orchestrator_operator.models.probefleet import ProbeFleetSpec, ProbeFleetStatus
from orchestrator_operator.models.zkmigration import ZkMigrationSpec, ZkMigrationStatus


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0


@dataclass(frozen=True)
class ResourceKind:
    """Everything the CRD of one kind needs besides its schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[PrinterColumn, ...]
    description: str

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{API_GROUP}"

    @property
    def api_version(self) -> str:
        return f"{API_GROUP}/{API_VERSION}"


CATEGORY = "orchestrator"

MESOS_CLUSTER = ResourceKind(
    kind="MesosCluster",
    plural="mesosclusters",
    short_names=("mesos", "mc"),
    spec=MesosClusterSpec,
    status=MesosClusterStatus,
    description="A Mesos platform: ZooKeeper, HA Mesos masters, Mesos agents and Marathon.",
    columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Masters", ".spec.masters.replicas", "integer"),
        PrinterColumn("Leader", ".status.leadingMaster"),
        PrinterColumn("Agents", ".status.agents.ready", "integer"),
        PrinterColumn("ZooKeeper", ".status.zookeeperConnectString", priority=1),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)

ZK_MIGRATION = ResourceKind(
    kind="ZkMigration",
    plural="zkmigrations",
    short_names=("zkm",),
    spec=ZkMigrationSpec,
    status=ZkMigrationStatus,
    description="Moves a live MesosCluster from one ZooKeeper ensemble to another.",
    columns=(
        PrinterColumn("Cluster", ".spec.clusterRef"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Step", ".status.currentPhase", "integer"),
        PrinterColumn("Lag", ".status.sync.lagP99Seconds", "number"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)

PROBE_FLEET = ResourceKind(
    kind="ProbeFleet",
    plural="probefleets",
    short_names=("pf",),
    spec=ProbeFleetSpec,
    status=ProbeFleetStatus,
    description="Scope-like monitoring: probes on every node and an app that merges them.",
    columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Reporting", ".status.probesReporting", "integer"),
        PrinterColumn("Expected", ".status.probesExpected", "integer"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)

KINDS: tuple[ResourceKind, ...] = (MESOS_CLUSTER, ZK_MIGRATION, PROBE_FLEET)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CATEGORY",
    "KINDS",
    "MESOS_CLUSTER",
    "PROBE_FLEET",
    "ZK_MIGRATION",
    "PrinterColumn",
    "ResourceKind",
]
