"""Kopf handlers for MesosCluster: apply the children, then keep observing their health.

Only the registration and the order of the steps; the work is in the modules beside it.
`reconcile` turns the spec into children (level-based and idempotent: it applies the full
desired set every time). `observe` is a timer that, on every tick: observes what really runs
(observe), drives Mesos maintenance for cordoned nodes (maintenance; not while the leader
recovers), reads the agent pods if some agent is not ready (observe: agents on DOWN machines
are expected down) and the pods the scheduler cannot place if some workload is not ready,
builds status from it all (status), advances the quorum changes by at
most one step (quorum: ZooKeeper scaling, rolling restarts), exports the metrics (metrics)
and writes status if it changed.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf

from orchestrator_operator.common.conditions import now_rfc3339
from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models import API_GROUP, API_VERSION, MESOS_CLUSTER
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ROUTING_ANNOTATION, ZkRouting, parse_routing
from orchestrator_operator.models.vocabulary import MaintenanceState, WorkloadPhase
from orchestrator_operator.operator.admission import mesoscluster_refusal
from orchestrator_operator.operator.allowlist import exclude_control_plane
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.builders.cluster import build_children, stale_children
from orchestrator_operator.operator.indexes import Workloads
from orchestrator_operator.operator.mesoscluster.maintenance import run_maintenance
from orchestrator_operator.operator.mesoscluster.metrics import export_status, forget
from orchestrator_operator.operator.mesoscluster.observe import (
    cordoned_nodes,
    observe_cluster,
    with_agent_pods,
    with_unschedulable,
)
from orchestrator_operator.operator.mesoscluster.quorum import roll_quorum_members, zookeeper_held
from orchestrator_operator.operator.mesoscluster.status import build_status
from orchestrator_operator.operator.mesoscluster.watches import STATUS_EVENTS
from orchestrator_operator.operator.ownership import names_taken, owned_ensemble
from orchestrator_operator.operator.reconcile import (
    accept_for_children,
    counted,
    patch_changed_status,
    refused,
)
from orchestrator_operator.operator.settings import OperatorSettings

OBSERVE_INTERVAL_SECONDS = 1.0


def _owner(meta: kopf.Meta) -> Owner:
    return Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


@kopf.on.resume(API_GROUP, API_VERSION, "mesosclusters")
@kopf.on.create(API_GROUP, API_VERSION, "mesosclusters")
@kopf.on.update(API_GROUP, API_VERSION, "mesosclusters", field="spec")
@kopf.on.update(API_GROUP, API_VERSION, "mesosclusters", field="metadata.annotations")
@counted(MESOS_CLUSTER)
def reconcile(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    reason: str,
    **_: Any,
) -> None:
    routing = _routing(meta)
    owner = _owner(meta)
    settings: OperatorSettings = memo["settings"]
    reconfig = settings.scale_zookeeper_by_reconfig
    allow = settings.allowlist

    api = KubeApi.shared()
    # children found to be this cluster's: a later reconcile asks only for new names
    known: set[tuple[str, str, str]] = memo.setdefault("own_children", set())

    def super_secret(parsed: MesosClusterSpec) -> list[Manifest]:
        if not reconfig or parsed.zookeeper.external:
            return []
        password = settings.zk_super_password(owner.namespace, owner.name)
        return [zookeeper.super_secret(owner, password)]

    def refusal(parsed: MesosClusterSpec) -> str | None:
        children = build_children(owner, parsed, routing, scale_by_reconfig=reconfig)
        return mesoscluster_refusal(
            allow,
            owner.namespace,
            parsed,
            children,
            lambda servers: owned_ensemble(api, owner.uid, owner.namespace, servers),
        ) or names_taken(
            api, children + super_secret(parsed), {owner.uid}, MESOS_CLUSTER.kind, known
        )

    parsed: MesosClusterSpec = accept_for_children(
        MESOS_CLUSTER, spec, status, meta, patch, refusal=refusal
    )
    # Created once (409 when it exists; the operator may create Secrets, never read them):
    # the servers read its digest when they start.
    for secret in super_secret(parsed):
        api.create(secret)
    # Held at the live StatefulSet: its size (reconfig) and its quorum TLS stage (tls).
    if not parsed.zookeeper.external and (reconfig or parsed.zookeeper.tls is not None):
        parsed = zookeeper_held(api, owner, parsed, hold_replicas=reconfig)
    children = build_children(owner, parsed, routing, scale_by_reconfig=reconfig)
    api.apply_all(exclude_control_plane(allow, children))
    if reason != kopf.Reason.CREATE:  # a new cluster's uid owns nothing another spec made
        api.delete_owned(owner.uid, owner.namespace, stale_children(owner, parsed, routing))


def _routing(meta: kopf.Meta) -> ZkRouting | None:
    """The ZkMigration's routing, or None on a cluster no migration has touched."""
    annotations = dict(meta.get("annotations") or {})
    if ROUTING_ANNOTATION not in annotations:
        return None
    try:
        return parse_routing(annotations)
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from error


@kopf.on.delete(API_GROUP, API_VERSION, "mesosclusters", optional=True)
def forget_metrics(meta: kopf.Meta, **_: Any) -> None:
    """Children go by garbage collection; only the cluster's metric series need removing."""
    forget(meta["namespace"], meta["name"])


@kopf.timer(API_GROUP, API_VERSION, "mesosclusters", interval=OBSERVE_INTERVAL_SECONDS)
def observe(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """The safety net under the event-driven refresh (watches): observes a settled cluster
    every --status-resync-seconds, one that is moving every tick; writes status itself."""
    STATUS_EVENTS.on_timer(body, memo, kwargs)


@counted(MESOS_CLUSTER)
def observe_once(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    if status.get("phase") == WorkloadPhase.INVALID:
        return
    if refused(status):
        patch.status["phase"] = WorkloadPhase.INVALID
        return
    parsed = MesosClusterSpec.model_validate(copy.deepcopy(dict(spec)))
    owner = _owner(meta)
    routing = _routing(meta)
    workloads = Workloads(kwargs)
    observation = observe_cluster(owner, parsed, workloads, routing)
    maintenance = status.get("maintenance")
    cordoned = set(cordoned_nodes())
    leader = observation.election.leader if observation.election else None
    health = observation.master_health
    # A recovering leader knows no agent yet: maintenance waits for it (the report stays).
    if leader and health and not health.recovering and (cordoned or maintenance):
        report = run_maintenance(leader.address, cordoned, owner)
        maintenance = report if report is not None else maintenance
    down = frozenset(
        entry["node"] for entry in maintenance or [] if entry.get("state") == MaintenanceState.DOWN
    )
    observation = with_unschedulable(owner, with_agent_pods(owner, observation, down))
    previous = copy.deepcopy(list(status.get("conditions") or []))
    new_status = build_status(
        observation, status.get("observedGeneration"), previous, now_rfc3339(),
        status.get("mesos"),
    )  # fmt: skip
    new_status["rollout"] = (
        roll_quorum_members(owner, parsed, observation, workloads, memo["settings"], routing)
        or None
    )
    if maintenance is not None:
        new_status["maintenance"] = maintenance
    export_status(owner.namespace, owner.name, new_status, status.get("leadingMaster"))
    # Accepted is the reconcile handler's condition: keep it as it is.
    patch_changed_status(status, new_status, patch)


STATUS_EVENTS.use(observe_once)
