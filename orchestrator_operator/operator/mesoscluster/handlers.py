"""Kopf handlers for MesosCluster: apply the children, then keep observing their health.

Two handlers with one job each: `reconcile` turns the spec into children (level-based and
idempotent: it applies the full desired set every time), `observe` is a timer that reads
what is actually running (workload status, the Mesos leader in ZooKeeper, the leading
master's metrics) and writes the truth into status.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf

from orchestrator_operator.common.conditions import now_rfc3339
from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.mesos.discovery import read_election, read_master_metrics
from orchestrator_operator.models import API_GROUP, API_VERSION, MESOS_CLUSTER
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ROUTING_ANNOTATION, ZkRouting, parse_routing
from orchestrator_operator.operator import zk_super_key
from orchestrator_operator.operator.builders import agents, marathon, zookeeper
from orchestrator_operator.operator.builders.cluster import build_children, stale_children
from orchestrator_operator.operator.builders.meta import Owner
from orchestrator_operator.operator.indexes import Workloads
from orchestrator_operator.operator.mesoscluster.maintenance import run_maintenance
from orchestrator_operator.operator.mesoscluster.metrics import export_status, forget
from orchestrator_operator.operator.mesoscluster.roll import roll_statefulset, zookeeper_leader_ip
from orchestrator_operator.operator.mesoscluster.status import Observation, Replicas, build_status
from orchestrator_operator.operator.mesoscluster.zk_scale import (
    ScaleResult,
    StatefulSetFleet,
    kazoo_reconfigure,
    scale_step,
)
from orchestrator_operator.operator.mesoscluster.zk_scale_plan import Done, Reconfig, Wait
from orchestrator_operator.operator.reconcile import (
    accept_for_children,
    counted,
    patch_changed_status,
)
from orchestrator_operator.operator.workloads import WorkloadSummary
from orchestrator_operator.zk.clients import ZK_POOL, ZkUnreachable
from orchestrator_operator.zk.four_letter import ensemble_modes

OBSERVE_INTERVAL_SECONDS = 1.0
# Four-letter words open a connection per server: ask every 10 s, not on every tick.
CORDONED = TtlCache[str, frozenset[str]](ttl_seconds=5.0)
ZK_MODES = TtlCache[str, tuple[tuple[str, str | None], ...]](ttl_seconds=10.0)


def _owner(meta: kopf.Meta) -> Owner:
    return Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


@kopf.on.resume(API_GROUP, API_VERSION, "mesosclusters")
@kopf.on.create(API_GROUP, API_VERSION, "mesosclusters")
@kopf.on.update(API_GROUP, API_VERSION, "mesosclusters", field="spec")
@kopf.on.update(API_GROUP, API_VERSION, "mesosclusters", field="metadata.annotations")
@counted(MESOS_CLUSTER)
def reconcile(
    spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    parsed: MesosClusterSpec = accept_for_children(MESOS_CLUSTER, spec, status, meta, patch)
    routing = _routing(meta)
    api = KubeApi.shared()
    owner = _owner(meta)
    if zookeeper.SCALE_BY_RECONFIG and not parsed.zookeeper.external:
        # Created once (409 when it exists; the operator may create Secrets, never read
        # them): the servers read its digest when they start.
        password = zk_super_key.password_for(owner.namespace, owner.name)
        api.create(zookeeper.super_secret(owner, password))
        parsed = _zookeeper_held(api, owner, parsed)
    api.apply_all(build_children(owner, parsed, routing))
    for api_version, kind, name in stale_children(owner, parsed, routing):
        api.delete(api_version, kind, owner.namespace, name)


def _zookeeper_held(api: KubeApi, owner: Owner, spec: MesosClusterSpec) -> MesosClusterSpec:
    """The spec with the managed ensemble at the live StatefulSet's size: only the scaling
    step (`scale_zookeeper`, one member at a time) changes an existing ensemble's size."""
    name = owner.child_name(zookeeper.COMPONENT)
    live = api.get("apps/v1", "StatefulSet", owner.namespace, name)
    return zookeeper.with_replicas(spec, zookeeper.held_replicas(spec, live))


def _routing(meta: kopf.Meta) -> ZkRouting | None:
    """The ZkMigration's routing, or None on a cluster no migration has touched."""
    annotations = dict(meta.get("annotations") or {})
    if ROUTING_ANNOTATION not in annotations:
        return None
    try:
        return parse_routing(annotations)
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from error


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


def scale_zookeeper(owner: Owner, spec: MesosClusterSpec, workloads: Workloads) -> ScaleResult:
    """Advance the scaling of the managed ensemble towards spec.zookeeper.replicas by at
    most one step (rollout.zk_scale); its message is for status ("" when nothing is
    pending)."""
    api = KubeApi.shared()
    name = owner.child_name(zookeeper.COMPONENT)
    summary = workloads.get("StatefulSet", owner.namespace, name)
    desired = spec.zookeeper.managed_replicas
    connect = zookeeper.connect_string(owner, spec)
    try:
        client = ZK_POOL.get(connect)
    except ZkUnreachable as error:
        # Nothing is known to be pending at the spec's size; the ZooKeeper condition says
        # why the ensemble cannot be read.
        if summary is None or summary.desired == desired:
            return ScaleResult(Done(), "")
        unread = Wait(str(error))
        return ScaleResult(unread, f"zookeeper scaling to {desired}: waiting: {error}")

    def apply_config_map(replicas: int) -> None:
        # The ConfigMap's members follow the StatefulSet's size (they seed new servers).
        api.apply(zookeeper.build(owner, zookeeper.with_replicas(spec, replicas))[0])

    def reconfigure(action: Reconfig, version: int | None) -> None:
        password = zk_super_key.password_for(owner.namespace, owner.name)
        auth = ("digest", f"{zookeeper.SUPER_USER}:{password}")
        kazoo_reconfigure(connect, auth)(action, version)

    fleet = StatefulSetFleet(
        api, owner.namespace, name, summary, zookeeper.CLIENT_PORT, before_scale=apply_config_map
    )
    return scale_step(
        client,
        fleet,
        desired,
        lambda server_id: zookeeper.server_lines(owner, server_id)[-1],
        reconfigure,
    )


def roll_quorum_members(
    owner: Owner,
    spec: MesosClusterSpec,
    observation: Observation,
    workloads: Workloads,
    routing: ZkRouting | None = None,
) -> str:
    """Advance the rolling restart of ZooKeeper, then of the masters, by at most one pod.

    ZooKeeper goes first and alone: masters are only restarted on a settled ensemble, and
    not while a ZkMigration moves them (it adds and removes whole masters itself). Before
    any restart, a managed ensemble is scaled to its spec's size (`scale_zookeeper`), never
    while a ZkMigration routes the cluster: nothing is restarted while members are added or
    removed, except when the servers refuse the super user's reconfig (started before its
    Secret existed): the roll that restarts them with its digest is what unblocks it.
    """
    routing = routing or ZkRouting()
    api = KubeApi.shared()
    scaling = ""
    if zookeeper.SCALE_BY_RECONFIG and not spec.zookeeper.external and not routing.migrating:
        scaled = scale_zookeeper(owner, spec, workloads)
        scaling = scaled.message
        if scaling and not scaled.auth_refused:
            return scaling
    if not spec.zookeeper.external:
        name = owner.child_name(zookeeper.COMPONENT)
        zk = roll_statefulset(
            api, owner.namespace, name, workloads.get("StatefulSet", owner.namespace, name),
            spec.zookeeper.managed_replicas // 2 + 1, zookeeper_leader_ip,
        )  # fmt: skip
        if zk.message:
            return zk.message
    if scaling:
        return scaling
    if routing.migrating:
        return ""
    leader = observation.election.leader if observation.election else None
    name = owner.child_name(routing.masters_component)
    result = roll_statefulset(
        api, owner.namespace, name, workloads.get("StatefulSet", owner.namespace, name),
        spec.masters.effective_quorum, lambda _: leader.ip if leader else None,
    )  # fmt: skip
    return result.message


@kopf.on.delete(API_GROUP, API_VERSION, "mesosclusters", optional=True)
def forget_metrics(meta: kopf.Meta, **_: Any) -> None:
    """Children go by garbage collection; only the cluster's metric series need removing."""
    forget(meta["namespace"], meta["name"])


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


@kopf.timer(API_GROUP, API_VERSION, "mesosclusters", interval=OBSERVE_INTERVAL_SECONDS)
@counted(MESOS_CLUSTER)
def observe(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    **kwargs: Any,
) -> None:
    if status.get("phase") == "Invalid":
        return
    parsed = MesosClusterSpec.model_validate(copy.deepcopy(dict(spec)))
    owner = _owner(meta)
    routing = _routing(meta)
    workloads = Workloads(kwargs)
    observation = observe_cluster(owner, parsed, workloads, routing)
    previous = copy.deepcopy(list(status.get("conditions") or []))
    new_status = build_status(
        observation, status.get("observedGeneration"), previous, now_rfc3339()
    )
    new_status["rollout"] = (
        roll_quorum_members(owner, parsed, observation, workloads, routing) or None
    )
    cordoned = set(cordoned_nodes())
    leader = observation.election.leader if observation.election else None
    if leader and observation.master_health and (cordoned or status.get("maintenance")):
        report = run_maintenance(leader.address, cordoned)
        new_status["maintenance"] = report if report is not None else status.get("maintenance")
    export_status(owner.namespace, owner.name, new_status, status.get("leadingMaster"))
    # Accepted is the reconcile handler's condition: keep it as it is.
    patch_changed_status(status, new_status, patch)
