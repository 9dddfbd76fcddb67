"""Observing a running Mesos cluster: the leader from ZooKeeper, health from the master."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from kazoo.exceptions import ConnectionLoss, NoNodeError, SessionExpiredError

from orchestrator_operator.mesos.leader import MasterInfo, lowest_contender, parse_master_info
from orchestrator_operator.zk.clients import ZkUnreachable


@dataclass(frozen=True)
class Election:
    leader: MasterInfo | None
    contenders: int


def read_election(client: Any, cluster_path: str) -> Election:
    """Who leads, read the way Mesos clients do (a lost race with a vanishing znode retries).

    A connection lost during the reads raises ZkUnreachable, like a connection never had."""
    try:
        return _read_election(client, cluster_path)
    except (ConnectionLoss, SessionExpiredError) as error:
        raise ZkUnreachable(
            f"lost the ZooKeeper connection while reading {cluster_path}: {error!r}"
        ) from error


def _read_election(client: Any, cluster_path: str) -> Election:
    for _ in range(3):
        try:
            children = client.get_children(cluster_path)
        except NoNodeError:
            return Election(None, 0)
        leader_znode = lowest_contender(children)
        contenders = sum(1 for c in children if c.startswith("json.info_"))
        if leader_znode is None:
            return Election(None, 0)
        try:
            data, _ = client.get(f"{cluster_path}/{leader_znode}")
        except NoNodeError:
            continue  # the leader just went away; look again
        return Election(parse_master_info(leader_znode, data), contenders)
    return Election(None, 0)


@dataclass(frozen=True)
class MasterHealth:
    elected: bool
    agents_active: int
    frameworks_active: int
    tasks_running: int
    # False while the leader has not recovered the registry from its replicated log.
    recovered: bool = True

    @property
    def recovering(self) -> bool:
        """Elected but not recovered: its agents and frameworks are not known yet."""
        return self.elected and not self.recovered


def master_health(metrics: dict[str, Any]) -> MasterHealth:
    """A /metrics/snapshot -> MasterHealth.

    Mesos (src/master/master.hpp `_elected`) reports `master/elected` 1 as soon as the
    detector names this master, before it has recovered; meanwhile /master/state answers
    200 with no agents and no frameworks, so the counts here mean nothing. Recovered means
    both: `registrar/log/recovered` 1 (src/log/log.cpp `LogProcess::_recovered`, prefix
    `registrar/` from src/master/main.cpp: the local replica caught up, which a follower
    that has run a while already is) and `registrar/registry_size_bytes` present
    (src/master/registrar.cpp: the gauge fails "Not recovered yet" until the registrar has
    read the registry through the log, and libprocess leaves a failed gauge out of the
    snapshot). A master with `--registry=in_memory` has no log and no `registrar/log/*`.
    """
    return MasterHealth(
        elected=metrics.get("master/elected", 0) == 1,
        agents_active=int(metrics.get("master/slaves_active", 0)),
        frameworks_active=int(metrics.get("master/frameworks_active", 0)),
        tasks_running=int(metrics.get("master/tasks_running", 0)),
        recovered=metrics.get("registrar/log/recovered", 1) == 1
        and "registrar/registry_size_bytes" in metrics,
    )


def read_master_metrics(address: str, timeout: float = 1.0) -> MasterHealth | None:
    """The leading master's /metrics/snapshot, or None when it cannot be reached."""
    try:
        response = httpx.get(f"http://{address}/metrics/snapshot", timeout=timeout)
        response.raise_for_status()
        metrics = response.json()
    except (httpx.HTTPError, json.JSONDecodeError):
        return None
    if not isinstance(metrics, dict):
        return None
    try:
        return master_health(metrics)
    except (TypeError, ValueError):  # not a Mesos snapshot: as good as no answer
        return None
