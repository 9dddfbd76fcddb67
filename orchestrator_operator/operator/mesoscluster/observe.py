"""What a MesosCluster really runs: workload readiness from the indexes, the leading master
from ZooKeeper, the leader's metrics, the ensemble's server modes, and cordoned nodes."""

from __future__ import annotations

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.mesos.discovery import read_election, read_master_metrics
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.operator.builders import agents, marathon, zookeeper
from orchestrator_operator.operator.indexes import Workloads
from orchestrator_operator.operator.mesoscluster.status import Observation, Replicas
from orchestrator_operator.operator.workloads import WorkloadSummary
from orchestrator_operator.zk.clients import ZK_POOL, ZkUnreachable
from orchestrator_operator.zk.four_letter import ensemble_modes

# Four-letter words open a connection per server: ask every 10 s, not on every tick.
CORDONED = TtlCache[str, frozenset[str]](ttl_seconds=5.0)
ZK_MODES = TtlCache[str, tuple[tuple[str, str | None], ...]](ttl_seconds=10.0)


def _replicas(summary: WorkloadSummary | None) -> Replicas:
    return Replicas(summary.desired, summary.ready) if summary else Replicas(0, 0)


def observe_cluster(
    owner: Owner, spec: MesosClusterSpec, workloads: Workloads, routing: ZkRouting | None = None
) -> Observation:
    connect = zookeeper.connect_string(owner, spec)
    zk_error, election, health = None, None, None
    try:
        election = read_election(ZK_POOL.get(connect), spec.masters.zk_path)
    except ZkUnreachable as error:
        zk_error = str(error)
    if election and election.leader:
        health = read_master_metrics(election.leader.address)
    servers = None
    if zk_error is None:
        servers = ZK_MODES.get_or_compute(connect, lambda: tuple(ensemble_modes(connect)))

    def replicas(kind: str, component: str) -> Replicas:
        return _replicas(workloads.get(kind, owner.namespace, owner.child_name(component)))

    routing = routing or ZkRouting()
    masters_ready = replicas("StatefulSet", routing.masters_component)
    if routing.migrating:  # both sets count while masters move across ensembles
        other = replicas("StatefulSet", routing.target_masters_component)
        masters_ready = Replicas(
            masters_ready.desired + other.desired, masters_ready.ready + other.ready
        )

    return Observation(
        zookeeper_connect_string=connect,
        zookeeper=None if spec.zookeeper.external else replicas("StatefulSet", zookeeper.COMPONENT),
        zookeeper_error=zk_error,
        zookeeper_servers=servers,
        election=election,
        master_health=health,
        masters=masters_ready,
        quorum=spec.masters.effective_quorum,
        agents=replicas("DaemonSet", agents.COMPONENT),
        marathon=replicas("Deployment", marathon.COMPONENT),
    )


def cordoned_nodes() -> frozenset[str]:
    """Nodes marked unschedulable (`kubectl cordon`): their agents go into maintenance.

    One server-side filtered LIST, shared by every cluster for a few seconds: watching all
    nodes instead (a Kopf index) costs the operator every heartbeat of a 5,000-node cluster.
    """
    return CORDONED.get_or_compute(
        "nodes",
        lambda: frozenset(
            node["metadata"]["name"]
            for node in KubeApi.shared().list(
                "v1", "Node", None, field_selector="spec.unschedulable=true"
            )
        ),
    )
