"""Pure: what the migration sees of both ensembles, the Mesos cluster and its workloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.models.zkmigration import SyncStatus
from orchestrator_operator.zk.model import TreeSnapshot


@dataclass(frozen=True)
class EnsembleView:
    connect: str
    servers: int
    answering: int
    ephemerals: int | None = None  # ephemeral znodes under the migrated paths
    error: str | None = None
    # The tree those ephemerals were counted in (phase 6 archives it once they are 0).
    tree: TreeSnapshot | None = field(default=None, repr=False, compare=False)

    @property
    def healthy(self) -> bool:
        """Every server answers: a migration only moves on between two whole ensembles."""
        return self.error is None and self.servers > 0 and self.answering == self.servers

    def describe(self, side: str) -> str:
        if self.error:
            return f"ensemble {side} ({self.connect}) unreachable: {self.error}"
        return (
            f"ensemble {side} ({self.connect}): {self.answering} of {self.servers} servers answer"
        )


@dataclass(frozen=True)
class WorkloadView:
    desired: int = 0
    ready: int = 0
    updated: int = 0
    exists: bool = True

    @property
    def settled(self) -> bool:
        return self.ready == self.desired and self.updated == self.desired


@dataclass(frozen=True)
class MesosView:
    """The election on both sides and the leading master's view of the cluster."""

    leader_id: str | None = None
    leader_address: str | None = None
    leader_on_source: str | None = None  # leader id as ensemble A's election says
    leader_on_target: str | None = None
    contenders_source: int = 0
    contenders_target: int = 0
    agents_active: int | None = None
    frameworks: dict[str, bool] = field(default_factory=dict)  # id -> connected
    running_tasks: frozenset[str] | None = None  # None: the leader's state was unreadable
    failed_tasks: frozenset[str] = frozenset()  # failed, lost or killed since the baseline
    error: str | None = None
    # Masters (of both elections) whose `registrar/log/recovered` is 1, and those it is not.
    log_recovered: int | None = None
    log_unrecovered: tuple[str, ...] = ()
    # Hostnames of the leader's active agents, and of machines in maintenance (Mesos
    # /master/maintenance/status); None: not read.
    agent_hosts: frozenset[str] | None = None
    down_machines: frozenset[str] = frozenset()
    draining_machines: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Observation:
    now: datetime
    source: EnsembleView
    target: EnsembleView
    mesos: MesosView
    routing: ZkRouting | None  # the cluster's routing annotation, None when absent
    masters_replicas: int  # the cluster's spec.masters.replicas
    source_masters: WorkloadView
    target_masters: WorkloadView
    agents: WorkloadView
    marathon: WorkloadView
    stale_agent_nodes: frozenset[str] = frozenset()  # agent pods still on the old template
    agent_nodes: frozenset[str] = frozenset()  # nodes with an agent pod of the cluster
    sync: SyncStatus | None = None
    cluster_connect: str = ""  # the ensemble the cluster's spec names
    masters_quorum: int | None = None  # the cluster's --quorum; None: a majority of replicas

    @property
    def quorum(self) -> int:
        return self.masters_quorum or self.masters_replicas // 2 + 1
