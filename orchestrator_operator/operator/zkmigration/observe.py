"""The I/O side of a migration tick: read both ensembles, the Mesos leader and the workloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from kazoo.exceptions import KazooException, NoNodeError

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.mesos.discovery import Election, read_election
from orchestrator_operator.mesos.leader import CONTENDER_PREFIX, MasterInfo, parse_master_info
from orchestrator_operator.mesos.maintenance import machines_in
from orchestrator_operator.mesos.master_api import MasterApiError, MasterClient
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.models.zkmigration import SyncStatus
from orchestrator_operator.operator.builders import agents, marathon
from orchestrator_operator.operator.builders.meta import selector_labels
from orchestrator_operator.operator.workloads import summarize
from orchestrator_operator.operator.zkmigration.observation import (
    EnsembleView,
    MesosView,
    Observation,
    WorkloadView,
)
from orchestrator_operator.zk.clients import ZK_POOL, ZkUnreachable
from orchestrator_operator.zk.reader import read_tree

# A partition-aware framework (Marathon 1.11 is one) is told TASK_UNREACHABLE, TASK_GONE,
# TASK_GONE_BY_OPERATOR or TASK_UNKNOWN where another is told TASK_LOST (mesos.proto).
BAD_TASK_STATES = frozenset(
    {
        "TASK_FAILED", "TASK_LOST", "TASK_KILLED", "TASK_ERROR", "TASK_DROPPED",
        "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN",
    }
)  # fmt: skip


def count_ephemerals(client: Any, paths: list[str]) -> int:
    """Ephemeral znodes under `paths`: each is a session someone still holds."""
    return sum(1 for node in read_tree(client, paths).nodes.values() if node.ephemeral)


def ensemble_view(connect: str, paths: list[str] | None = None) -> EnsembleView:
    """Its servers' modes; with `paths`, the tree under them read once (data, ACLs,
    children), its ephemeral znodes counted and the tree kept for the archive."""
    try:
        modes = ZK_POOL.ensemble_modes(connect)  # over TLS where zk_tls_routes says so
    except ZkUnreachable as error:
        return EnsembleView(connect, 0, 0, error=str(error))
    answering = sum(1 for _, mode in modes if mode)
    try:
        client = ZK_POOL.get(connect)
        tree = read_tree(client, paths, leaf_children=True) if paths is not None else None
    except ZkUnreachable as error:
        return EnsembleView(connect, len(modes), answering, error=str(error))
    if tree is None:
        return EnsembleView(connect, len(modes), answering)
    ephemerals = sum(1 for node in tree.nodes.values() if node.ephemeral)
    return EnsembleView(connect, len(modes), answering, ephemerals, tree=tree)


def _contenders(client: Any, zk_path: str) -> list[MasterInfo]:
    """Every master in one election (a znode vanishing meanwhile is skipped)."""
    infos = []
    try:
        children = client.get_children(zk_path)
    except NoNodeError:
        return []
    for child in children:
        if not child.startswith(CONTENDER_PREFIX):
            continue
        try:
            data, _ = client.get(f"{zk_path}/{child}")
            infos.append(parse_master_info(child, data))
        except (NoNodeError, ValueError):
            continue
    return infos


def log_replicas(connects: list[str], zk_path: str) -> tuple[int, tuple[str, ...]]:
    """How many masters of both elections report their log replica recovered, and the
    addresses of those that do not (or cannot be asked).

    Every Mesos master runs a replica of the registry's log and reports
    `registrar/log/recovered` (src/log/log.cpp `LogProcess::_recovered`; the prefix is set in
    src/master/main.cpp): 0 while a new, EMPTY replica catches up, 1 once VOTING. A master
    without the metric (`--registry=in_memory`) has no log to wait for."""
    masters: dict[str, MasterInfo] = {}
    for connect in connects:
        try:
            for info in _contenders(ZK_POOL.get(connect), zk_path):
                masters.setdefault(info.id or info.address, info)
        except (ZkUnreachable, KazooException):
            continue
    recovered, waiting = 0, []
    with httpx.Client(timeout=1.0) as http:
        for info in sorted(masters.values(), key=lambda m: m.address):
            try:
                metrics = http.get(f"http://{info.address}/metrics/snapshot").json()
                ok = isinstance(metrics, dict) and metrics.get("registrar/log/recovered", 1) == 1
            except (httpx.HTTPError, ValueError):
                ok = False
            if ok:
                recovered += 1
            else:
                waiting.append(info.address)
    return recovered, tuple(waiting)


def _epoch(when: datetime) -> float:
    return when.timestamp()


def mesos_view(source: str, target: str, zk_path: str, since: datetime | None) -> MesosView:
    """The election as each side sees it, and the leading master's frameworks and tasks."""
    views: dict[str, Election | None] = {}
    for side, connect in (("A", source), ("B", target)):
        try:
            views[side] = read_election(ZK_POOL.get(connect), zk_path)
        except ZkUnreachable:
            views[side] = None
    # Either side's view: with the sync engine stopped (phase 6), only B has the masters.
    election = next((v for v in (views["A"], views["B"]) if v and v.leader), None)
    leader = election.leader if election else None
    base = MesosView(
        leader_id=leader.id if leader else None,
        leader_address=leader.address if leader else None,
        leader_on_source=views["A"].leader.id if views["A"] and views["A"].leader else None,
        leader_on_target=views["B"].leader.id if views["B"] and views["B"].leader else None,
        contenders_source=views["A"].contenders if views["A"] else 0,
        contenders_target=views["B"].contenders if views["B"] else 0,
    )
    recovered, waiting = log_replicas([source, target], zk_path)
    base = MesosView(**{**base.__dict__, "log_recovered": recovered, "log_unrecovered": waiting})
    if leader is None:
        return base
    client = MasterClient(leader.address)
    try:
        state = client.state()
        maintenance = client.maintenance_status()
    except MasterApiError as error:
        return MesosView(**{**base.__dict__, "error": str(error)})
    finally:
        client.close()
    return MesosView(
        **{
            **base.__dict__,
            **_from_state(state, _epoch(since) if since else None),
            "down_machines": frozenset(machines_in(maintenance.get("down_machines", []))),
            "draining_machines": frozenset(machines_in(maintenance.get("draining_machines", []))),
        }
    )


def _from_state(state: dict[str, Any], since: float | None) -> dict[str, Any]:
    frameworks = {
        f["id"]: bool(f.get("connected", f.get("active"))) for f in state.get("frameworks", [])
    }
    running = frozenset(
        task["id"]
        for framework in state.get("frameworks", [])
        for task in framework.get("tasks", [])
        if task.get("state") == "TASK_RUNNING"
    )
    failed = set()
    for framework in state.get("frameworks", []) + state.get("completed_frameworks", []):
        # an unreachable task is listed apart (master/readonly_handler.cpp)
        tasks = framework.get("tasks", []) + framework.get("unreachable_tasks", [])
        for task in tasks + framework.get("completed_tasks", []):
            if task.get("state") not in BAD_TASK_STATES:
                continue
            stamps = [s.get("timestamp", 0) for s in task.get("statuses", [])]
            if since is None or max(stamps, default=0) >= since:
                failed.add(task["id"])
    active = [agent for agent in state.get("slaves", []) if agent.get("active")]
    return {
        "frameworks": frameworks,
        "running_tasks": running,
        "failed_tasks": frozenset(failed),
        "agents_active": len(active),
        "agent_hosts": frozenset(str(agent.get("hostname", "")).lower() for agent in active),
    }


def workload_view(api: KubeApi, kind: str, namespace: str, name: str) -> WorkloadView:
    body = api.get("apps/v1", kind, namespace, name)
    if body is None:
        return WorkloadView(exists=False)
    summary = summarize(kind, body)
    # -1 while the workload controller has not seen the latest spec: nothing is updated yet.
    return WorkloadView(summary.desired, summary.ready, summary.updated if summary.settled else -1)


def agent_pods(api: KubeApi, owner: Owner) -> list[dict[str, Any]]:
    """The pods of the cluster's agent DaemonSet."""
    selector = ",".join(f"{k}={v}" for k, v in selector_labels(owner, agents.COMPONENT).items())
    return api.list("v1", "Pod", owner.namespace, label_selector=selector)


def agent_nodes(api: KubeApi, owner: Owner) -> tuple[frozenset[str], frozenset[str]]:
    """Nodes with an agent pod, and those whose pod still runs an older template than the
    DaemonSet's."""
    daemonset = api.get("apps/v1", "DaemonSet", owner.namespace, owner.child_name(agents.COMPONENT))
    if daemonset is None:
        return frozenset(), frozenset()
    generation = str(daemonset["metadata"].get("generation"))
    pods = [p for p in agent_pods(api, owner) if not p["metadata"].get("deletionTimestamp")]
    nodes = frozenset(pod["spec"].get("nodeName", "") for pod in pods)
    stale = frozenset(
        pod["spec"].get("nodeName", "")
        for pod in pods
        if pod["metadata"].get("labels", {}).get("pod-template-generation", generation)
        != generation
    )
    return nodes, stale


def observe(
    *,
    owner: Owner,
    cluster_spec: MesosClusterSpec,
    cluster_connect: str,
    routing: ZkRouting | None,
    source: str,
    target: str,
    paths: list[str],
    count_source_sessions: bool,
    sync: SyncStatus | None,
    since: datetime | None,
    now: datetime,
) -> Observation:
    api = KubeApi.shared()
    component = routing.masters_component if routing else "master"
    other = routing.target_masters_component if routing else "master-b"

    nodes, stale = agent_nodes(api, owner)

    def statefulset(name: str) -> WorkloadView:
        return workload_view(api, "StatefulSet", owner.namespace, owner.child_name(name))

    return Observation(
        now=now,
        source=ensemble_view(source, paths if count_source_sessions else None),
        target=ensemble_view(target),
        mesos=mesos_view(source, target, cluster_spec.masters.zk_path, since),
        routing=routing,
        masters_replicas=cluster_spec.masters.replicas,
        masters_quorum=cluster_spec.masters.effective_quorum,
        source_masters=statefulset(component),
        target_masters=statefulset(other),
        agents=workload_view(api, "DaemonSet", owner.namespace, owner.child_name(agents.COMPONENT)),
        marathon=workload_view(
            api, "Deployment", owner.namespace, owner.child_name(marathon.COMPONENT)
        ),
        stale_agent_nodes=stale,
        agent_nodes=nodes,
        sync=sync,
        cluster_connect=cluster_connect,
    )
