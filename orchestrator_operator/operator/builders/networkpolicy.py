"""The NetworkPolicies of a MesosCluster (issue 17, point 12): ingress to its managed
ZooKeeper, its masters and Marathon only from the parts of the cluster that talk to them, the
operator's namespace (the operator's observers, the sync controller, the MarathonApp
controller) and the nodes (`spec.networkPolicies.nodeCidrs`).

Who talks to whom, from Mesos 1.11 and Marathon 1.11:

- ZooKeeper (2181): masters (leader election, `--zk`), agents (they find the leading master
  through `--master=zk://`), Marathon (`--zk`, `--master=zk://`), Mesos-DNS (`zk` in its
  config) and the load balancer (`--marathon-zk`); its members among themselves on 2888
  and 3888.
- Masters (5050): each other (the replicated log and libprocess messages), agents
  (registration, status updates), Marathon (the scheduler API), Mesos-DNS (`/state`),
  marathon-lb and the operator (`/state`, `/health`).
- Marathon: its HTTP port (8080) for the operator, marathon-lb, the load balancer and its own
  standbys (which proxy to the leader); and any port from the masters and the nodes, since
  libprocess messages to the scheduler (from the master, and from executors through their
  agent) arrive on Marathon's libprocess port, which is not fixed.

The agents use the node's network (hostNetwork), so no NetworkPolicy selects them and their
traffic comes from the node's address: `nodeCidrs` admits it (with no CIDRs given, any
address outside the pod network, as the CNI judges it: 0.0.0.0/0 and ::/0). The kubelet's
probes come from the node too. An external ZooKeeper is not the operator's to protect.
Mesos-DNS and the load balancers serve everyone and get no policy. A pure function of the
spec, like the other builders.

Egress (`spec.networkPolicies.egress`, off by default: see `build_egress`), from the same
sources: what each selected part opens connections to.

- ZooKeeper: DNS (its members find each other by their headless names), and its members
  on 2888 (followers connect to the leader) and 3888 (leader election).
- Masters: DNS; ZooKeeper's client port (`--zk`: leader election, contender and detector);
  each other on 5050 (the replicated log's and the master's libprocess messages go to the
  peer's `--port`); the agents on the nodes on `agents.port` (libprocess sends each message
  on a connection to the receiver's own port: offers' launches, kills, pings go to the
  agent's; an executor talks to its agent only, never to the master's side); and Marathon on
  any port (offers, status updates and framework messages go to the scheduler's libprocess
  port, which is not fixed).
- Marathon: DNS; ZooKeeper's client port (`--zk` for its state and leader latch,
  `--master=zk://` to find the leading master); the masters on 5050 (its scheduler driver
  registers and calls there); its peers on 8080 (a standby proxies API calls to the leader);
  and the tasks on the nodes on any port (Marathon's own HTTP and TCP health checks and
  readiness checks go to the task's host port, which Mesos picks from the offered range).
"""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.operator.builders import addons, marathon, masters, zookeeper
from orchestrator_operator.operator.builders.meta import metadata, selector_labels

COMPONENT = "network"
MASTER_SETS = ("master", "master-b")  # the second set exists while a ZkMigration runs
LOAD_BALANCER = "lb"  # spec.loadBalancer's Deployment <cluster>-lb
ANYWHERE = ("0.0.0.0/0", "::/0")


def _pods(owner: Owner, components: tuple[str, ...]) -> Manifest:
    """A peer: this cluster's pods of the given components."""
    return {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/instance": owner.name},
            "matchExpressions": [
                {
                    "key": "app.kubernetes.io/component",
                    "operator": "In",
                    "values": list(components),
                }
            ],
        }
    }


def _operator(spec: MesosClusterSpec) -> Manifest:
    namespace = spec.network_policies.operator_namespace
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def _nodes(spec: MesosClusterSpec) -> list[Manifest]:
    cidrs = spec.network_policies.node_cidrs or list(ANYWHERE)
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


def _ports(*ports: int) -> list[Manifest]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


def _policy(
    owner: Owner,
    name: str,
    selected: Manifest,
    ingress: list[Manifest] | None = None,
    egress: list[Manifest] | None = None,
) -> Manifest:
    meta = metadata(owner, COMPONENT, "orchestrator-network-policy")
    meta["name"] = owner.child_name(name)
    rules: Manifest = (
        {"policyTypes": ["Egress"], "egress": egress}
        if egress is not None
        else {"policyTypes": ["Ingress"], "ingress": ingress or []}
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {"podSelector": selected, **rules},
    }


# The cluster DNS: CoreDNS (or kube-dns) pods keep the `k8s-app: kube-dns` label in
# kube-system in kubeadm, kind, GKE, EKS and AKS alike.
DNS: Manifest = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}
EGRESS = "egress"  # the egress policies' name suffix: <cluster>-<component>-egress
ANY_TCP_PORT = [{"protocol": "TCP"}]  # libprocess and HTTP are TCP; a port is not fixed


def _connect_ports(connect: str) -> list[int]:
    """The ports of a ZooKeeper connect string `host:port[,host:port...][/chroot]`."""
    hosts = connect.split("/", 1)[0]
    return sorted({int(address.rsplit(":", 1)[1]) for address in hosts.split(",")})


def _zookeeper_destinations(
    owner: Owner, spec: MesosClusterSpec, routing: ZkRouting | None
) -> list[Manifest]:
    """Where the masters and Marathon find ZooKeeper: the managed ensemble's pods, a
    migration's managed ensemble B's pods, and external ensembles by `zookeeperCidrs`
    (a NetworkPolicy cannot name a DNS name; without CIDRs: those ports to any address)."""
    rules: list[Manifest] = []
    external: list[str] = []
    if spec.zookeeper.external is None:
        rules.append({"to": [_pods(owner, (zookeeper.COMPONENT,))],
                      "ports": _ports(zookeeper.CLIENT_PORT)})  # fmt: skip
    else:
        external.append(spec.zookeeper.external.connect_string)
    if routing is not None and routing.target is not None:
        migration = Owner(name=routing.migration or "", namespace=owner.namespace, uid="")
        if routing.migration and routing.target == zookeeper.client_address(migration):
            rules.append({"to": [_pods(migration, (zookeeper.COMPONENT,))],
                          "ports": _ports(zookeeper.CLIENT_PORT)})  # fmt: skip
        else:
            external.append(routing.target)
    if external:
        cidrs = spec.network_policies.zookeeper_cidrs or list(ANYWHERE)
        ports = sorted({port for connect in external for port in _connect_ports(connect)})
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs],
                      "ports": _ports(*ports)})  # fmt: skip
    return rules


def build_egress(
    owner: Owner, spec: MesosClusterSpec, routing: ZkRouting | None = None
) -> list[Manifest]:
    """The Egress policies (none unless spec.networkPolicies.enabled and .egress): what
    ZooKeeper, the masters and Marathon open connections to (the module's docstring says
    why each). Off by default so that an upgrade changes nothing for running clusters:
    a master or Marathon also reaching what this list cannot know (another libprocess
    framework's scheduler, Marathon's event subscribers, an artifact or auth service) would
    be cut off without warning."""
    settings = spec.network_policies
    if not (settings.enabled and settings.egress):
        return []
    policies = []
    if spec.zookeeper.external is None:
        policies.append(
            _policy(
                owner,
                f"{zookeeper.COMPONENT}-{EGRESS}",
                {"matchLabels": selector_labels(owner, zookeeper.COMPONENT)},
                egress=[
                    DNS,
                    {
                        "to": [_pods(owner, (zookeeper.COMPONENT,))],
                        "ports": _ports(zookeeper.PEER_PORT, zookeeper.ELECTION_PORT),
                    },
                ],
            )
        )
    to_zookeeper = _zookeeper_destinations(owner, spec, routing)
    nodes = _nodes(spec)
    policies.append(
        _policy(
            owner,
            f"{masters.COMPONENT}-{EGRESS}",
            _pods(owner, MASTER_SETS)["podSelector"],
            egress=[
                DNS,
                *to_zookeeper,
                {"to": [_pods(owner, MASTER_SETS)], "ports": _ports(masters.PORT)},
                # the agents use the node's network: their libprocess port on the nodes
                {"to": nodes, "ports": _ports(spec.agents.port)},
                # the scheduler's libprocess port: any TCP port
                {"to": [_pods(owner, (marathon.COMPONENT,))], "ports": ANY_TCP_PORT},
            ],
        )
    )
    policies.append(
        _policy(
            owner,
            f"{marathon.COMPONENT}-{EGRESS}",
            {"matchLabels": selector_labels(owner, marathon.COMPONENT)},
            egress=[
                DNS,
                *to_zookeeper,
                {"to": [_pods(owner, MASTER_SETS)], "ports": _ports(masters.PORT)},
                {"to": [_pods(owner, (marathon.COMPONENT,))], "ports": _ports(marathon.PORT)},
                # health and readiness checks: the tasks' host ports, any TCP port
                {"to": nodes, "ports": ANY_TCP_PORT},
            ],
        )
    )
    return policies


def build(owner: Owner, spec: MesosClusterSpec, routing: ZkRouting | None = None) -> list[Manifest]:
    """The policies `spec` asks for (none when spec.networkPolicies.enabled is false); the
    routing of a running ZkMigration adds ensemble B to the egress rules."""
    if not spec.network_policies.enabled:
        return []
    policies = []
    if spec.zookeeper.external is None:
        members = _pods(owner, (zookeeper.COMPONENT,))
        clients = (*MASTER_SETS, marathon.COMPONENT, addons.MESOS_DNS, LOAD_BALANCER)
        client_port = _ports(zookeeper.CLIENT_PORT)
        tls_port = _ports(zookeeper.TLS_CLIENT_PORT) if spec.zookeeper.tls else []
        policies.append(
            _policy(
                owner,
                zookeeper.COMPONENT,
                {"matchLabels": selector_labels(owner, zookeeper.COMPONENT)},
                [
                    {
                        "from": [members],
                        "ports": _ports(
                            zookeeper.CLIENT_PORT, zookeeper.PEER_PORT, zookeeper.ELECTION_PORT
                        ),
                    },
                    {"from": [_pods(owner, clients)], "ports": client_port},
                    # spec.zookeeper.tls: the TLS client port for the operator's namespace
                    # only (the operator and sync engine use kazoo's TLS; Mesos and
                    # Marathon have no TLS client and keep 2181).
                    {"from": [_operator(spec)], "ports": client_port + tls_port},
                    {"from": _nodes(spec), "ports": client_port},
                ],
            )
        )
    master_port = _ports(masters.PORT)
    master_clients = (marathon.COMPONENT, addons.MESOS_DNS, addons.MARATHON_LB, LOAD_BALANCER)
    policies.append(
        _policy(
            owner,
            masters.COMPONENT,
            _pods(owner, MASTER_SETS)["podSelector"],
            [
                {"from": [_pods(owner, MASTER_SETS)]},
                {"from": [_pods(owner, master_clients)], "ports": master_port},
                {"from": [_operator(spec)], "ports": master_port},
                {"from": _nodes(spec), "ports": master_port},
            ],
        )
    )
    http = _ports(marathon.PORT)
    http_clients = (marathon.COMPONENT, addons.MARATHON_LB, LOAD_BALANCER)
    policies.append(
        _policy(
            owner,
            marathon.COMPONENT,
            {"matchLabels": selector_labels(owner, marathon.COMPONENT)},
            [
                {"from": [_pods(owner, MASTER_SETS)]},
                {"from": _nodes(spec)},
                {"from": [_pods(owner, http_clients)], "ports": http},
                {"from": [_operator(spec)], "ports": http},
            ],
        )
    )
    return policies + build_egress(owner, spec, routing)


def migration_target(migration: Owner, cluster: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    """A ZkMigration's managed ensemble B (pods named after the migration): the same rules
    as the cluster's own ensemble, its clients being the cluster's masters (both sets),
    Marathon, Mesos-DNS and the load balancer, which move to B during the migration; the
    operator's namespace (the operator, the sync engine that copies A to B) and the nodes
    (the agents). None when the cluster's spec.networkPolicies.enabled is false."""
    if not spec.network_policies.enabled:
        return []
    members = _pods(migration, (zookeeper.COMPONENT,))
    clients = (*MASTER_SETS, marathon.COMPONENT, addons.MESOS_DNS, LOAD_BALANCER)
    client_port = _ports(zookeeper.CLIENT_PORT)
    tls_port = _ports(zookeeper.TLS_CLIENT_PORT) if spec.zookeeper.tls else []
    return [
        _policy(
            migration,
            zookeeper.COMPONENT,
            {"matchLabels": selector_labels(migration, zookeeper.COMPONENT)},
            [
                {
                    "from": [members],
                    "ports": _ports(
                        zookeeper.CLIENT_PORT, zookeeper.PEER_PORT, zookeeper.ELECTION_PORT
                    ),
                },
                {"from": [_pods(cluster, clients)], "ports": client_port},
                {"from": [_operator(spec)], "ports": client_port + tls_port},
                {"from": _nodes(spec), "ports": client_port},
            ],
        )
    ]


def all_policies(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    """Every policy some spec of this cluster may have made (for stale_children)."""
    managed = spec.model_copy(
        update={
            "zookeeper": spec.zookeeper.model_copy(update={"external": None}),
            "network_policies": spec.network_policies.model_copy(
                update={"enabled": True, "egress": True}
            ),
        }
    )
    return build(owner, managed)
