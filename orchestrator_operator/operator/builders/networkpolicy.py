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
"""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
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


def _policy(owner: Owner, name: str, selected: Manifest, ingress: list[Manifest]) -> Manifest:
    meta = metadata(owner, COMPONENT, "orchestrator-network-policy")
    meta["name"] = owner.child_name(name)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {"podSelector": selected, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def build(owner: Owner, spec: MesosClusterSpec) -> list[Manifest]:
    """The policies `spec` asks for (none when spec.networkPolicies.enabled is false)."""
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
    return policies


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
            "network_policies": spec.network_policies.model_copy(update={"enabled": True}),
        }
    )
    return build(owner, managed)
