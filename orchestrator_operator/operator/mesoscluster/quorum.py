"""Changes to a MesosCluster's quorums, at most one step per observation: scaling the
managed ZooKeeper ensemble by reconfiguration, then rolling ZooKeeper (and moving it through
the quorum TLS stages, a roll each) and the masters one member at a time (the plans in
zk_scale_plan, roll_plan and builders.zookeeper.held_quorum_tls; the I/O in zk_scale, roll
and here)."""

from __future__ import annotations

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.operator.allowlist import exclude_control_plane
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.builders.hardening import harden_all
from orchestrator_operator.operator.indexes import Workloads
from orchestrator_operator.operator.mesoscluster.roll import roll_statefulset, zookeeper_leader_ip
from orchestrator_operator.operator.mesoscluster.status import Observation
from orchestrator_operator.operator.mesoscluster.zk_scale import (
    ScaleResult,
    StatefulSetFleet,
    kazoo_reconfigure,
    scale_step,
)
from orchestrator_operator.operator.mesoscluster.zk_scale_plan import Done, Reconfig, Wait
from orchestrator_operator.operator.settings import OperatorSettings
from orchestrator_operator.zk.clients import ZK_POOL, ZkUnreachable, zk_tls_routes


def zookeeper_held(
    api: KubeApi, owner: Owner, spec: MesosClusterSpec, *, hold_replicas: bool
) -> MesosClusterSpec:
    """The spec with the managed ensemble where the live StatefulSet lets it be
    (`held_at`)."""
    name = owner.child_name(zookeeper.COMPONENT)
    live = api.get("apps/v1", "StatefulSet", owner.namespace, name)
    return held_at(spec, live, hold_replicas=hold_replicas)


def held_at(
    spec: MesosClusterSpec, live: Manifest | None, *, hold_replicas: bool
) -> MesosClusterSpec:
    """The spec at the live size (`hold_replicas`: only the scaling step, one member at a
    time, changes an existing ensemble's size) and at most one quorum TLS stage from the
    live one (`zookeeper.held_quorum_tls`)."""
    held = zookeeper.with_quorum_tls(spec, zookeeper.held_quorum_tls(spec, live))
    if hold_replicas:
        held = zookeeper.with_replicas(held, zookeeper.held_replicas(spec, live))
    return held


def advance_quorum_tls(
    api: KubeApi,
    owner: Owner,
    spec: MesosClusterSpec,
    live: Manifest | None,
    settings: OperatorSettings,
) -> str:
    """Move a running ensemble (`live`, its StatefulSet) one stage towards its spec's
    quorum TLS once every member runs the current stage and is ready (ZooKeeper's rolling
    procedure; the roll then restarts each member into the new stage); "" when the
    ensemble is at its spec's."""
    wanted = spec.zookeeper.quorum_tls
    if live is None:
        return ""
    current = zookeeper.live_quorum_tls(live)
    if current == wanted:
        return ""
    reconfig = settings.scale_zookeeper_by_reconfig
    held = held_at(spec, live, hold_replicas=reconfig)
    stage = held.zookeeper.quorum_tls
    name = owner.child_name(zookeeper.COMPONENT)
    if stage == current:
        return f"{name}: quorum TLS at {current}, towards {wanted}: waiting for every member"
    children = zookeeper.build(owner, held, scale_by_reconfig=reconfig)
    api.apply_all(exclude_control_plane(settings.allowlist, harden_all(children)))
    return f"{name}: quorum TLS {current} -> {stage} (towards {wanted}): restarting each member"


def scale_zookeeper(
    owner: Owner, spec: MesosClusterSpec, workloads: Workloads, settings: OperatorSettings
) -> ScaleResult:
    """Advance the scaling of the managed ensemble towards spec.zookeeper.replicas by at
    most one step (zk_scale); its message is for status ("" when nothing is
    pending)."""
    api = KubeApi.shared()
    name = owner.child_name(zookeeper.COMPONENT)
    summary = workloads.get("StatefulSet", owner.namespace, name)
    desired = spec.zookeeper.managed_replicas
    connect = zookeeper.connect_string(owner, spec)
    routes = zookeeper.operator_tls_routes(owner, spec)  # spec.zookeeper.tls: its TLS port
    try:
        with zk_tls_routes(routes):
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
        held = zookeeper.with_replicas(spec, replicas)
        api.apply(zookeeper.build(owner, held, scale_by_reconfig=True)[0])

    def reconfigure(action: Reconfig, version: int | None) -> None:
        password = settings.zk_super_password(owner.namespace, owner.name)
        auth = ("digest", f"{zookeeper.SUPER_USER}:{password}")
        tls = settings.zk_client_tls if routes else None
        kazoo_reconfigure(routes.get(connect, connect), auth, tls=tls)(action, version)

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
    settings: OperatorSettings,
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
    reconfig = settings.scale_zookeeper_by_reconfig
    # The ensemble's StatefulSet, read once, only for a cluster with tls: one without is
    # Off and so are its members (the CRD refuses removing tls).
    live: Manifest | None = None
    if spec.zookeeper.tls is not None and not spec.zookeeper.external:
        zk_name = owner.child_name(zookeeper.COMPONENT)
        live = api.get("apps/v1", "StatefulSet", owner.namespace, zk_name)
    if reconfig and not spec.zookeeper.external and not routing.migrating:
        # The scaling step rewrites the ConfigMap: at the members' quorum TLS stage.
        at_live = spec
        if live is not None:
            at_live = zookeeper.with_quorum_tls(spec, zookeeper.live_quorum_tls(live))
        scaled = scale_zookeeper(owner, at_live, workloads, settings)
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
        if not scaling and (stage := advance_quorum_tls(api, owner, spec, live, settings)):
            return stage
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
