"""Pydantic models: the single source of truth for every CRD schema."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from orchestrator_operator.models.base import API_GROUP, API_VERSION
from orchestrator_operator.models.marathonapp import MarathonAppSpec, MarathonAppStatus
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
class ScaleSubresource:
    """The CRD's `scale` subresource (`kubectl scale`, autoscalers): JSON paths."""

    spec_replicas_path: str
    status_replicas_path: str


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
    scale: ScaleSubresource | None = None

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

MARATHON_APP = ResourceKind(
    kind="MarathonApp",
    plural="marathonapps",
    short_names=("mapp",),
    spec=MarathonAppSpec,
    status=MarathonAppStatus,
    description="A Marathon application of a MesosCluster, kept as git says.",
    columns=(
        PrinterColumn("Cluster", ".spec.cluster"),
        PrinterColumn("App", ".spec.app.id"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Instances", ".spec.app.instances", "integer"),
        PrinterColumn("Running", ".status.marathon.running", "integer"),
        PrinterColumn("Healthy", ".status.marathon.healthy", "integer"),
        PrinterColumn("Version", ".status.marathon.version", priority=1),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
    scale=ScaleSubresource(".spec.app.instances", ".status.marathon.running"),
)

KINDS: tuple[ResourceKind, ...] = (MESOS_CLUSTER, ZK_MIGRATION, PROBE_FLEET, MARATHON_APP)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CATEGORY",
    "KINDS",
    "MARATHON_APP",
    "MESOS_CLUSTER",
    "PROBE_FLEET",
    "ZK_MIGRATION",
    "PrinterColumn",
    "ResourceKind",
    "ScaleSubresource",
]
