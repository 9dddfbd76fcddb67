"""Pure: what a MesosCluster's status says, given what the operator observed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator_operator.common.conditions import (
    Condition,
    make_condition,
    merge_conditions,
    set_condition,
)
from orchestrator_operator.mesos.discovery import Election, MasterHealth
from orchestrator_operator.models.vocabulary import ConditionType, Reason, WorkloadPhase

COMPONENT_CONDITIONS = (
    ConditionType.ZOOKEEPER_READY,
    ConditionType.MASTERS_READY,
    ConditionType.LEADER_ELECTED,
    ConditionType.AGENTS_READY,
    ConditionType.MARATHON_READY,
)


@dataclass(frozen=True)
class Replicas:
    desired: int
    ready: int

    def as_status(self) -> dict[str, int]:
        return {"desired": self.desired, "ready": self.ready}


class AgentStartCause(StrEnum):
    ISOLATOR = "isolator"  # the node's cgroups cannot serve an isolator
    AUTHENTICATION = "authentication"  # the masters refused the agent's credential
    CONTAINER_CONFIG = "container-config"  # the kubelet cannot build the container


@dataclass(frozen=True)
class AgentStartError:
    cause: AgentStartCause
    text: str


@dataclass(frozen=True)
class AgentPod:
    """One agent pod of the DaemonSet, as the kubelet reports it."""

    node: str
    ready: bool
    # Why its container is not running (`CrashLoopBackOff`, `Error`, ...), if it is not.
    reason: str | None = None
    # Why it cannot start, if a known cause: its last exit's fatal error (from the
    # termination message) or the kubelet's reason for not creating its container.
    start_error: AgentStartError | None = None


@dataclass(frozen=True)
class Unschedulable:
    """Pending pods of one component that the scheduler cannot place."""

    pods: int
    message: str  # the scheduler's reason for one of them


@dataclass(frozen=True)
class Observation:
    zookeeper_connect_string: str
    zookeeper: Replicas | None  # None: an external ensemble
    zookeeper_error: str | None
    # Each server of the connect string and its `srvr` mode (None: no answer); None: not asked.
    zookeeper_servers: tuple[tuple[str, str | None], ...] | None
    election: Election | None
    master_health: MasterHealth | None
    masters: Replicas
    quorum: int
    agents: Replicas
    marathon: Replicas
    # Cordoned nodes whose Mesos machine is DOWN (from the maintenance step): their agents
    # are shut down by the master on every start, so their pods are expected unavailable.
    machines_down: frozenset[str] = frozenset()
    # The agent pods, read only when some agent is not ready; None: not read.
    agent_pods: tuple[AgentPod, ...] | None = None
    # The masters authenticate agents (masters.credentialsSecretRef): a ready agent pod
    # whose credential they refuse never registers.
    agents_authenticate: bool = False
    # Marathon's leader latch in ZooKeeper (`<zkPath>/leader-curator`) has a member: a
    # Marathon is elected. None: not read (ZooKeeper cannot be read, or no Marathon wanted).
    marathon_elected: bool | None = None
    # Pods the scheduler cannot place, by component ("masters", "agents", "marathon",
    # "zookeeper"): how many, and the scheduler's message of one (its PodScheduled=False
    # condition). Read only while some component is not ready.
    unschedulable: Mapping[str, Unschedulable] = field(default_factory=dict)


def _zookeeper(obs: Observation) -> tuple[bool, str, str]:
    if obs.zookeeper is not None and obs.zookeeper.ready * 2 <= obs.zookeeper.desired:
        return _with_unschedulable(
            obs,
            "zookeeper",
            (
                False,
                Reason.NO_QUORUM,
                f"{obs.zookeeper.ready}/{obs.zookeeper.desired} ZooKeeper servers ready;"
                " a majority is needed",
            ),
        )
    if obs.zookeeper_error:
        return False, Reason.UNREACHABLE, obs.zookeeper_error
    message = f"ZooKeeper at {obs.zookeeper_connect_string} serves"
    if obs.zookeeper_servers:
        answering = [(server, mode) for server, mode in obs.zookeeper_servers if mode]
        total = len(obs.zookeeper_servers)
        leaders = [server for server, mode in answering if mode in ("leader", "standalone")]
        if total > 1 and len(answering) * 2 <= total:
            return False, Reason.NO_QUORUM, f"{len(answering)}/{total} servers answer srvr"
        message += f"; {len(answering)}/{total} servers answer srvr"
        if leaders:
            message += f", leader {leaders[0]}"
    return True, Reason.SERVING, message


def _leader(obs: Observation) -> tuple[bool, str, str]:
    if obs.election is None:
        return False, Reason.UNKNOWN, "ZooKeeper cannot be read, so the leader is unknown"
    leader = obs.election.leader
    if leader is None:
        return False, Reason.NO_LEADER, "no Mesos master is registered in ZooKeeper"
    message = (
        f"leading master {leader.hostname} at {leader.address} ({leader.znode});"
        f" {obs.election.contenders} contender(s)"
    )
    if obs.master_health is None:
        return (
            False,
            Reason.NOT_ELECTED,
            message + "; it does not answer /metrics/snapshot, so whether it leads is unknown",
        )
    if not obs.master_health.elected:
        return False, Reason.NOT_ELECTED, message + "; it does not report itself elected yet"
    if obs.master_health.recovering:
        return (
            False,
            Reason.RECOVERING,
            message + "; elected, but it has not recovered the registry from the replicated"
            " log yet (no registrar/registry_size_bytes, or registrar/log/recovered 0): agents"
            " and frameworks are unknown until it has and they re-register",
        )
    return True, Reason.ELECTED, message


def _replicas(what: str, replicas: Replicas, needed: int) -> tuple[bool, str, str]:
    message = f"{replicas.ready}/{replicas.desired} {what} ready"
    if replicas.desired == 0 and needed > 0:
        return False, Reason.NONE_SCHEDULED, f"no {what} scheduled (check the nodeSelector)"
    if replicas.ready >= needed:
        return True, Reason.READY, message
    return False, Reason.NOT_READY, message + f"; {needed} needed"


def _names(nodes: list[str], limit: int = 5) -> str:
    shown = ", ".join(nodes[:limit])
    return shown + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


def _agents(obs: Observation) -> tuple[bool, str, str]:
    """The DaemonSet's counts, less the agents Mesos keeps down on purpose.

    A Mesos agent on a DOWN machine is told to shut down whenever it registers
    (src/master/master.cpp, `Master::_registerSlave` and `_reregisterSlave`: "Machine is
    `DOWN`") and exits, so its pod crash-loops until the machine is brought up: expected,
    not a fault. Without the pods (all ready, or not read) every DOWN machine counts as one.
    """
    replicas = obs.agents
    down = sorted(obs.machines_down)
    if obs.agent_pods is not None:
        down = sorted({p.node for p in obs.agent_pods if not p.ready} & obs.machines_down)
    if replicas.desired == 0 or not down:
        ok, reason, message = _replicas("agents", replicas, max(replicas.desired, 1))
        needed = max(replicas.desired, 1)
    else:
        needed = max(replicas.desired - len(down), 0)
        ok = replicas.ready >= needed
        reason = Reason.READY if ok else Reason.NOT_READY
        message = (
            f"{replicas.ready}/{replicas.desired} agents ready; {len(down)} expected"
            f" unavailable on machines DOWN for maintenance ({_names(down)})"
        )
        if not ok:
            message += f"; {needed} needed"
    # A ready pod is a running agent process, not an agent of the cluster: it counts once
    # the leading master has it registered (`master/slaves_active`).
    unknown = _registrations_unknown(obs)
    if ok and unknown:
        ok, reason = False, Reason.UNKNOWN
        message += f"; {unknown}, so how many agents registered is unknown"
    elif ok and obs.master_health and obs.master_health.agents_active < needed:
        registered = obs.master_health.agents_active
        ok, reason = False, Reason.NOT_READY
        message = (
            f"{replicas.ready}/{replicas.desired} agent pods ready but {registered}"
            f" agents registered with the leading master; {needed} needed"
        )
        if obs.agents_authenticate:
            # Mesos refuses an agent whose credential it does not list and the agent
            # retries for ever ("Authentication failed" in its log): the pod stays Ready.
            message += (
                "; the masters authenticate agents: an agent whose credential"
                " (agents.credentialSecretRef) is not in masters.credentialsSecretRef is"
                " refused ('Authentication failed' in its log) and stays not registered"
            )
    for cause, hint in _START_ERROR_HINTS.items():
        broken = sorted(
            (p.node, p.start_error.text)
            for p in obs.agent_pods or ()
            if not p.ready
            and p.start_error
            and p.start_error.cause == cause
            and p.node not in obs.machines_down
        )
        if broken:
            nodes = [node for node, _ in broken]
            message += f"; {hint.format(nodes=_names(nodes))}: {broken[0][1]}"
    return _with_unschedulable(obs, "agents", (ok, reason, message))


def _registrations_unknown(obs: Observation) -> str | None:
    """Why the leading master cannot tell which agents and frameworks registered (None:
    it can: elected, answering and recovered)."""
    if obs.election is None:
        return "ZooKeeper cannot be read"
    if obs.election.leader is None:
        return "no Mesos master leads"
    health = obs.master_health
    if health is None:
        return "the leading master does not answer"
    if not health.elected:
        return "the leading master does not report itself elected yet"
    if health.recovering:
        return "the leading master is still recovering its registry"
    return None


def _masters(obs: Observation) -> tuple[bool, str, str]:
    """Ready pods (each answers /health) that registered in ZooKeeper's election: a master
    whose pod is ready but has no `json.info_` znode is not part of the cluster."""
    ok, reason, message = _replicas("masters", obs.masters, obs.quorum)
    if ok and obs.election is None:
        ok, reason = False, Reason.UNKNOWN
        message = (
            f"{obs.masters.ready}/{obs.masters.desired} master pods ready, but ZooKeeper"
            " cannot be read, so whether they registered is unknown"
        )
    elif ok and obs.election is not None:
        registered = obs.election.contenders
        if registered < obs.quorum:
            ok, reason = False, Reason.NOT_READY
            message = (
                f"{obs.masters.ready}/{obs.masters.desired} master pods ready but"
                f" {registered} registered in ZooKeeper; {obs.quorum} needed"
            )
        else:
            message += f"; {registered} registered in ZooKeeper"
    return _with_unschedulable(obs, "masters", (ok, reason, message))


def _marathon(obs: Observation) -> tuple[bool, str, str]:
    """Ready pods, one of them elected (a member of its leader latch in ZooKeeper) and
    registered as a framework with the leading master."""
    needed = 1 if obs.marathon.desired else 0
    ok, reason, message = _replicas("Marathon instances", obs.marathon, needed)
    if ok and needed:
        unknown = _registrations_unknown(obs)
        if obs.marathon_elected is None:
            ok, reason = False, Reason.UNKNOWN
            message += "; ZooKeeper cannot be read, so whether one is elected is unknown"
        elif not obs.marathon_elected:
            ok, reason = False, Reason.NOT_ELECTED
            message += "; none is elected (its leader latch in ZooKeeper is empty)"
        elif unknown:
            ok, reason = False, Reason.UNKNOWN
            message += f"; one is elected, but {unknown}, so whether it registered is unknown"
        elif obs.master_health and obs.master_health.frameworks_active == 0:
            ok, reason = False, Reason.NOT_REGISTERED
            message += "; one is elected but no framework is registered with the leading master"
        else:
            message += "; one is elected and registered with the leading master"
    return _with_unschedulable(obs, "marathon", (ok, reason, message))


def _with_unschedulable(
    obs: Observation, component: str, result: tuple[bool, str, str]
) -> tuple[bool, str, str]:
    """A component not ready whose pods the scheduler cannot place says why (e.g. a host
    port taken on every node by another cluster's agents)."""
    ok, reason, message = result
    stuck = obs.unschedulable.get(component)
    if ok or stuck is None:
        return result
    # NotReady says too little; NoQuorum, NoneScheduled and Unknown stay what they are.
    reason = Reason.UNSCHEDULABLE if reason == Reason.NOT_READY else reason
    return False, reason, f"{message}; {stuck.pods} pod(s) cannot be scheduled: {stuck.message}"


_START_ERROR_HINTS = {
    AgentStartCause.ISOLATOR: "the agent cannot start its isolators on {nodes} (the node's"
    " cgroups do not serve them: see docs/mesoscluster.md)",
    AgentStartCause.AUTHENTICATION: "the masters refused the credential of the agent on"
    " {nodes} (agents.credentialSecretRef must hold a principal and secret that"
    " masters.credentialsSecretRef lists)",
    AgentStartCause.CONTAINER_CONFIG: "the kubelet cannot create the agent container on"
    " {nodes} (a Secret or key it mounts may be missing)",
}


def conditions_for(obs: Observation) -> dict[str, tuple[bool, str, str]]:
    return {
        ConditionType.ZOOKEEPER_READY: _zookeeper(obs),
        ConditionType.MASTERS_READY: _masters(obs),
        ConditionType.LEADER_ELECTED: _leader(obs),
        ConditionType.AGENTS_READY: _agents(obs),
        ConditionType.MARATHON_READY: _marathon(obs),
    }


def _mesos(
    health: MasterHealth | None, previous: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The leader's figures; a recovering leader's zeros are not the truth, so the last
    figures known are kept until it has recovered."""
    if health is None:
        return None
    if health.recovering:
        return previous
    return {
        "agentsActive": health.agents_active,
        "frameworksActive": health.frameworks_active,
        "tasksRunning": health.tasks_running,
    }


def build_status(
    obs: Observation,
    generation: int | None,
    previous: list[Condition] | None,
    now: str,
    previous_mesos: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status patch: conditions (transition times kept), phase, counts, the leader.
    `previous_mesos`: `status.mesos` as it was (kept while the leader recovers)."""
    computed = conditions_for(obs)
    conditions = merge_conditions(previous, computed, generation, now)
    all_ready = all(ok for ok, _, _ in computed.values())
    conditions = set_condition(
        conditions,
        make_condition(
            ConditionType.READY,
            all_ready,
            Reason.ALL_COMPONENTS_READY if all_ready else Reason.COMPONENTS_NOT_READY,
            ", ".join(t for t, (ok, _, _) in computed.items() if not ok) or "all components ready",
            generation,
            now,
        ),
    )
    if all_ready:
        phase = WorkloadPhase.READY
    elif not computed[ConditionType.ZOOKEEPER_READY][0] or (
        obs.masters.ready >= obs.quorum and not computed[ConditionType.LEADER_ELECTED][0]
    ):
        phase = WorkloadPhase.DEGRADED
    else:
        phase = WorkloadPhase.PROGRESSING
    leader = obs.election.leader if obs.election else None
    return {
        "phase": phase,
        "conditions": conditions,
        "zookeeperConnectString": obs.zookeeper_connect_string,
        "leadingMaster": leader.address if leader else None,
        "zookeeper": obs.zookeeper.as_status() if obs.zookeeper else None,
        "masters": obs.masters.as_status(),
        "agents": obs.agents.as_status(),
        "marathon": obs.marathon.as_status(),
        "mesos": _mesos(obs.master_health, previous_mesos),
    }
