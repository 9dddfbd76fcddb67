"""What a MesosCluster really runs: workload readiness from the indexes, the leading master
and the masters registered from ZooKeeper, Marathon's leader latch, the leader's metrics
(agents and frameworks registered), the ensemble's server modes, cordoned nodes, the agent
pods when some agent is not ready, and the pods the scheduler cannot place when some
workload is not ready."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx
from kazoo.exceptions import ConnectionLoss, NoNodeError, SessionExpiredError

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.common.zk_credentials import (
    CredentialsRefused,
    cluster_secret_ref,
    read_zk_credentials,
)
from orchestrator_operator.mesos.discovery import read_election, read_master_metrics
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.operator.builders import agents, marathon, masters, zookeeper
from orchestrator_operator.operator.builders.meta import selector_labels
from orchestrator_operator.operator.indexes import Workloads
from orchestrator_operator.operator.mesoscluster.status import (
    AgentPod,
    AgentStartCause,
    AgentStartError,
    Observation,
    Replicas,
    Unschedulable,
)
from orchestrator_operator.operator.workloads import WorkloadSummary
from orchestrator_operator.zk.clients import ZK_POOL, ZkUnreachable, zk_credentials, zk_tls_routes

# Four-letter words open a connection per server: ask every 10 s, not on every tick.
CORDONED = TtlCache[str, frozenset[str]](ttl_seconds=5.0)
ZK_MODES = TtlCache[str, tuple[tuple[str, str | None], ...]](ttl_seconds=10.0)
# The agent pods of a cluster, read only while some agent is not ready: every 5 s while
# Mesos holds machines DOWN (to count their agents), else every 60 s (only to name an
# agent that cannot start its isolators; a cluster with agents pending for another reason
# must not cost a LIST of all its pods every few seconds).
AgentPods = TtlCache[tuple[str, str], tuple[AgentPod, ...] | None]
AGENT_PODS_WHILE_DOWN = AgentPods(ttl_seconds=5.0)
AGENT_PODS = AgentPods(ttl_seconds=60.0)
# The cluster's Pending pods the scheduler cannot place, read only while some component is
# not ready (one LIST filtered on the server by label and phase, every 30 s at most: a pod
# stays unschedulable for a while, and 100 clusters of pending pods cost 3 LISTs a second).
PENDING_PODS = TtlCache[tuple[str, str], Mapping[str, Unschedulable]](ttl_seconds=30.0)
# Marathon's leader latch: `<zk path>/leader-curator` (Marathon 1.11 ZookeeperConf.scala
# `zooKeeperLeaderCuratorUrl`), a Curator LeaderLatch with one ephemeral sequential member
# per contender (CuratorElectionService.scala); the simulator keeps it there too
# (sim/marathon/layout.py).
MARATHON_LATCH = "leader-curator"
# A pod's component label -> the component of the status.
_COMPONENTS = {
    masters.COMPONENT: "masters",
    "master-b": "masters",
    agents.COMPONENT: "agents",
    marathon.COMPONENT: "marathon",
    zookeeper.COMPONENT: "zookeeper",
}

log = logging.getLogger(__name__)

# The agent's fatal start-up errors the operator can name, found in the last lines of its
# log: an isolator that cannot be created (src/slave/main.cpp "Failed to create a
# containerizer: ", src/slave/containerizer/mesos/containerizer.cpp "Failed to create
# isolator '<name>': ..."), e.g. a cgroups isolator on a node whose /sys/fs/cgroup is
# cgroup v2 only; a credential the masters refuse (src/slave/slave.cpp _authenticate:
# "Master <pid> refused authentication", then exit 1).
_FATAL_ERRORS = (
    (AgentStartCause.ISOLATOR, re.compile(r"Failed to create isolator '[^']*'.*")),
    (AgentStartCause.AUTHENTICATION, re.compile(r"Master \S+ refused authentication")),
)
# The kubelet's reasons for not creating a container, e.g. a Secret or key it mounts missing.
_CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
MAX_ERROR_CHARS = 300


def _replicas(summary: WorkloadSummary | None) -> Replicas:
    return Replicas(summary.desired, summary.ready) if summary else Replicas(0, 0)


def observe_cluster(
    owner: Owner, spec: MesosClusterSpec, workloads: Workloads, routing: ZkRouting | None = None
) -> Observation:
    connect = zookeeper.connect_string(owner, spec)
    # spec.zookeeper.tls: the operator reads the ensemble on its TLS port (zk/clients.py)
    routes = zookeeper.operator_tls_routes(owner, spec)
    zk_error, election, health = None, None, None
    marathon_elected: bool | None = None
    try:
        # zookeeper.external.authSecretRef: the session authenticates as that digest user
        ref = cluster_secret_ref(spec)
        auth = read_zk_credentials(KubeApi.shared(), owner.namespace, ref) if ref else ()
        with zk_credentials({connect: auth}), zk_tls_routes(routes):
            client = ZK_POOL.get(connect)
            election = read_election(client, spec.masters.zk_path)
            if spec.marathon.replicas:
                marathon_elected = _marathon_elected(client, spec.marathon.zk_path)
    except ZkUnreachable as error:
        zk_error = str(error)
    except CredentialsRefused as error:
        zk_error = f"ZooKeeper credentials: {error}"
    if election and election.leader:
        health = read_master_metrics(election.leader.address)
    servers = None
    if zk_error is None:
        with zk_tls_routes(routes):
            servers = ZK_MODES.get_or_compute(
                connect, lambda: tuple(ZK_POOL.ensemble_modes(connect))
            )

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
        agents_authenticate=spec.masters.credentials_secret_ref is not None,
        marathon_elected=marathon_elected,
    )


def _marathon_elected(client: Any, zk_path: str) -> bool:
    """A member in Marathon's leader latch: the lowest one leads (Curator's LeaderLatch).
    A connection lost meanwhile raises ZkUnreachable, as the election's reads do."""
    try:
        return bool(client.get_children(f"{zk_path.rstrip('/')}/{MARATHON_LATCH}"))
    except NoNodeError:
        return False
    except (ConnectionLoss, SessionExpiredError) as error:
        raise ZkUnreachable(f"lost the ZooKeeper connection while reading {zk_path}") from error


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


def parse_agent_pod(pod: dict[str, Any]) -> AgentPod | None:
    """An agent pod as the kubelet reports it; None before it is bound to a node.

    A fatal error comes from the container's termination message (the agent container
    has `terminationMessagePolicy: FallbackToLogsOnError`, so the last lines of its log).
    """
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        return None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ready = bool(statuses) and all(s.get("ready") for s in statuses)
    reason: str | None = None
    error: AgentStartError | None = None
    for status in statuses:
        state = status.get("state") or {}
        waiting = state.get("waiting") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        reason = reason or waiting.get("reason") or last.get("reason")
        if error is None and waiting.get("reason") in _CONFIG_REASONS:
            text = str(waiting.get("message") or waiting["reason"])
            error = AgentStartError(AgentStartCause.CONTAINER_CONFIG, text[:MAX_ERROR_CHARS])
        for terminated in (state.get("terminated") or {}, last):
            message = str(terminated.get("message") or "")
            for cause, pattern in _FATAL_ERRORS:
                found = pattern.search(message)
                if found and error is None:
                    error = AgentStartError(cause, found.group(0)[:MAX_ERROR_CHARS])
    return AgentPod(str(node), ready, reason, error)


def _read_agent_pods(owner: Owner) -> tuple[AgentPod, ...] | None:
    selector = ",".join(f"{k}={v}" for k, v in selector_labels(owner, agents.COMPONENT).items())
    try:
        pods = KubeApi.shared().list("v1", "Pod", owner.namespace, label_selector=selector)
    except (ApiError, httpx.HTTPError) as error:
        log.warning("cannot list the agent pods of %s: %s", owner.name, error)
        return None
    parsed = (parse_agent_pod(pod) for pod in pods)
    return tuple(pod for pod in parsed if pod is not None)


def with_agent_pods(
    owner: Owner, observation: Observation, machines_down: frozenset[str]
) -> Observation:
    """The observation with the DOWN machines and, when some agent is not ready, its pods
    (one filtered LIST per cluster every 5 s while machines are DOWN, else every 60 s, and
    none while all agents are ready)."""
    pods = None
    if observation.agents.ready < observation.agents.desired:
        cache = AGENT_PODS_WHILE_DOWN if machines_down else AGENT_PODS
        pods = cache.get_or_compute((owner.namespace, owner.name), lambda: _read_agent_pods(owner))
    return dataclasses.replace(observation, machines_down=machines_down, agent_pods=pods)


def parse_unschedulable(pods: list[dict[str, Any]]) -> dict[str, Unschedulable]:
    """Pending pods whose PodScheduled condition is False, by component: how many, and
    the scheduler's message of the first (e.g. "0/3 nodes are available: 3 node(s) didn't
    have free ports for the requested pod ports.")."""
    found: dict[str, Unschedulable] = {}
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        component = _COMPONENTS.get(str(labels.get("app.kubernetes.io/component")))
        if component is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") != "PodScheduled" or condition.get("status") != "False":
                continue
            text = str(condition.get("message") or condition.get("reason") or "Unschedulable")
            seen = found.get(component)
            found[component] = Unschedulable(
                (seen.pods if seen else 0) + 1,
                seen.message if seen else " ".join(text.split())[:MAX_ERROR_CHARS],
            )
    return found


def _read_pending_pods(owner: Owner) -> Mapping[str, Unschedulable]:
    try:
        pods = KubeApi.shared().list(
            "v1", "Pod", owner.namespace,
            label_selector=f"app.kubernetes.io/instance={owner.name}",
            field_selector="status.phase=Pending",
        )  # fmt: skip
    except (ApiError, httpx.HTTPError) as error:
        log.warning("cannot list the pending pods of %s: %s", owner.name, error)
        return {}
    return parse_unschedulable(pods)


def with_unschedulable(owner: Owner, observation: Observation) -> Observation:
    """The observation with the pods the scheduler cannot place, read only while some
    workload has fewer ready pods than it wants (never while all are ready)."""
    counts = (observation.zookeeper, observation.masters, observation.agents, observation.marathon)
    if all(c is None or c.ready >= c.desired for c in counts):
        return observation
    found = PENDING_PODS.get_or_compute(
        (owner.namespace, owner.name), lambda: _read_pending_pods(owner)
    )
    return dataclasses.replace(observation, unschedulable=found)
