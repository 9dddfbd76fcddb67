"""Kopf handlers for ZkMigration: validate the spec, then drive the six phases on a timer.

Every tick reads the truth (both ensembles, the Mesos election and leader, the cluster's
workloads, the sync controller's report in status.sync), asks the pure state machine
(`machine.step`) what comes next, carries it out (the cluster's routing
annotation, the sync request, maintenance drains, retiring ensemble A) and writes status.
All progress is in status, so a restarted operator continues where it stopped.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from kazoo.exceptions import KazooException
from pydantic import ValidationError

from orchestrator_operator.common.conditions import make_condition, set_condition
from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Owner, owner_reference
from orchestrator_operator.common.zk_credentials import (
    CredentialsRefused,
    cluster_secret_ref,
    migration_secret_refs,
    zk_auth_by_hosts,
)
from orchestrator_operator.models import API_GROUP, API_VERSION, MESOS_CLUSTER, ZK_MIGRATION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ROUTING_ANNOTATION, ZkRouting, parse_routing
from orchestrator_operator.models.vocabulary import (
    ConditionType,
    MaintenanceState,
    Reason,
    SyncState,
    WorkloadPhase,
    ZkMigrationPhase,
)
from orchestrator_operator.models.vocabulary import ZkMigrationPhaseState as PhaseState
from orchestrator_operator.models.zkmigration import (
    DECIDED_BY_ANNOTATION,
    PHASES,
    PhaseRecord,
    ZkMigrationSpec,
    ZkMigrationStatus,
)
from orchestrator_operator.operator.admission import zkmigration_refusal
from orchestrator_operator.operator.allowlist import (
    AllowList,
    check_zk_endpoints,
    exclude_control_plane,
)
from orchestrator_operator.operator.builders import networkpolicy, zookeeper
from orchestrator_operator.operator.mesoscluster.maintenance import run_maintenance
from orchestrator_operator.operator.mesoscluster.observe import cordoned_nodes
from orchestrator_operator.operator.mesoscluster.status import COMPONENT_CONDITIONS
from orchestrator_operator.operator.ownership import names_taken, owned_ensemble
from orchestrator_operator.operator.reconcile import (
    accept_spec,
    counted,
    patch_changed_status,
    refused,
)
from orchestrator_operator.operator.zkmigration import archive
from orchestrator_operator.operator.zkmigration import metrics as metrics_export
from orchestrator_operator.operator.zkmigration.events import audit_events
from orchestrator_operator.operator.zkmigration.machine import (
    Decision,
    handover_patch,
    other_component,
    plain_target_refusal,
    step,
    sync_request,
)
from orchestrator_operator.operator.zkmigration.observation import EnsembleView
from orchestrator_operator.operator.zkmigration.observe import agent_pods, ensemble_view, observe
from orchestrator_operator.zk.clients import ZkUnreachable, zk_credentials, zk_tls_routes

log = logging.getLogger(__name__)
audit_log = logging.getLogger("orchestrator.operator.audit")
TICK_SECONDS = 2.0
ACCEPTED_MESSAGE = "spec is valid"


@kopf.on.resume(API_GROUP, API_VERSION, "zkmigrations")
@kopf.on.create(API_GROUP, API_VERSION, "zkmigrations")
@kopf.on.update(API_GROUP, API_VERSION, "zkmigrations", field="spec")
def validate(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    started = status.get("phase") not in (None, ZkMigrationPhase.INVALID)
    allow: AllowList = memo["settings"].allowlist
    accept_spec(
        ZK_MIGRATION, spec, status, meta.get("generation"), patch, ACCEPTED_MESSAGE,
        phase=None if started else ZkMigrationPhase.PENDING,
        refusal=lambda parsed: zkmigration_refusal(allow, meta["namespace"], parsed),
    )  # fmt: skip


def _migration_owner(meta: kopf.Meta) -> Owner:
    return Owner(
        name=meta["name"], namespace=meta["namespace"], uid=meta["uid"],
        kind=ZK_MIGRATION.kind, api_version=ZK_MIGRATION.api_version,
    )  # fmt: skip


def _owner_ref(meta: kopf.Meta) -> dict[str, Any]:
    return owner_reference(_migration_owner(meta))


def _target_connect(spec: ZkMigrationSpec, meta: kopf.Meta) -> str:
    external = spec.target.external.connect_string if spec.target.external else None
    return zookeeper.target_connect_string(external, meta["name"], meta["namespace"])


def _ensembles_refused(
    allow: AllowList, spec: ZkMigrationSpec, owner: Owner, cluster: MesosClusterSpec, source: str
) -> str | None:
    """Ensemble A as resolved (the cluster's, when the spec names none) and an external B
    against the allow-list, checked on every tick before any session (the allow-list may
    have changed since validate). The operator's own managed ensembles need no entry, nor
    does the cluster's ensemble when a migration built it and handed it over (its B)."""
    if source != zookeeper.client_address(owner):
        message = check_zk_endpoints(allow, source)
        own = spec.source is None and message is not None
        if own and owned_ensemble(KubeApi.shared(), owner.uid, owner.namespace, source):
            message = None
        if message:
            return f"ensemble A: {message}"
    if spec.target.external is not None:
        message = check_zk_endpoints(allow, spec.target.external.connect_string)
        if message:
            return f"ensemble B: {message}"
    return None


def _cluster_owner_ref(cluster_meta: dict[str, Any]) -> dict[str, Any]:
    return owner_reference(
        Owner(
            name=cluster_meta["name"], namespace=cluster_meta["namespace"], uid=cluster_meta["uid"]
        )
    )


def _apply_managed_target(
    spec: ZkMigrationSpec,
    meta: kopf.Meta,
    cluster: MesosClusterSpec,
    owner_ref: dict[str, Any],
    scale_by_reconfig: bool,
    allow: AllowList,
    known: set[tuple[str, str, str]] | None = None,
) -> str | None:
    """Ensemble B made by the operator with the MesosCluster's ZooKeeper builders, named
    after the migration. The migration owns it until phase 6 hands it to the cluster, so
    that deleting a finished migration leaves the cluster's ensemble alone. Nothing is
    written when a name is another's (a migration named after its cluster would name B's
    StatefulSet as A's): the refusal is returned. `known`: `names_taken`'s memory."""
    managed = spec.target.managed
    if managed is None:
        return None
    migration = _migration_owner(meta)
    children = zookeeper.build_migration_target(
        migration, managed, cluster, scale_by_reconfig=scale_by_reconfig
    )
    # its NetworkPolicy: the cluster's parts, the operator's namespace, the nodes
    cluster_owner = Owner(name=spec.cluster_ref, namespace=meta["namespace"], uid="")
    on_b = zookeeper.migration_target_spec(managed, cluster)
    children += networkpolicy.migration_target(migration, cluster_owner, on_b)
    for child in children:
        child["metadata"]["ownerReferences"] = [owner_ref]
    api = KubeApi.shared()
    # the migration's until the handover, the cluster's after it
    owners = {meta["uid"], owner_ref["uid"]}
    taken = names_taken(api, children, owners, ZK_MIGRATION.kind, known)
    if taken:
        return taken
    api.apply_all(exclude_control_plane(allow, children))
    return None


def _status_fields(status: ZkMigrationStatus) -> dict[str, Any]:
    """Status as camelCase JSON, without `sync`: that belongs to the sync controller."""
    dumped: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude={"sync"})
    return dumped


def _conditions(
    previous: list[Any], status: ZkMigrationStatus, generation: int | None
) -> list[Any]:
    phase = status.phase or ZkMigrationPhase.PENDING
    checks = "; ".join(status.checks)
    current = status.current_phase
    progressing = make_condition(
        ConditionType.PROGRESSING,
        phase in (ZkMigrationPhase.RUNNING, ZkMigrationPhase.ROLLING_BACK),
        phase,  # the reason is the phase
        (f"phase {current}: " + (checks or "exit checks pass")) if current else checks,
        generation,
    )
    succeeded = phase == ZkMigrationPhase.SUCCEEDED
    failed = phase == ZkMigrationPhase.FAILED
    completed = make_condition(
        ConditionType.COMPLETED,
        succeeded,
        Reason.SUCCEEDED if succeeded else Reason.FAILED if failed else Reason.NOT_FINISHED,
        "the cluster runs on ensemble B"
        if succeeded
        else f"failed: {checks}"
        if failed
        else f"phase is {phase}",
        generation,
    )
    return set_condition(set_condition(previous, progressing), completed)


def _finalize(
    spec: ZkMigrationSpec,
    meta: kopf.Meta,
    cluster_meta: dict[str, Any],
    cluster_spec: dict[str, Any],
    status: ZkMigrationStatus,
    sync_stopped: bool,
    source: EnsembleView,
    scale_by_reconfig: bool,
    allow: AllowList,
) -> None:
    """Phase 6, in order: archive A (once), then point the cluster at B for good. The
    archive is the tree this tick read to count A's sessions, once none is left (one read
    of A, not two)."""
    api = KubeApi.shared()
    if not status.archive:
        if not (sync_stopped and source.ephemerals == 0 and source.tree is not None):
            return
        blob = archive.archive_lines(source.tree)
        expires = datetime.now(UTC) + timedelta(
            seconds=archive.parse_retention(spec.rollback_retention)
        )
        configmaps = archive.archive_configmaps(
            meta["name"], meta["namespace"], _owner_ref(meta), blob, expires
        )
        taken = names_taken(api, configmaps, {meta["uid"]}, ZK_MIGRATION.kind)
        if taken:
            status.checks.append(f"archive of ensemble A: {taken}")
            return
        api.apply_all(configmaps)
        status.archive = [c["metadata"]["name"] for c in configmaps]
        status.archive_expires_at = expires
    current = parse_routing(cluster_meta.get("annotations"))
    if not current.migrating:
        return  # done already: one merge patch changed both the spec and the routing
    cluster = MesosClusterSpec.model_validate(cluster_spec)
    taken = _apply_managed_target(
        spec, meta, cluster, _cluster_owner_ref(cluster_meta), scale_by_reconfig, allow
    )
    if taken:
        status.checks.append(f"ensemble B: {taken}")
        return
    final = ZkRouting(masters_component=other_component(current.masters_component))
    target = status.target_connect_string or ""
    managed = spec.target.managed
    routes = (
        zookeeper.migration_target_tls_routes(_migration_owner(meta), managed) if managed else {}
    )
    body = handover_patch(final, target, routes.get(target))
    api.merge_patch(
        MESOS_CLUSTER.api_version, MESOS_CLUSTER.kind, cluster_meta["namespace"],
        cluster_meta["name"], body,
    )  # fmt: skip


@kopf.timer(API_GROUP, API_VERSION, "zkmigrations", interval=TICK_SECONDS, initial_delay=1.0)
@counted(ZK_MIGRATION)
def drive(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    if status.get("phase") in (None, ZkMigrationPhase.INVALID, ZkMigrationPhase.FAILED):
        return  # not validated yet, invalid (the validate handler said why), or failed for good
    if refused(status):
        patch.status["phase"] = ZkMigrationPhase.INVALID
        return
    parsed = ZkMigrationSpec.model_validate(copy.deepcopy(dict(spec)))
    current = ZkMigrationStatus.model_validate(copy.deepcopy(dict(status)))
    reconfig: bool = memo["settings"].scale_zookeeper_by_reconfig
    allow: AllowList = memo["settings"].allowlist
    api = KubeApi.shared()
    cluster = api.get(
        MESOS_CLUSTER.api_version, MESOS_CLUSTER.kind, meta["namespace"], parsed.cluster_ref
    )
    if cluster is not None and cluster["metadata"].get("deletionTimestamp"):
        cluster = None  # being deleted: as good as gone
    if cluster is None and current.phase == ZkMigrationPhase.SUCCEEDED:
        _expire_archive(meta, current)  # done: the cluster's fate is no longer its business
        _write(meta, status, current, patch, parsed)
        return
    if (
        cluster is None
        and current.sync_request is not None
        and current.phase != ZkMigrationPhase.PENDING
    ):
        # Under way (it started and asked for the sync): nothing left to migrate or to roll
        # back to. A migration that never started waits for its cluster, below.
        _fail(
            meta, status, current, patch, f"MesosCluster {parsed.cluster_ref} was deleted", parsed
        )
        return
    if cluster is None:
        _hold(meta, status, current, patch, f"MesosCluster {parsed.cluster_ref} not found")
        return
    if (cluster.get("status") or {}).get("phase") == WorkloadPhase.INVALID:
        _hold(meta, status, current, patch, f"MesosCluster {parsed.cluster_ref} is Invalid")
        return
    cluster_spec = MesosClusterSpec.model_validate(cluster.get("spec") or {})
    cluster_meta = cluster["metadata"]
    owner = Owner(
        name=cluster_meta["name"], namespace=cluster_meta["namespace"], uid=cluster_meta["uid"]
    )
    if current.source_connect_string is None:
        current.source_connect_string = (
            parsed.source.connect_string
            if parsed.source
            else zookeeper.connect_string(owner, cluster_spec)
        )
        current.target_connect_string = _target_connect(parsed, meta)
    source = current.source_connect_string
    target = current.target_connect_string or _target_connect(parsed, meta)
    not_allowed = _ensembles_refused(allow, parsed, owner, cluster_spec, source)
    not_allowed = not_allowed or plain_target_refusal(parsed, cluster_spec)
    if not_allowed:
        # before any session: not even the pre-migration checks read a refused ensemble
        _hold(meta, status, current, patch, not_allowed)
        return
    annotations = cluster_meta.get("annotations") or {}
    # not yet handed to the cluster:
    if current.phase != ZkMigrationPhase.SUCCEEDED and not current.archive:
        taken = _apply_managed_target(
            parsed, meta, cluster_spec, _owner_ref(meta), reconfig, allow,
            memo.setdefault("own_children", set()),
        )  # fmt: skip
        if taken:
            _hold(meta, status, current, patch, f"ensemble B: {taken}")
            return
    try:
        routing = parse_routing(annotations) if ROUTING_ANNOTATION in annotations else None
    except ValueError as error:
        _hold(meta, status, current, patch, str(error))
        return
    if current.phase == ZkMigrationPhase.SUCCEEDED:
        _expire_archive(meta, current)
        _write(meta, status, current, patch, parsed)
        return
    if not _started(current, parsed):
        checks = pre_migration_checks(parsed.cluster_ref, cluster, ensemble_view(target))
        if checks:
            # Pending, with the six phases still to come and no sync asked for.
            current.checks = checks
            current.phases = current.phases or [
                PhaseRecord(number=n, name=name) for n, name in enumerate(PHASES, start=1)
            ]
            _write(meta, status, current, patch, parsed)
            return
    # each side's digest credentials, from the Secrets the spec (or the cluster) names
    source_ref, target_ref = migration_secret_refs(parsed, cluster_spec)
    try:
        auth = zk_auth_by_hosts(api, meta["namespace"], {
            zookeeper.connect_string(owner, cluster_spec): cluster_secret_ref(cluster_spec),
            source: source_ref,
            target: target_ref,
        })  # fmt: skip
    except CredentialsRefused as error:
        _hold(meta, status, current, patch, f"ZooKeeper credentials: {error}")
        return
    # A managed ensemble with tls (the cluster's, B) is read on its TLS port (zk/clients.py)
    routes = zookeeper.operator_tls_routes(owner, cluster_spec)
    if parsed.target.managed is not None:
        migration = _migration_owner(meta)
        routes |= zookeeper.migration_target_tls_routes(migration, parsed.target.managed)
    try:
        with zk_credentials(auth), zk_tls_routes(routes):
            observation = observe(
                owner=owner,
                cluster_spec=cluster_spec,
                cluster_connect=zookeeper.connect_string(owner, cluster_spec),
                routing=routing,
                source=source,
                target=target,
                paths=list(parsed.paths),
                # A's tree, read only while it matters: in phase 6, once the sync engine
                # (whose proxies hold ephemerals on A) has stopped, until it is archived.
                count_source_sessions=current.current_phase == 6
                and not current.archive
                and (current.sync is None or current.sync.state == SyncState.STOPPED),
                sync=current.sync,
                since=current.baseline.recorded_at if current.baseline else None,
                now=datetime.now(UTC),
            )
    except (ZkUnreachable, KazooException) as error:
        _hold(meta, status, current, patch, f"cannot observe the ensembles: {error}")
        return
    decision = step(meta["name"], parsed, current, observation)
    new = decision.status
    if new.checks != current.checks or new.phase != current.phase:
        log.info(
            "%s/%s: %s phase %s; holding on: %s", meta["namespace"], meta["name"], new.phase,
            new.current_phase, "; ".join(new.checks) or "nothing",
        )  # fmt: skip
    if decision.routing is not None and decision.routing != (routing or ZkRouting()):
        api.merge_patch(
            MESOS_CLUSTER.api_version, MESOS_CLUSTER.kind, owner.namespace, owner.name,
            {"metadata": {"annotations": {ROUTING_ANNOTATION: decision.routing.to_annotation()}}},
        )  # fmt: skip
    # the controller reaches a TLS side on its TLS port, with its own client certificate
    new.sync_request = sync_request(
        decision.sync_active, source, target, routes, parsed, source_ref, target_ref
    )
    if new.current_phase == 5 and observation.mesos.leader_address:
        # Forward: drain the agents left on A; undoing phase 5 (no drain_nodes): bring
        # back up the machines it took down, or level 4's checks would wait for ever.
        _drain_agents_left_on_source(owner, observation.mesos.leader_address, decision)
    if decision.finalize:
        sync_stopped = observation.sync is None or observation.sync.state == SyncState.STOPPED
        with zk_credentials(auth), zk_tls_routes(routes):  # the archive reads A
            _finalize(
                parsed, meta, cluster_meta, cluster.get("spec") or {}, new, sync_stopped,
                observation.source, reconfig, allow,
            )  # fmt: skip
    _write(meta, status, new, patch, parsed)


def _drain_agents_left_on_source(owner: Owner, leader: str, decision: Decision) -> None:
    """Agents whose pods still run the template pointing at A: drain them through the
    maintenance API; once a machine is down (no tasks left), delete its pod so the DaemonSet
    brings the agent back on B. The next step, with the node no longer listed, brings the
    machine up again and restarts its agent pod at once (`run_maintenance` with the owner):
    while the machine was DOWN the master shut the new agent down on every start, as Mesos
    does, so the kubelet holds it in a crash-loop back-off. Nodes cordoned in Kubernetes
    stay in maintenance (the MesosCluster's own maintenance drains them)."""
    cordoned = set(decision.drain_nodes) | set(cordoned_nodes())
    report = run_maintenance(leader, cordoned, owner) or []
    down = {entry["node"] for entry in report if entry.get("state") == MaintenanceState.DOWN}
    if not down & decision.drain_nodes:
        return
    api = KubeApi.shared()
    for pod in agent_pods(api, owner):
        if pod["spec"].get("nodeName") in down & decision.drain_nodes:
            log.info("agent on %s drained; replacing its pod", pod["spec"]["nodeName"])
            api.delete("v1", "Pod", owner.namespace, pod["metadata"]["name"])


def _expire_archive(meta: kopf.Meta, status: ZkMigrationStatus) -> None:
    if not status.archive or status.archive_expires_at is None:
        return
    if datetime.now(UTC) < status.archive_expires_at:
        return
    api = KubeApi.shared()
    for name in status.archive:
        api.delete("v1", "ConfigMap", meta["namespace"], name)
    status.archive = []


@kopf.on.delete(API_GROUP, API_VERSION, "zkmigrations", optional=True)
def forget_metrics(meta: kopf.Meta, **_: Any) -> None:
    metrics_export.forget(meta["namespace"], meta["name"])


def _started(status: ZkMigrationStatus, spec: ZkMigrationSpec) -> bool:
    """Some phase has begun (or is being rolled back): past the pre-migration checks."""
    return spec.rollback_to_phase is not None or any(
        record.state != PhaseState.PENDING for record in status.phases
    )


def pre_migration_checks(
    cluster_ref: str, cluster: dict[str, Any], target: EnsembleView
) -> list[str]:
    """What must hold before phase 1 touches anything (the sync, the cluster's routing), in
    words: the MesosCluster Ready (a Degraded cluster's masters may have no quorum or no
    leader to move, and a migration would hide that fault behind its own) and every server
    of ensemble B answering."""
    checks = []
    cluster_status = cluster.get("status") or {}
    phase = cluster_status.get("phase")
    if phase != WorkloadPhase.READY:
        failing = [
            f"{c.get('type')}: {str(c.get('message') or c.get('reason'))[:400]}"
            for c in cluster_status.get("conditions") or []
            if c.get("type") in COMPONENT_CONDITIONS and c.get("status") != "True"
        ]
        checks.append(
            f"pre-migration check: MesosCluster {cluster_ref} is {phase or 'not observed yet'},"
            " and a migration starts only on a Ready cluster"
            + (f" ({'; '.join(failing)})" if failing else "")
        )
    if not target.healthy:
        checks.append(f"pre-migration check: {target.describe('B')}")
    return checks


def _fail(
    meta: kopf.Meta,
    status: kopf.Status,
    current: ZkMigrationStatus,
    patch: kopf.Patch,
    why: str,
    spec: ZkMigrationSpec | None = None,
) -> None:
    """The migration cannot go on: Failed for good with why, its running phase Failed too,
    and the sync request inactive so that the sync controller stops the engine."""
    now = datetime.now(UTC)
    message = f"{why}: the migration cannot go on; its sync is stopped"
    current.phase = ZkMigrationPhase.FAILED
    current.checks = [message]
    for record in current.phases:
        if record.state == PhaseState.RUNNING:
            record.state, record.finished_at, record.message = PhaseState.FAILED, now, message
    if current.sync_request is not None:
        current.sync_request = current.sync_request.model_copy(update={"active": False})
    log.warning("%s/%s: Failed: %s", meta["namespace"], meta["name"], message)
    _write(meta, status, current, patch, spec)


def _audit(
    meta: kopf.Meta, status: kopf.Status, new: ZkMigrationStatus, spec: ZkMigrationSpec
) -> None:
    """Each phase started, finished or undone, a rollback, an approval awaited: a Kubernetes
    Event on the migration and a line of the audit log (events.py)."""
    try:
        before = ZkMigrationStatus.model_validate(copy.deepcopy(dict(status)))
    except ValidationError:
        before = ZkMigrationStatus()
    # kopf.event reads the apiVersion, kind and metadata of any mapping
    body = cast(
        kopf.Body,
        {"apiVersion": ZK_MIGRATION.api_version, "kind": ZK_MIGRATION.kind, "metadata": meta},
    )
    decided_by = (meta.get("annotations") or {}).get(DECIDED_BY_ANNOTATION)
    for event in audit_events(before, new, spec, decided_by):
        audit_log.info(
            "ZkMigration %s/%s: %s: %s", meta["namespace"], meta["name"], event.reason,
            event.message,
        )  # fmt: skip
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _hold(
    meta: kopf.Meta, status: kopf.Status, current: ZkMigrationStatus, patch: kopf.Patch, why: str
) -> None:
    """Nothing can be observed or decided: say why, and touch nothing else in status."""
    current.checks = [why]
    conditions = _conditions(list(status.get("conditions") or []), current, meta.get("generation"))
    patch_changed_status(status, {"checks": current.checks, "conditions": conditions}, patch)


def _write(
    meta: kopf.Meta,
    status: kopf.Status,
    new: ZkMigrationStatus,
    patch: kopf.Patch,
    spec: ZkMigrationSpec | None = None,
) -> None:
    if spec is not None:
        _audit(meta, status, new, spec)
    metrics_export.export_status(meta["namespace"], meta["name"], new)
    generation = meta.get("generation")
    fields = _status_fields(new)
    fields["conditions"] = _conditions(list(status.get("conditions") or []), new, generation)
    patch_changed_status(status, fields, patch)
