"""What the operator decides once at start-up and hands to handlers and builders.

Kept in Kopf's memo (`memo["settings"]`, set by `operator.main.run`) and passed down as
arguments, so a builder's output is a function of its arguments alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.operator.allowlist import ALLOW_ALL, AllowList
from orchestrator_operator.operator.zk_super_key import cluster_password


@dataclass(frozen=True)
class OperatorSettings:
    # ZooKeeper's super key (zk_super_key); with one, managed ensembles are resized by
    # dynamic reconfiguration, without, their StatefulSet is resized directly.
    zk_super_key: bytes | None = None
    # MesosCluster status follows events (mesoscluster/watches.py); off: the timer
    # observes every cluster every second. The timer observes a settled cluster every
    # status_resync_seconds as a safety net.
    status_watches: bool = True
    status_resync_seconds: float = 10.0
    # What custom resources may make the operator run (operator/allowlist.py); default:
    # everything, the flags --allow-* or $ORCHESTRATOR_ALLOW_* restrict it.
    allowlist: AllowList = ALLOW_ALL
    # The operator's ZooKeeper client certificate and CA (common.tls), for managed
    # ensembles with spec.zookeeper.tls; None: those report that it is missing.
    zk_client_tls: ReloadingTls | None = None

    @property
    def scale_zookeeper_by_reconfig(self) -> bool:
        return self.zk_super_key is not None

    def zk_super_password(self, namespace: str, name: str) -> str:
        """The super password of one MesosCluster's managed ensemble."""
        if self.zk_super_key is None:
            raise RuntimeError("no ZooKeeper super key is configured")
        return cluster_password(self.zk_super_key, namespace, name)
