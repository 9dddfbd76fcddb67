"""Pure parts of `orchestrator zk-migrate`: the manifest it submits, the dry-run plan, the
status display, the report document and the spec patches of `advance` and `rollback`.

No I/O here: `zkmigrate/main.py` reads and writes the Kubernetes API and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models import ZK_MIGRATION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import MastersComponent, ZkRouting
from orchestrator_operator.models.vocabulary import ConditionType, ZkMigrationPhase
from orchestrator_operator.models.vocabulary import ZkMigrationPhaseState as State
from orchestrator_operator.models.zkmigration import PHASES, ZkMigrationSpec
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.zkmigration.archive import RestorePlan
from orchestrator_operator.operator.zkmigration.machine import (
    MAX_LAG_SECONDS,
    STABLE_SECONDS,
    routing_for,
)

TERMINAL_PHASES = (
    ZkMigrationPhase.SUCCEEDED,
    ZkMigrationPhase.ROLLED_BACK,
    ZkMigrationPhase.INVALID,
)
SAME_ENSEMBLE = "source and target must be different ZooKeeper ensembles"


class InputError(ValueError):
    """Bad input from the user: one clear sentence, exit code 2."""


# ---------------------------------------------------------------- start: the manifest


@dataclass(frozen=True)
class StartRequest:
    name: str
    namespace: str
    cluster: str
    target_connect: str | None = None
    target_managed_replicas: int | None = None
    source_connect: str | None = None
    paths: tuple[str, ...] = ()
    manual: bool = False
    strategy: str = "SourceWins"
    retention: str | None = None


def _pydantic_words(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"


def migration_manifest(request: StartRequest) -> Manifest:
    """The ZkMigration object; refuses what the CRD schema would refuse, in its words."""
    if (request.target_connect is None) == (request.target_managed_replicas is None):
        raise InputError("give exactly one of --target-connect or --target-managed-replicas")
    replicas = request.target_managed_replicas
    if replicas is not None and not (1 <= replicas <= 7 and replicas % 2 == 1):
        raise InputError("target.managed.replicas must be odd (1, 3, 5 or 7)")
    spec: dict[str, Any] = {"clusterRef": request.cluster}
    if request.source_connect is not None:
        spec["source"] = {"connectString": request.source_connect}
    spec["target"] = (
        {"external": {"connectString": request.target_connect}}
        if request.target_connect is not None
        else {"managed": {"replicas": replicas}}
    )
    if request.paths:
        spec["paths"] = list(dict.fromkeys(request.paths))
    spec["approval"] = {"mode": "Manual" if request.manual else "Automatic"}
    if request.manual:
        spec["approval"]["approvedThroughPhase"] = 0
    spec["conflictStrategy"] = request.strategy
    if request.retention is not None:
        spec["rollbackRetention"] = request.retention
    try:
        ZkMigrationSpec.model_validate(spec)
    except ValidationError as error:
        raise InputError(_pydantic_words(error)) from None
    return {
        "apiVersion": ZK_MIGRATION.api_version,
        "kind": ZK_MIGRATION.kind,
        "metadata": {"name": request.name, "namespace": request.namespace},
        "spec": spec,
    }


def cluster_connect_string(cluster: Manifest) -> str:
    """The ensemble a MesosCluster object uses now (what the operator calls ensemble A)."""
    meta = cluster["metadata"]
    spec = MesosClusterSpec.model_validate(cluster.get("spec") or {})
    owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))
    return zookeeper.connect_string(owner, spec)


def target_connect_string(manifest: Manifest) -> str:
    """Ensemble B as the operator will name it."""
    target = manifest["spec"]["target"]
    external = str(target["external"]["connectString"]) if "external" in target else None
    meta = manifest["metadata"]
    return zookeeper.target_connect_string(external, meta["name"], meta["namespace"])


def check_start(manifest: Manifest, cluster: Manifest, routing: ZkRouting) -> None:
    """What the CRD cannot see: B equal to the cluster's own ensemble, a second migration."""
    source = manifest["spec"].get("source", {}).get("connectString") or cluster_connect_string(
        cluster
    )
    if source == target_connect_string(manifest):
        raise InputError(f"{SAME_ENSEMBLE} (both are {source})")
    if routing.migrating and routing.migration != manifest["metadata"]["name"]:
        raise InputError(
            f"MesosCluster {cluster['metadata']['name']} is being migrated by ZkMigration"
            f" {routing.migration}"
        )


# ---------------------------------------------------------------- start --dry-run: the plan


def _routing_words(routing: ZkRouting, replicas: int) -> str:
    if not routing.migrating:
        return f"all {replicas} masters, the agents and Marathon on the cluster's spec ensemble"
    source = replicas if routing.source_masters is None else routing.source_masters
    return (
        f"masters on A: {source}, on B: {routing.target_masters}; agents on"
        f" {'B' if routing.agents_on_target else 'A'}; Marathon on"
        f" {'B' if routing.marathon_on_target else 'A'}"
    )


def _phase_actions(number: int, spec: ZkMigrationSpec, target: str, replicas: int) -> list[str]:
    managed = spec.target.managed
    actions = {
        1: [
            (
                f"create ensemble B: a {managed.replicas}-server ZooKeeper StatefulSet"
                f" ({managed.image}:{managed.version}) at {target}"
                if managed
                else f"attach ensemble B at {target} (external, not managed by the operator)"
            ),
            "record the baseline: running task ids and connected frameworks",
            f"start the sync engine A -> B over {', '.join(spec.paths)}"
            f" (conflicts: {spec.conflict_strategy}) and wait for its bootstrap",
        ],
        2: [
            f"add masters pointed at B one at a time, up to {replicas}, while the leader has"
            f" been stable {STABLE_SECONDS:.0f}s; the sync engine proxies the election so both"
            " sets form one Mesos cluster"
        ],
        3: [f"remove the {replicas} masters on A one at a time, the same way"],
        4: ["roll the agent DaemonSet and Marathon to B (rolling updates)"],
        5: [
            "drain agents still running on A through the Mesos maintenance API, then replace"
            " their pods so they come back on B"
        ],
        6: [
            "stop the sync engine",
            "wait until no session holds a znode on A",
            f"archive A's persistent znodes into ConfigMaps kept {spec.rollback_retention}",
            "set the MesosCluster's spec.zookeeper.external to B (masters run as their"
            " other StatefulSet, now on the spec's ensemble)",
        ],
    }
    return actions[number]


def _common_checks() -> list[str]:
    """The exit checks of every phase from 1 to 5 (machine.level_checks)."""
    return [
        "ensembles A and B healthy (every server answers)",
        f"a leading master in ZooKeeper, the same one for {STABLE_SECONDS:.0f}s; A and B"
        " agree on the leader",
        "every baseline task running, every baseline framework connected, no task failed,"
        " lost or killed since the start",
        "sync engine running and bootstrapped, digests equal,"
        f" lag p99 <= {MAX_LAG_SECONDS * 1000:.0f} ms",
        "agents and Marathon rolled out and ready",
    ]


def _exit_checks(level: int, replicas: int, wanted: ZkRouting) -> list[str]:
    if level == 6:
        return [
            "ensemble B healthy (every server answers)",
            f"a leading master, the same one for {STABLE_SECONDS:.0f}s",
            "every baseline task running and framework connected, none failed",
            "sync engine stopped",
            "no session holds znodes on A",
            "ensemble A archived",
            "the MesosCluster names ensemble B",
        ]
    source = replicas if wanted.source_masters is None else wanted.source_masters
    checks = [
        "the checks of every phase (above)",
        f"masters ready: {source} on A, {wanted.target_masters} on B; all"
        f" {source + wanted.target_masters} in the election, seen alike on A and B",
    ]
    if level == 1:
        checks.append("baseline recorded")
    if level >= 4:
        checks.append("every agent registered with the leading master")
    if level == 5:
        checks.append("no agent left on A")
    return checks


def plan_text(
    manifest: Manifest, cluster: Manifest, routing: ZkRouting, server_spec: Manifest | None
) -> str:
    """What `start` would do, phase by phase, in words: nothing is changed."""
    meta = manifest["metadata"]
    spec = ZkMigrationSpec.model_validate(server_spec or manifest["spec"])
    cluster_spec = MesosClusterSpec.model_validate(cluster.get("spec") or {})
    replicas = cluster_spec.masters.replicas
    source = spec.source.connect_string if spec.source else cluster_connect_string(cluster)
    target = target_connect_string(manifest)
    component: MastersComponent = routing.masters_component
    approval = spec.approval.mode + (
        f" (approved through phase {spec.approval.approved_through_phase})"
        if spec.approval.mode == "Manual"
        else ""
    )
    lines = [
        f"ZkMigration {meta['name']} in {meta['namespace']}: plan (nothing changed)",
        f"cluster   MesosCluster {cluster['metadata']['name']}: {replicas} masters (quorum"
        f" {cluster_spec.masters.effective_quorum}), Marathon {cluster_spec.marathon.replicas}"
        " replicas, agents on every selected node",
        f"source A  {source}" + ("" if spec.source else " (the ensemble the cluster uses now)"),
        f"target B  {target}"
        + (
            f" (managed: {spec.target.managed.replicas} servers)"
            if spec.target.managed
            else " (external)"
        ),
        f"paths     {', '.join(spec.paths)}",
        f"approval  {approval}; conflicts {spec.conflict_strategy};"
        f" archive of A kept {spec.rollback_retention}",
        f"before    {_routing_words(routing_for(0, meta['name'], target, replicas, component), replicas)}",  # noqa: E501
        "",
        "checks of every phase 1-5, before it may end:",
        *(f"  - {check}" for check in _common_checks()),
        "",
    ]
    for number, name in enumerate(PHASES, start=1):
        wanted = routing_for(number, meta["name"], target, replicas, component)
        entry = "phase 1 may start at once" if number == 1 else f"phase {number - 1} succeeded"
        if spec.approval.mode == "Manual":
            entry += f", and approvedThroughPhase >= {number}"
        lines.append(f"phase {number} {name}")
        lines.append(f"  entry:  {entry}")
        for action in _phase_actions(number, spec, target, replicas):
            lines.append(f"  does:   {action}")
        after = _routing_words(wanted, replicas)
        if number == 6:
            after = f"all {replicas} masters, the agents and Marathon on B"
        sync = "on" if 1 <= number <= 5 else "off"
        lines.append(f"  after:  {after}; sync {sync}")
        for check in _exit_checks(number, replicas, wanted):
            lines.append(f"  exit:   {check}")
        lines.append("")
    lines.append(
        "rollback: `zk-migrate rollback NAME --to K` undoes the phases after K one at a time"
        " (the highest first), each until the checks of the level below pass."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- status


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _phase_rows(status: Manifest) -> list[Manifest]:
    known = {p.get("number"): p for p in status.get("phases") or []}
    return [
        known.get(n) or {"number": n, "name": name, "state": State.PENDING}
        for n, name in enumerate(PHASES, start=1)
    ]


STATE_STYLES: dict[str, str] = {
    State.RUNNING: "bold yellow",
    State.SUCCEEDED: "green",
    State.FAILED: "bold red",
    State.ROLLED_BACK: "magenta",
    State.PENDING: "dim",
}


def status_view(name: str, status: Manifest, now: datetime) -> RenderableType:
    """The live display: phases as rows, what holds the current phase, sync, leader."""
    phase = status.get("phase") or f"{ZkMigrationPhase.PENDING} (not yet seen by the operator)"
    current = status.get("currentPhase")
    header = Text(f"ZkMigration {name}: {phase}", style="bold")
    if current:
        header.append(
            f"  phase {current}/6" + (" (rolling back)" if status.get("rollingBack") else "")
        )
    parts: list[RenderableType] = [header]
    if status.get("sourceConnectString"):
        parts.append(
            Text(f"A {status['sourceConnectString']}  ->  B {status.get('targetConnectString')}")
        )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("#", "phase", "state", "started", "duration", "message"):
        table.add_column(column, overflow="fold")
    for row in _phase_rows(status):
        started = parse_time(row.get("startedAt"))
        finished = parse_time(row.get("finishedAt"))
        state = str(row.get("state") or State.PENDING)
        took = _seconds(
            started, finished or (now if state == State.RUNNING and started else None)
        )
        table.add_row(
            str(row.get("number")),
            str(row.get("name")),
            Text(state, style=STATE_STYLES.get(state, "")),
            started.strftime("%H:%M:%S") if started else "",
            _duration(took),
            str(row.get("message") or "")[:120],
            style="bold" if row.get("number") == current else "",
        )
    parts.append(table)
    checks = status.get("checks") or []
    if checks:
        parts.append(Text(f"holding phase {current}:", style="bold"))
        parts += [Text(f"  - {check}") for check in checks]
    elif current and phase not in TERMINAL_PHASES:
        parts.append(Text(f"phase {current}: every check passes"))
    parts.append(Text(sync_line(status.get("sync"))))
    leader = status.get("leader") or {}
    if leader.get("id"):
        parts.append(
            Text(
                f"leader {leader['id']} at {leader.get('address') or '?'} since"
                f" {leader.get('since') or '?'}; {leader.get('changes', 0)} leader changes"
            )
        )
    else:
        parts.append(Text("leader: none known"))
    return Group(*parts)


def sync_line(sync: Manifest | None) -> str:
    if not sync:
        return "sync: no report from the sync controller"
    lag = sync.get("lagP99Seconds")
    digests = {True: "equal", False: "DIFFER", None: "not compared yet"}[sync.get("digestsEqual")]
    words = [f"sync: {sync.get('state', '?')}"]
    if sync.get("message"):
        words[0] += f" ({sync['message']})"
    words.append(f"lag p99 {lag * 1000:.0f} ms" if lag is not None else "lag p99 -")
    words.append(f"digests {digests}")
    if sync.get("differences") is not None:
        words.append(f"{sync['differences']} differences")
    if sync.get("conflicts") is not None:
        words.append(f"{sync['conflicts']} conflicts")
    return "; ".join(words)


# ---------------------------------------------------------------- validate


def validation(status: Manifest) -> tuple[bool, list[str]]:
    """Whether the current phase's checks all pass, and the lines saying so."""
    phase = status.get("phase")
    if phase is None:
        return False, ["no status yet: the operator has not seen this migration"]
    if phase == ZkMigrationPhase.INVALID:
        return False, [
            "the spec is invalid: " + _condition_message(status, ConditionType.ACCEPTED)
        ]
    current = status.get("currentPhase")
    checks = list(status.get("checks") or [])
    sync = status.get("sync") or {}
    lines = [f"phase {current} ({phase})" if current else f"{phase}"]
    lines += [f"FAIL {check}" for check in checks] or ["ok   every check of the phase passes"]
    digests = sync.get("digestsEqual")
    if digests is False:
        lines.append(f"FAIL digests differ ({sync.get('differences')} differences)")
    elif digests is True:
        lines.append("ok   digests of A and B are equal")
    else:
        lines.append("--   digests not compared yet")
    return not checks and digests is not False, lines


def _condition_message(status: Manifest, kind: str) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("message") or "")
    return "see the Accepted condition"


# ---------------------------------------------------------------- advance and rollback


def advance_patch(obj: Manifest, through: int | None) -> tuple[Manifest, str]:
    """The merge patch approving phases up to `through` (default: the current phase)."""
    name = obj["metadata"]["name"]
    approval = (obj.get("spec") or {}).get("approval") or {}
    if approval.get("mode", "Automatic") != "Manual":
        raise InputError(
            f"ZkMigration {name} has approval mode Automatic: its phases advance on their own"
        )
    status = obj.get("status") or {}
    if status.get("phase") in TERMINAL_PHASES:
        raise InputError(f"ZkMigration {name} is {status['phase']}: nothing to approve")
    wanted = through if through is not None else status.get("currentPhase") or 1
    if not 1 <= wanted <= 6:
        raise InputError(f"--through must be a phase number from 1 to 6, not {wanted}")
    was = int(approval.get("approvedThroughPhase") or 0)
    patch = {"spec": {"approval": {"approvedThroughPhase": wanted}}}
    note = f"ZkMigration {name}: approved through phase {wanted} (was {was})"
    if wanted < was:
        note += "; phases already started keep running"
    return patch, note


def rollback_patch(obj: Manifest, to: int | None, cancel: bool) -> tuple[Manifest, str]:
    name = obj["metadata"]["name"]
    if cancel:
        return {"spec": {"rollbackToPhase": None}}, f"ZkMigration {name}: rollback cancelled"
    assert to is not None
    if not 0 <= to <= 5:
        raise InputError(f"--to must be a phase number from 0 to 5, not {to}")
    status = obj.get("status") or {}
    if status.get("phase") == ZkMigrationPhase.SUCCEEDED:
        raise InputError(
            f"ZkMigration {name} has finished: rolling back now means a new ZkMigration from B to A"
        )
    current = status.get("currentPhase")
    if not current:
        raise InputError(f"ZkMigration {name} has not started a phase: nothing to roll back")
    if to >= current:
        raise InputError(
            f"--to {to} must be below the current phase {current} (phases after K are undone)"
        )
    return (
        {"spec": {"rollbackToPhase": to}},
        f"ZkMigration {name}: rolling back phases {current}..{to + 1} to the state after"
        f" phase {to}",
    )


# ---------------------------------------------------------------- report


def report_document(obj: Manifest) -> Manifest:
    """The final report as JSON: phases with timings, cutover, baseline, leader, sync,
    archive."""
    status = obj.get("status") or {}
    phases = []
    for row in _phase_rows(status):
        started, finished = parse_time(row.get("startedAt")), parse_time(row.get("finishedAt"))
        phases.append(
            {
                "number": row.get("number"),
                "name": row.get("name"),
                "state": row.get("state", State.PENDING),
                "startedAt": row.get("startedAt"),
                "finishedAt": row.get("finishedAt"),
                "seconds": _seconds(started, finished),
                "message": row.get("message", ""),
            }
        )
    by_number = {p["number"]: p for p in phases}
    cutover = _seconds(
        parse_time(by_number[2]["startedAt"]), parse_time(by_number[6]["finishedAt"])
    )
    baseline = status.get("baseline") or {}
    leader = status.get("leader") or {}
    sync = status.get("sync") or {}
    sync_keys = (
        "state", "bootstrapped", "bootstrapZnodes", "bootstrapSeconds", "lagP99Seconds",
        "digestsEqual", "differences", "conflicts", "znodesSource", "znodesTarget",
        "lastVerifyTime",
    )  # fmt: skip
    return {
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace"),
        "cluster": (obj.get("spec") or {}).get("clusterRef"),
        "phase": status.get("phase"),
        "succeeded": status.get("phase") == ZkMigrationPhase.SUCCEEDED,
        "source": status.get("sourceConnectString"),
        "target": status.get("targetConnectString"),
        "phases": phases,
        "cutoverSeconds": cutover,
        "baseline": {
            "taskCount": baseline.get("taskCount"),
            "taskDigest": baseline.get("taskDigest"),
            "recordedAt": baseline.get("recordedAt"),
            "frameworks": len(baseline.get("frameworkIds") or []),
        }
        if baseline
        else None,
        "leader": {
            "id": leader.get("id"),
            "address": leader.get("address"),
            "changes": leader.get("changes", 0),
        }
        if leader
        else None,
        "sync": {key: sync.get(key) for key in sync_keys} if sync else None,
        "archive": {
            "configMaps": list(status.get("archive") or []),
            "expiresAt": status.get("archiveExpiresAt"),
        },
    }


def report_text(obj: Manifest) -> str:
    """The human report: the operator's own once Succeeded, else what exists so far."""
    status = obj.get("status") or {}
    if status.get("phase") == ZkMigrationPhase.SUCCEEDED and status.get("report"):
        return str(status["report"])
    doc = report_document(obj)
    lines = [
        f"ZkMigration {doc['name']}: not finished (phase {doc['phase'] or 'none yet'})",
        f"from {doc['source']} to {doc['target']}",
    ]
    for p in doc["phases"]:
        took = f" {p['seconds']:7.1f} s" if p["seconds"] is not None else ""
        lines.append(f"  phase {p['number']} {p['name']:<20} {p['state']:<10}{took}")
    if doc["baseline"]:
        lines.append(
            f"tasks: {doc['baseline']['taskCount']} running at the start (digest"
            f" {doc['baseline']['taskDigest']})"
        )
    if doc["leader"]:
        lines.append(
            f"leader changes: {doc['leader']['changes']}; leader now {doc['leader']['id']}"
        )
    lines.append(sync_line(status.get("sync")))
    return "\n".join(lines)


def restore_summary(
    name: str, target: str, archived: int, plan: RestorePlan, *, dry_run: bool
) -> str:
    overwrites = len(plan.puts) - plan.creates
    lines = [
        f"archive of {name}: {archived} znodes; on {target}: {plan.unchanged} already equal,"
        f" {plan.creates} to create, {overwrites} to overwrite, {len(plan.kept)} differ and"
        " are kept" + (" (dry run: nothing written)" if dry_run else ""),
    ]
    if plan.kept:
        lines.append("kept as they are (--overwrite replaces them; an ephemeral znode never):")
        lines += [f"  {path}" for path in plan.kept[:20]]
        if len(plan.kept) > 20:
            lines.append(f"  ... and {len(plan.kept) - 20} more")
    return "\n".join(lines)
