"""MesosCluster: a ZooKeeper ensemble, HA Mesos masters, Mesos agents and Marathon."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from orchestrator_operator.models.base import (
    Component,
    ImageName,
    ImageVersion,
    Model,
    ObjectName,
    ResourceRequirements,
    ResourceStatus,
    SecretKeyRef,
    StatusModel,
    Storage,
    Toleration,
    ZkPath,
    ZooKeeperEndpoint,
    cel_rule,
)
from orchestrator_operator.models.vocabulary import MaintenanceState, WorkloadPhase

Containerizer = Literal["docker", "mesos"]
Isolator = Literal[
    "cgroups/cpu",
    "cgroups/mem",
    "cgroups/blkio",
    "cgroups/devices",
    "cgroups/pids",
    "cgroups/net_cls",
    "cgroups/perf_event",
    "disk/du",
    "docker/runtime",
    "docker/volume",
    "filesystem/linux",
    "filesystem/shared",
    "namespaces/pid",
    "namespaces/ipc",
    "network/cni",
    "posix/cpu",
    "posix/mem",
]


DEFAULT_CONTAINERIZERS: list[Containerizer] = ["docker", "mesos"]
DEFAULT_ISOLATION: list[Isolator] = ["cgroups/cpu", "cgroups/mem"]


class ZooKeeperSpec(Model):
    """A managed ensemble (replicas, image, storage) or an external one, not both."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.replicas) || self.replicas % 2 == 1",
                    "zookeeper.replicas must be odd (1, 3, 5 or 7) so that a majority survives"
                    " the loss of a member",
                    ".replicas",
                ),
                cel_rule(
                    "!(has(self.external) && has(self.replicas))",
                    "set either zookeeper.replicas (a managed ensemble) or"
                    " zookeeper.external.connectString, not both",
                    ".external",
                ),
            ]
        }
    )

    replicas: Annotated[int, Field(ge=1, le=7)] | None = Field(
        default=None, description="Members of the managed ensemble (odd). Default 3."
    )
    image: ImageName = "zookeeper"
    version: ImageVersion = "3.8.4"
    resources: ResourceRequirements | None = None
    storage: Storage = Field(default_factory=Storage)
    external: ZooKeeperEndpoint | None = None

    @property
    def managed_replicas(self) -> int:
        return 0 if self.external else (self.replicas or 3)


class MastersSpec(Component):
    """Mesos masters: a StatefulSet electing its leader through ZooKeeper."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.quorum) || (self.quorum * 2 > self.replicas"
                    " && self.quorum <= self.replicas)",
                    "masters.quorum must be a majority of masters.replicas"
                    " (more than half of them, and no more than all)",
                    ".quorum",
                ),
            ]
        }
    )

    image: ImageName = "mesosphere/mesos-master"
    version: ImageVersion = "1.11.0"
    replicas: Annotated[int, Field(ge=1, le=7)] = Field(default=3, json_schema_extra={"default": 3})
    quorum: Annotated[int, Field(ge=1, le=7)] | None = Field(
        default=None,
        description="Replicated log quorum; a majority of replicas. Default: computed.",
    )
    zk_path: ZkPath = "/mesos"
    storage: Storage = Field(default_factory=Storage, description="work_dir (replicated log).")
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the framework/agent credentials file."
    )

    @property
    def effective_quorum(self) -> int:
        return self.quorum or self.replicas // 2 + 1


class AgentResources(Model):
    """Resources an agent offers to Mesos (its --resources flag); unset means auto-detect."""

    cpus: Annotated[float, Field(gt=0, le=4096)] | None = None
    mem_mb: Annotated[int, Field(gt=0)] | None = None
    disk_mb: Annotated[int, Field(gt=0)] | None = None
    ports: Annotated[str, Field(pattern=r"^\[[0-9]+-[0-9]+(,\s*[0-9]+-[0-9]+)*\]$")] | None = None


class AgentsSpec(Component):
    """Mesos agents: a DaemonSet with the Docker containerizer and cgroups isolation."""

    image: ImageName = "mesosphere/mesos-slave"
    version: ImageVersion = "1.11.0"
    containerizers: Annotated[list[Containerizer], Field(min_length=1, max_length=2)] = Field(
        default_factory=lambda: list(DEFAULT_CONTAINERIZERS),
        json_schema_extra={"default": ["docker", "mesos"], "x-kubernetes-list-type": "set"},
    )
    isolation: Annotated[list[Isolator], Field(max_length=17)] = Field(
        default_factory=lambda: list(DEFAULT_ISOLATION),
        json_schema_extra={
            "default": ["cgroups/cpu", "cgroups/mem"],
            "x-kubernetes-list-type": "set",
        },
    )
    offered: AgentResources = Field(
        default_factory=AgentResources, description="Resources offered to Mesos frameworks."
    )
    attributes: dict[str, Annotated[str, Field(max_length=253)]] = Field(default_factory=dict)
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(default_factory=dict)
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)
    work_dir: Annotated[str, Field(pattern=r"^(/[^/\s]+)+$", max_length=512)] = Field(
        default="/var/lib/mesos/agent",
        description="Host path for work_dir and checkpoints, so tasks survive a pod restart.",
    )
    max_unavailable: Annotated[int, Field(ge=1)] = 1
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=5051,
        description="Agent port on the node's network; two clusters sharing nodes need two ports.",
    )


class MarathonSpec(Component):
    """Marathon in HA: several replicas electing a leader in ZooKeeper."""

    image: ImageName = "mesosphere/marathon"
    version: ImageVersion = "1.11.24"
    replicas: Annotated[int, Field(ge=0, le=5)] = Field(default=2, json_schema_extra={"default": 2})
    zk_path: ZkPath = "/marathon"
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding 'user:password' for Marathon's HTTP API."
    )


IpAddress = Annotated[
    str,
    Field(pattern=r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$", max_length=45),
]
DnsDomain = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    ),
]


class MesosDnsSpec(Component):
    """Mesos-DNS: DNS names for Mesos tasks, read from the leader it finds in ZooKeeper."""

    enabled: bool = False
    image: ImageName = "mesosphere/mesos-dns"
    version: ImageVersion = "v0.9.0"
    replicas: Annotated[int, Field(ge=1, le=10)] = Field(
        default=2, json_schema_extra={"default": 2}
    )
    domain: DnsDomain = Field(default="mesos", description="The domain Mesos-DNS answers for.")
    resolvers: Annotated[list[IpAddress], Field(max_length=8)] = Field(
        default_factory=list,
        description="Upstream DNS servers for other names; empty: the pod's own nameserver.",
    )
    refresh_seconds: Annotated[int, Field(ge=5, le=3600)] = Field(
        default=60, description="How often the records are rebuilt from the leading master."
    )


class PortRange(Model):
    """Inclusive range of ports."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.end >= self.start && self.end - self.start < 256",
                    "servicePorts: end must be at least start, and the range at most 256 ports",
                    ".end",
                ),
            ]
        }
    )

    start: Annotated[int, Field(ge=1, le=65535)]
    end: Annotated[int, Field(ge=1, le=65535)]


class MarathonLbSpec(Component):
    """marathon-lb: HAProxy configured from Marathon's apps (those labelled with its group)."""

    enabled: bool = False
    image: ImageName = "mesosphere/marathon-lb"
    version: ImageVersion = "v1.15.0"
    replicas: Annotated[int, Field(ge=1, le=10)] = Field(
        default=2, json_schema_extra={"default": 2}
    )
    group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$", max_length=63)] = Field(
        default="external", description="HAPROXY_GROUP of the Marathon apps it exposes."
    )
    service_ports: PortRange = Field(
        default_factory=lambda: PortRange(start=10000, end=10100),
        json_schema_extra={"default": {"start": 10000, "end": 10100}},
        description="Marathon service ports HAProxy binds, exposed on the Service.",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Type of the marathon-lb Service."
    )


class AddonsSpec(Model):
    """Optional parts; an addon set to `enabled: false` has its objects deleted."""

    mesos_dns: MesosDnsSpec = Field(default_factory=MesosDnsSpec)
    marathon_lb: MarathonLbSpec = Field(default_factory=MarathonLbSpec)


class MesosClusterSpec(Model):
    """Desired state of a Mesos platform."""

    zookeeper: ZooKeeperSpec = Field(
        default_factory=ZooKeeperSpec, json_schema_extra={"default": {}}
    )
    masters: MastersSpec = Field(default_factory=MastersSpec, json_schema_extra={"default": {}})
    agents: AgentsSpec = Field(default_factory=AgentsSpec, json_schema_extra={"default": {}})
    marathon: MarathonSpec = Field(default_factory=MarathonSpec, json_schema_extra={"default": {}})
    addons: AddonsSpec = Field(default_factory=AddonsSpec)
    pvc_retention_policy: Literal["Retain", "Delete"] = Field(
        default="Retain", description="What happens to the PVCs when the MesosCluster is deleted."
    )
    service_account_name: ObjectName | None = None


class ComponentStatus(StatusModel):
    desired: int = 0
    ready: int = 0


class MesosRuntimeStatus(StatusModel):
    """What the leading master reports in /metrics/snapshot."""

    agents_active: int = 0
    frameworks_active: int = 0
    tasks_running: int = 0


class MaintenanceEntry(StatusModel):
    """A cordoned node whose Mesos agent is being drained (or is down) for maintenance."""

    node: str
    state: MaintenanceState
    tasks: int = 0


class MesosClusterStatus(ResourceStatus):
    """Observed state; conditions per component, the leading master read from ZooKeeper."""

    phase: WorkloadPhase | None = None
    zookeeper_connect_string: str | None = None
    leading_master: str | None = None
    zookeeper: ComponentStatus | None = None
    masters: ComponentStatus | None = None
    agents: ComponentStatus | None = None
    marathon: ComponentStatus | None = None
    mesos: MesosRuntimeStatus | None = None
    rollout: str | None = None
    maintenance: list[MaintenanceEntry] | None = None
