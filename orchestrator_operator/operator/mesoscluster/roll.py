"""Reading a StatefulSet's members and restarting one: the I/O around roll_plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.operator.mesoscluster.roll_plan import Member, Step, Wait, next_restart
from orchestrator_operator.operator.workloads import WorkloadSummary
from orchestrator_operator.zk.four_letter import server_mode

REVISION_LABEL = "controller-revision-hash"


def member_from_pod(name: str, ordinal: int, pod: Manifest | None) -> Member:
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return Member(name, ordinal, exists=pod is not None, ready=False, revision=None, ip=None)
    status = pod.get("status", {})
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return Member(
        name=name,
        ordinal=ordinal,
        exists=True,
        ready=ready,
        revision=pod["metadata"].get("labels", {}).get(REVISION_LABEL),
        ip=status.get("podIP"),
    )


@dataclass(frozen=True)
class RolloutResult:
    restarted: str | None
    message: str


def roll_statefulset(
    api: KubeApi,
    namespace: str,
    name: str,
    statefulset: WorkloadSummary | None,
    quorum: int,
    find_leader_ip: Callable[[list[Member]], str | None],
) -> RolloutResult:
    """Restart at most one outdated member of StatefulSet `name`.

    Pods are read by name (never listed), and only while some member is outdated.
    `message` is empty when every member already runs the current template.
    """
    if statefulset is None:
        return RolloutResult(None, "")
    if not statefulset.settled:
        return RolloutResult(None, f"{name}: waiting for the StatefulSet controller")
    if statefulset.updated >= statefulset.desired or not statefulset.update_revision:
        return RolloutResult(None, "")
    members = [
        member_from_pod(f"{name}-{i}", i, api.get("v1", "Pod", namespace, f"{name}-{i}"))
        for i in range(statefulset.desired)
    ]
    decision = next_restart(members, statefulset.update_revision, quorum, find_leader_ip(members))
    if isinstance(decision, Wait):
        return RolloutResult(None, f"{name}: {decision.value}")
    assert isinstance(decision, Step)
    api.delete("v1", "Pod", namespace, decision.pod)
    return RolloutResult(
        decision.pod,
        f"{name}: restarted {decision.pod}; {decision.remaining - 1} more member(s) to roll",
    )


def zookeeper_leader_ip(members: list[Member], port: int = 2181) -> str | None:
    """The ensemble's leader, asked of each member with `srvr` (None if none answers)."""
    for member in members:
        if member.ip and server_mode(member.ip, port, timeout=0.5) == "leader":
            return member.ip
    return None
