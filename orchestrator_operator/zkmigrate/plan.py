"""What `orchestrator zk-migrate start --dry-run` prints: the plan, phase by phase, with the
checks that hold each one. Pure."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import MastersComponent, ZkRouting
from orchestrator_operator.models.zkmigration import PHASES, ZkMigrationSpec
from orchestrator_operator.operator.zkmigration.machine import (
    MAX_LAG_SECONDS,
    STABLE_SECONDS,
    master_moves,
    routing_for,
)
from orchestrator_operator.zkmigrate.manifest import cluster_connect_string, target_connect_string


def _routing_words(routing: ZkRouting, replicas: int) -> str:
    if not routing.migrating:
        return f"all {replicas} masters, the agents and Marathon on the cluster's spec ensemble"
    source = replicas if routing.source_masters is None else routing.source_masters
    return (
        f"masters on A: {source}, on B: {routing.target_masters}; agents on"
        f" {'B' if routing.agents_on_target else 'A'}; Marathon on"
        f" {'B' if routing.marathon_on_target else 'A'}"
    )


def _moves_words(moves: list[tuple[int, int]]) -> str:
    return " -> ".join(f"{a}+{b}" for a, b in moves)


def _phase_actions(
    number: int, spec: ZkMigrationSpec, target: str, replicas: int, quorum: int
) -> list[str]:
    managed = spec.target.managed
    on_b = min(quorum, replicas)
    second = master_moves((replicas, 0), (replicas - on_b, on_b), quorum)
    third = master_moves(second[-1], (0, replicas), quorum)
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
            "move masters one for one until a quorum runs on B: one leaves A, then one"
            f" joins B (masters on A+B: {_moves_words(second)}), never more than"
            f" {2 * quorum - 1} log replicas so any two quorums of {quorum} intersect; each"
            f" move once the leader has been stable {STABLE_SECONDS:.0f}s and every master"
            " reports its log replica recovered; the sync engine proxies the election so"
            " both sets form one Mesos cluster",
        ],
        3: [f"move the other masters the same way ({_moves_words(third)})"],
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
        f" {source + wanted.target_masters} in the election, seen alike on A and B, each"
        " with its log replica recovered",
    ]
    if level == 1:
        checks.append("baseline recorded")
    if level >= 4:
        checks.append("every agent registered with the leading master; no machine DOWN")
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
        wanted = routing_for(
            number, meta["name"], target, replicas, component, cluster_spec.masters.effective_quorum
        )
        entry = "phase 1 may start at once" if number == 1 else f"phase {number - 1} succeeded"
        if spec.approval.mode == "Manual":
            entry += f", and approvedThroughPhase >= {number}"
        lines.append(f"phase {number} {name}")
        lines.append(f"  entry:  {entry}")
        quorum = cluster_spec.masters.effective_quorum
        for action in _phase_actions(number, spec, target, replicas, quorum):
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
