"""The sync controller's options (`orchestrator zk-sync controller`'s flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.zk.connection import SyncError

# The controller's flag and variable for its ZooKeeper client certificate
TLS_SETTING = "--zookeeper-client-tls-dir (ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR)"


@dataclass
class ControllerOptions:
    namespaces: tuple[str, ...] = ()  # () = all namespaces
    state_dir: Path | None = None
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    interval: float = 1.0  # seconds between polls of the ZkMigration list
    report_interval: float = 2.0
    verify_interval: float = 5.0
    lag_window: float = 30.0
    connect_timeout: float = 15.0
    session_timeout: float = 10.0
    reconcile_interval: float = 60.0
    backoff_initial: float = 2.0
    backoff_max: float = 30.0
    acl_sweep_rate: int = 4000  # znodes/s whose ACL version each engine checks (0: off)
    # its ZooKeeper client certificate and CA (tls.crt, tls.key, ca.crt), for the sides a
    # syncRequest marks TLS (managed ensembles with spec.zookeeper.tls)
    client_tls: ReloadingTls | None = None
    # the allow-list's zookeeperEndpoints (ORCHESTRATOR_ALLOW_ZOOKEEPER_ENDPOINTS, as the
    # operator's): () allows any ensemble
    zookeeper_endpoints: tuple[str, ...] = ()

    def tls_for(self, side: str, wanted: bool) -> ReloadingTls | None:
        """The TLS of one side (None: plain); SyncError when the syncRequest asks for TLS
        and the controller has no client certificate (for the Retrying message)."""
        if not wanted:
            return None
        if self.client_tls is None:
            raise SyncError(
                f"the {side} ensemble is reached over TLS (spec.zookeeper.tls) and the sync"
                f" controller has no client certificate: set {TLS_SETTING} to a mounted"
                " Secret with tls.crt, tls.key and ca.crt from the ensemble's issuer"
            )
        return self.client_tls
