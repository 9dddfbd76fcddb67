"""MesosCluster: a ZooKeeper ensemble, HA Mesos masters, Mesos agents and Marathon."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from orchestrator_operator.models.base import (
    Cidr,
    Component,
    ImageDigest,
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
    image_ref,
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


MASTERS_ODD_MESSAGE = (
    "masters.replicas must be odd (1, 3, 5 or 7): Mesos initializes a fresh replicated log"
    " only when all 2*quorum-1 replicas answer, so an even count never starts"
)
MASTERS_QUORUM_MESSAGE = (
    "masters.quorum must be floor(masters.replicas/2)+1 (2 for 3 masters, 3 for 5, 4 for 7),"
    " or left out: it is derived; a larger quorum never initializes a fresh replicated log"
)
ISOLATION_FILESYSTEM_MESSAGE = (
    "agents.isolation: filesystem/linux and filesystem/shared cannot be used together"
    " (Mesos allows one filesystem isolator)"
)
ISOLATION_NAMESPACES_MESSAGE = (
    "agents.isolation: namespaces/pid and namespaces/ipc need filesystem/linux"
)
ISOLATION_DVDCLI_MESSAGE = (
    "agents.isolation: docker/volume needs the dvdcli binary on the agent's PATH, which the"
    " mesosphere/mesos-slave image does not ship: set agents.image to an image that has it"
)
ATTRIBUTES_MESSAGE = (
    "agents.attributes: names must not be empty nor contain ':', ';' or a newline, and values"
    " must not be empty, contain ';' or a newline, nor start with '{' (Mesos reads"
    " --attributes as name:value pairs separated by ';' and has no set attributes)"
)
AGENT_CREDENTIAL_MESSAGE = (
    "agents.credentialSecretRef is required when masters.credentialsSecretRef is set (the"
    " masters then refuse agents that do not authenticate), and is only used then"
)
MARATHON_AUTH_MESSAGE = (
    "marathon.mesosAuthentication is required when masters.credentialsSecretRef is set (the"
    " masters then refuse frameworks that do not authenticate), and is only used then"
)
MESOS_DNS_ZK_AUTH_MESSAGE = (
    "addons.mesosDns cannot be enabled with zookeeper.external.authSecretRef: its config.json"
    " would have to hold the ZooKeeper password, so the operator does not build it"
)
DEFAULT_AGENT_IMAGE = "mesosphere/mesos-slave"


def isolation_problem(isolation: list[str], image: str) -> str | None:
    """Why Mesos 1.11 refuses this --isolation, or None (the rules of
    src/slave/containerizer/mesos/containerizer.cpp and the isolators' create())."""
    chosen = set(isolation)
    if {"filesystem/linux", "filesystem/shared"} <= chosen:
        return ISOLATION_FILESYSTEM_MESSAGE
    if chosen & {"namespaces/pid", "namespaces/ipc"} and "filesystem/linux" not in chosen:
        return ISOLATION_NAMESPACES_MESSAGE
    if "docker/volume" in chosen and image == DEFAULT_AGENT_IMAGE:
        return ISOLATION_DVDCLI_MESSAGE
    return None


def attribute_problem(name: str, value: str) -> str | None:
    """Why Mesos' `Attributes::parse` (src/common/attributes.cpp) would read `name:value`
    as something else (another attribute, a split name) or die on it, or None."""
    if not name or any(c in name for c in ":;\n"):
        return ATTRIBUTES_MESSAGE
    if not value or any(c in value for c in ";\n") or value.startswith("{"):
        return ATTRIBUTES_MESSAGE
    return None


DEFAULT_CONTAINERIZERS: list[Containerizer] = ["docker", "mesos"]
DEFAULT_ISOLATION: list[Isolator] = ["cgroups/cpu", "cgroups/mem"]


class ZooKeeperTls(Model):
    """TLS for a managed ensemble (docs/security.md, "ZooKeeper TLS"): quorum TLS between its
    servers and a TLS client port (2281) beside 2181, from a cert-manager Secret with the
    CombinedPEM output (`tls-combined.pem`: key and chain) and `ca.crt`, reloaded by the
    servers on renewal. Mesos and Marathon keep 2181 (their ZooKeeper clients have no TLS)."""

    secret_name: ObjectName = Field(
        description="Secret with tls-combined.pem and ca.crt; its certificate names every "
        "member's headless DNS name"
    )
    client_auth: Literal["need", "want", "none"] = Field(
        default="need", description="Client certificates on 2281: need (mutual TLS), want, none"
    )


class QuorumTls(enum.StrEnum):
    """How a managed ensemble's servers talk to each other, in the order ZooKeeper's
    administrator's guide turns TLS on in a running ensemble without downtime ("Upgrading
    existing non-TLS cluster with no downtime": a rolling restart into each): plain text;
    port unification (still plain, but accepting TLS); TLS with port unification (speaking
    TLS, still accepting plain text); TLS only."""

    OFF = "Off"
    PORT_UNIFICATION = "PortUnification"
    TLS_WITH_PORT_UNIFICATION = "TlsWithPortUnification"
    ON = "On"


TLS_REMOVAL_MESSAGE = (
    "zookeeper.tls cannot be removed from a running ensemble: its members speak only TLS to"
    " each other; keep it, move the cluster to an external ensemble, or recreate it without it"
)


ZkServers = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}(,[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5})*$",
        max_length=1024,
        description="host:port[,host:port...], no chroot.",
    ),
]


class ExternalZooKeeper(ZooKeeperEndpoint):
    """An existing ensemble the cluster uses; with `tlsServers`, the operator's own
    sessions use TLS."""

    tls_servers: ZkServers | None = Field(
        default=None,
        description="The same ensemble's TLS client port (secureClientPort) on each server,"
        " by the names its certificate carries, e.g. zk-0.zk-headless.ns.svc.cluster.local"
        ":2281: the operator (and a ZkMigration's sync controller) connect there with their"
        " client certificate, under connectString's chroot; Mesos and Marathon keep"
        " connectString (their ZooKeeper client has no TLS). Phase 6 of a ZkMigration sets"
        " it for a managed ensemble B with tls.",
    )


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
                    "!(has(self.external) && has(self.tls))",
                    "zookeeper.tls is for a managed ensemble, not with zookeeper.external",
                    ".tls",
                ),
                cel_rule(
                    "!has(oldSelf.tls) || has(self.tls) || has(self.external)",
                    TLS_REMOVAL_MESSAGE,
                    ".tls",
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
    digest: ImageDigest | None = None
    resources: ResourceRequirements | None = None
    storage: Storage = Field(default_factory=Storage)
    external: ExternalZooKeeper | None = None
    tls: ZooKeeperTls | None = None
    # Not in the CRD: the stage a running ensemble is held at while TLS is turned on
    # (builders.zookeeper.held_quorum_tls); None means the spec's own, On or Off.
    held_quorum_tls: SkipJsonSchema[QuorumTls | None] = Field(default=None, exclude=True)

    @property
    def managed_replicas(self) -> int:
        return 0 if self.external else (self.replicas or 3)

    @property
    def quorum_tls(self) -> QuorumTls:
        if self.held_quorum_tls is not None:
            return self.held_quorum_tls
        return QuorumTls.ON if self.tls is not None else QuorumTls.OFF


def majority(replicas: int) -> int:
    """The replicated log's quorum for `replicas` masters: floor(replicas/2)+1."""
    return replicas // 2 + 1


class MastersSpec(Component):
    """Mesos masters: a StatefulSet electing its leader through ZooKeeper."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.replicas) || self.replicas % 2 == 1",
                    MASTERS_ODD_MESSAGE,
                    ".replicas",
                ),
                cel_rule(
                    "!has(self.quorum)"
                    " || self.quorum == (has(self.replicas) ? self.replicas : 3) / 2 + 1",
                    MASTERS_QUORUM_MESSAGE,
                    ".quorum",
                ),
            ]
        }
    )

    image: ImageName = "mesosphere/mesos-master"
    version: ImageVersion = "1.11.0"
    replicas: Annotated[int, Field(ge=1, le=7)] = Field(
        default=3,
        json_schema_extra={"default": 3},
        description="Masters (odd: 1, 3, 5 or 7).",
    )
    quorum: Annotated[int, Field(ge=1, le=7)] | None = Field(
        default=None,
        description="Replicated log quorum: derived, floor(replicas/2)+1; when set it must be"
        " that value.",
    )
    zk_path: ZkPath = "/mesos"
    storage: Storage = Field(default_factory=Storage, description="work_dir (replicated log).")
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the masters' --credentials file, JSON"
        ' {"credentials": [{"principal": ..., "secret": ...}]} listing every principal they'
        " accept (the agents' and Marathon's); with it the masters authenticate agents"
        " and frameworks, and agents.credentialSecretRef and marathon.mesosAuthentication are"
        " required.",
    )

    @model_validator(mode="after")
    def _majority_quorum(self) -> MastersSpec:
        if self.replicas % 2 == 0:
            raise ValueError(MASTERS_ODD_MESSAGE)
        if self.quorum is not None and self.quorum != majority(self.replicas):
            raise ValueError(MASTERS_QUORUM_MESSAGE)
        return self

    @property
    def effective_quorum(self) -> int:
        return self.quorum or majority(self.replicas)


class AgentResources(Model):
    """Resources an agent offers to Mesos (its --resources flag); unset means auto-detect."""

    cpus: Annotated[float, Field(gt=0, le=4096)] | None = None
    mem_mb: Annotated[int, Field(gt=0, le=16 * 2**20)] | None = None  # 16 TiB
    disk_mb: Annotated[int, Field(gt=0, le=2**30)] | None = None  # 1 PiB
    ports: Annotated[str, Field(pattern=r"^\[[0-9]+-[0-9]+(,\s*[0-9]+-[0-9]+)*\]$")] | None = None


class AgentsSpec(Component):
    """Mesos agents: a DaemonSet with the Docker containerizer and cgroups isolation."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.isolation) || !('filesystem/linux' in self.isolation"
                    " && 'filesystem/shared' in self.isolation)",
                    ISOLATION_FILESYSTEM_MESSAGE,
                    ".isolation",
                ),
                cel_rule(
                    "!has(self.isolation) || !('namespaces/pid' in self.isolation"
                    " || 'namespaces/ipc' in self.isolation)"
                    " || 'filesystem/linux' in self.isolation",
                    ISOLATION_NAMESPACES_MESSAGE,
                    ".isolation",
                ),
                cel_rule(
                    "!has(self.isolation) || !('docker/volume' in self.isolation)"
                    f" || (has(self.image) && self.image != '{DEFAULT_AGENT_IMAGE}')",
                    ISOLATION_DVDCLI_MESSAGE,
                    ".isolation",
                ),
                cel_rule(
                    "!has(self.attributes) || self.attributes.all(k, k.size() > 0"
                    " && !k.contains(':') && !k.contains(';') && !k.contains('\\n')"
                    " && self.attributes[k].size() > 0 && !self.attributes[k].contains(';')"
                    " && !self.attributes[k].contains('\\n')"
                    " && !self.attributes[k].startsWith('{'))",
                    ATTRIBUTES_MESSAGE,
                    ".attributes",
                ),
            ]
        }
    )

    image: ImageName = DEFAULT_AGENT_IMAGE
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
    attributes: Annotated[
        dict[str, Annotated[str, Field(max_length=253)]], Field(max_length=64)
    ] = Field(
        default_factory=dict,
        description="Mesos --attributes (name: value); no ';', and no ':' in names.",
    )
    node_selector: Annotated[
        dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=64)
    ] = Field(default_factory=dict)
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)
    work_dir: Annotated[str, Field(pattern=r"^(/[^/\s]+)+$", max_length=512)] = Field(
        default="/var/lib/mesos/agent",
        description="Host path for work_dir and checkpoints, so tasks survive a pod restart.",
    )
    max_unavailable: Annotated[int, Field(ge=1, le=1000)] = 1
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=5051,
        description="Agent port on the node's network; two clusters sharing nodes need two ports.",
    )
    credential_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the agents' --credential file, JSON"
        ' {"principal": ..., "secret": ...}; with masters.credentialsSecretRef only.',
    )

    @model_validator(mode="after")
    def _mesos_accepts(self) -> AgentsSpec:
        problem = isolation_problem(list(self.isolation), self.image)
        for name, value in self.attributes.items():
            problem = problem or attribute_problem(name, value)
        if problem:
            raise ValueError(problem)
        return self


class MesosAuthentication(Model):
    """How Marathon authenticates to the masters as a framework."""

    principal: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[^\s]+$")]
    secret_ref: SecretKeyRef = Field(
        description="Secret key holding the principal's secret (the whole value is the secret)."
    )


class MarathonSpec(Component):
    """Marathon in HA: several replicas electing a leader in ZooKeeper."""

    image: ImageName = "mesosphere/marathon"
    version: ImageVersion = Field(
        default="v1.11.24",
        description="Image tag; Marathon's tags are v-prefixed, so a version starting with a"
        " digit gets a 'v' (1.11.24 and v1.11.24 both mean the tag v1.11.24).",
    )
    replicas: Annotated[int, Field(ge=0, le=5)] = Field(default=2, json_schema_extra={"default": 2})
    zk_path: ZkPath = "/marathon"
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding 'user:password' for Marathon's HTTP API."
    )
    mesos_authentication: MesosAuthentication | None = Field(
        default=None,
        description="Marathon's framework principal and secret (--mesos_authentication);"
        " required with masters.credentialsSecretRef, and only used then.",
    )

    @property
    def tag(self) -> str:
        return f"v{self.version}" if self.version[:1].isdigit() else self.version

    @property
    def image_ref(self) -> str:
        return image_ref(self.image, self.tag, self.digest)


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


class TlsSecretRef(Model):
    """A `kubernetes.io/tls` Secret in the cluster's namespace (tls.crt, tls.key)."""

    name: ObjectName


class LoadBalancerSpec(Component):
    """The cluster's load balancer for its Marathon apps (docs/loadbalancer.md): HAProxy
    (`image`) kept current by `orchestrator lb` (`lbImage`) from Marathon's tasks, health and
    the traffic ConfigMaps, with marathon-lb's labels."""

    enabled: bool = False
    image: ImageName = "haproxy"
    version: ImageVersion = "2.6"
    lb_image: ImageName = Field(
        default="ghcr.io/orchestrator-dev/orchestrator",
        description="The image of the `lb` container (`orchestrator lb`).",
    )
    lb_version: ImageVersion = "0.1.0"
    replicas: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1, json_schema_extra={"default": 1}
    )
    groups: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$", max_length=63)]],
        Field(min_length=1, max_length=16),
    ] = Field(
        default_factory=lambda: ["external"],
        json_schema_extra={"default": ["external"]},
        description="HAPROXY_GROUP values of the Marathon apps it serves.",
    )
    tls_secret_ref: TlsSecretRef | None = Field(
        default=None, description="TLS termination on the HTTPS port with this Secret."
    )
    service_ports: PortRange = Field(
        default_factory=lambda: PortRange(start=10000, end=10100),
        json_schema_extra={"default": {"start": 10000, "end": 10100}},
        description="The apps' ports (HAPROXY_0_PORT, service ports), exposed on the Service.",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Type of the `<cluster>-lb` Service."
    )


class AddonsSpec(Model):
    """Optional parts; an addon set to `enabled: false` has its objects deleted."""

    mesos_dns: MesosDnsSpec = Field(default_factory=MesosDnsSpec)
    marathon_lb: MarathonLbSpec = Field(default_factory=MarathonLbSpec)


class NetworkPoliciesSpec(Model):
    """The NetworkPolicies the operator makes for the cluster's ZooKeeper, masters and
    Marathon (builders/networkpolicy.py); docs/security.md says what each admits."""

    enabled: bool = Field(
        default=True,
        description="Make them (default). false: none, and those made earlier are deleted.",
    )
    operator_namespace: ObjectName = Field(
        default="orchestrator-system",
        description="The namespace of the operator and the sync controller (and of the"
        " MarathonApp controller): admitted to ZooKeeper, the masters and Marathon.",
    )
    node_cidrs: Annotated[list[Cidr], Field(max_length=64)] = Field(
        default_factory=list,
        description="The nodes' addresses. The Mesos agents (and the probes) use the node's"
        " network, so their traffic comes from these; empty: from any address outside the"
        " cluster's pod network as the CNI tells it (0.0.0.0/0, ::/0), which some CNIs"
        " (Calico) also match for pods: set it to close ZooKeeper and the masters to them.",
    )
    egress: bool = Field(
        default=False,
        description="Also make Egress policies for ZooKeeper, the masters and Marathon (only"
        " what Mesos, Marathon and ZooKeeper contact: docs/security.md). Off by default: an"
        " upgrade must not cut a running cluster off what it reaches today.",
    )
    zookeeper_cidrs: Annotated[list[Cidr], Field(max_length=64)] = Field(
        default_factory=list,
        description="With egress: the addresses of external ensembles (zookeeper.external, a"
        " ZkMigration's target), which a policy cannot name by DNS name; empty: their"
        " connect strings' ports to any address.",
    )


class MesosClusterSpec(Model):
    """Desired state of a Mesos platform."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "has(self.masters.credentialsSecretRef) =="
                    " has(self.agents.credentialSecretRef)",
                    AGENT_CREDENTIAL_MESSAGE,
                    ".agents.credentialSecretRef",
                ),
                cel_rule(
                    "has(self.masters.credentialsSecretRef) =="
                    " has(self.marathon.mesosAuthentication)",
                    MARATHON_AUTH_MESSAGE,
                    ".marathon.mesosAuthentication",
                ),
                cel_rule(
                    "!has(self.zookeeper.external) || !has(self.zookeeper.external.authSecretRef)"
                    " || !has(self.addons) || !has(self.addons.mesosDns)"
                    " || !has(self.addons.mesosDns.enabled) || !self.addons.mesosDns.enabled",
                    MESOS_DNS_ZK_AUTH_MESSAGE,
                    ".addons.mesosDns.enabled",
                ),
            ]
        }
    )

    zookeeper: ZooKeeperSpec = Field(
        default_factory=ZooKeeperSpec, json_schema_extra={"default": {}}
    )
    masters: MastersSpec = Field(default_factory=MastersSpec, json_schema_extra={"default": {}})
    agents: AgentsSpec = Field(default_factory=AgentsSpec, json_schema_extra={"default": {}})
    marathon: MarathonSpec = Field(default_factory=MarathonSpec, json_schema_extra={"default": {}})
    addons: AddonsSpec = Field(default_factory=AddonsSpec)
    load_balancer: LoadBalancerSpec = Field(
        default_factory=LoadBalancerSpec,
        description="The load balancer for the Marathon apps (docs/loadbalancer.md).",
    )
    network_policies: NetworkPoliciesSpec = Field(
        default_factory=NetworkPoliciesSpec, json_schema_extra={"default": {}}
    )
    pvc_retention_policy: Literal["Retain", "Delete"] = Field(
        default="Retain", description="What happens to the PVCs when the MesosCluster is deleted."
    )
    service_account_name: ObjectName | None = Field(
        default=None,
        description="ServiceAccount of every pod the operator builds (ZooKeeper, masters,"
        " agents, Marathon, addons); unset: the namespace's default.",
    )

    @model_validator(mode="after")
    def _credentials_for_every_identity(self) -> MesosClusterSpec:
        authenticating = self.masters.credentials_secret_ref is not None
        if authenticating != (self.agents.credential_secret_ref is not None):
            raise ValueError(AGENT_CREDENTIAL_MESSAGE)
        if authenticating != (self.marathon.mesos_authentication is not None):
            raise ValueError(MARATHON_AUTH_MESSAGE)
        external = self.zookeeper.external
        if external and external.auth_secret_ref and self.addons.mesos_dns.enabled:
            raise ValueError(MESOS_DNS_ZK_AUTH_MESSAGE)
        return self


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
