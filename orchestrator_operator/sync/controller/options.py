"""The sync controller's options (`orchestrator zk-sync controller`'s flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
