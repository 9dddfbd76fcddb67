"""I/O for a MarathonApp: its MesosCluster, that cluster's leading Marathon (from ZooKeeper,
as operator/mesoscluster/observe.py reads it) with the cluster's HTTP credentials, and what
Marathon reports for the app (its tasks' counts, its running deployment, its launch queue)."""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.common.zk_credentials import (
    CredentialsRefused,
    cluster_secret_ref,
    read_zk_credentials,
)
from orchestrator_operator.mesos.marathon_api import (
    MarathonClient,
    MarathonError,
    client_for,
    read_marathon_leader,
)
from orchestrator_operator.models import API_GROUP, API_VERSION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.vocabulary import Reason
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.marathonapp.secrets import SecretRefused, marathon_credentials
from orchestrator_operator.operator.marathonapp.status import MarathonObservation
from orchestrator_operator.zk.clients import ZK_POOL, ZkUnreachable, zk_credentials, zk_tls_routes

log = logging.getLogger(__name__)

# A MesosCluster's spec and its Marathon leader, shared by all the apps of the cluster for
# a few seconds (100 apps on one cluster: one GET and one ZooKeeper read, not 100).
CLUSTERS = TtlCache[tuple[str, str], "dict[str, Any] | None"](ttl_seconds=5.0)
LEADER_SECONDS = 2.0
_LEADERS: dict[tuple[str, str], tuple[float, str | None]] = {}
_LEADERS_LOCK = threading.Lock()


class Unobservable(Exception):
    """The app cannot be reached in Marathon: reason (a Reason) and message in words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ClusterMarathon:
    cluster: str
    client: MarathonClient


def mesoscluster(namespace: str, name: str) -> dict[str, Any] | None:
    """The MesosCluster `namespace/name` (None: there is none), read at most every few seconds
    whoever asks (the status timer, the autoscaler)."""
    return CLUSTERS.get_or_compute(
        (namespace, name),
        lambda: KubeApi.shared().get(f"{API_GROUP}/{API_VERSION}", "MesosCluster", namespace, name),
    )


def forget_leader(namespace: str, cluster: str) -> None:
    """After a failed call: read the leader again next time (it may have changed)."""
    with _LEADERS_LOCK:
        _LEADERS.pop((namespace, cluster), None)


def _leader(owner: Owner, spec: MesosClusterSpec) -> str | None:
    key = (owner.namespace, owner.name)
    now = time.monotonic()
    with _LEADERS_LOCK:
        seen = _LEADERS.get(key)
    if seen and now - seen[0] < LEADER_SECONDS:
        return seen[1]
    leader = _read_leader(owner, spec, owner.namespace)
    with _LEADERS_LOCK:
        _LEADERS[key] = (now, leader)
    return leader


def find_marathon(namespace: str, cluster: str) -> ClusterMarathon:
    """The cluster's leading Marathon, or Unobservable saying why there is none."""
    try:
        body = mesoscluster(namespace, cluster)
    except (ApiError, httpx.HTTPError) as error:
        raise Unobservable(
            Reason.CLUSTER_NOT_FOUND, f"cannot read MesosCluster {cluster}: {error}"
        ) from error
    if body is None:
        raise Unobservable(
            Reason.CLUSTER_NOT_FOUND,
            f"MesosCluster {cluster} does not exist in namespace {namespace}",
        )
    try:
        spec = MesosClusterSpec.model_validate(copy.deepcopy(dict(body.get("spec") or {})))
    except ValidationError:
        raise Unobservable(
            Reason.CLUSTER_NOT_FOUND, f"MesosCluster {cluster} has an invalid spec"
        ) from None
    if spec.marathon.replicas == 0:
        raise Unobservable(
            Reason.NO_MARATHON, f"MesosCluster {cluster} runs no Marathon (marathon.replicas 0)"
        )
    meta = body.get("metadata") or {}
    owner = Owner(name=cluster, namespace=namespace, uid=str(meta.get("uid", "")))
    api = KubeApi.shared()
    try:
        credentials = marathon_credentials(api, namespace, spec.marathon.credentials_secret_ref)
    except SecretRefused as error:
        raise Unobservable(
            Reason.SECRET_REFUSED, f"Marathon credentials of MesosCluster {cluster}: {error}"
        ) from None
    leader = _leader(owner, spec)
    if leader is None:
        raise Unobservable(
            Reason.NO_MARATHON,
            f"no Marathon of MesosCluster {cluster} is elected"
            f" (nothing in {spec.marathon.zk_path}/leader-curator)",
        )
    return ClusterMarathon(cluster, client_for(leader, credentials))


def _read_leader(owner: Owner, spec: MesosClusterSpec, namespace: str) -> str | None:
    connect = zookeeper.connect_string(owner, spec)
    try:
        ref = cluster_secret_ref(spec)
        auth = read_zk_credentials(KubeApi.shared(), namespace, ref) if ref else ()
        routes = zookeeper.operator_tls_routes(owner, spec)  # spec.zookeeper.tls
        with zk_credentials({connect: auth}), zk_tls_routes(routes):
            return read_marathon_leader(ZK_POOL.get(connect), spec.marathon.zk_path)
    except ZkUnreachable as error:
        raise Unobservable(
            Reason.MARATHON_UNREACHABLE, f"ZooKeeper of MesosCluster {owner.name}: {error}"
        ) from error
    except CredentialsRefused as error:
        raise Unobservable(Reason.SECRET_REFUSED, f"ZooKeeper credentials: {error}") from error


def observe_app(client: MarathonClient, app_id: str) -> MarathonObservation:
    """The app as Marathon reports it now (one GET), with its running deployment and launch
    queue entry (each asked only when the app has one / waits for tasks)."""
    app = client.get_app(app_id)
    if app is None:
        return MarathonObservation(app_id=app_id)
    deployment = None
    if app.get("deployments"):
        deployment = _deployment_of(client.deployments(), app_id)
    queue_entry = None
    if _waits(app):
        queue_entry = _queue_entry_of(client.queue(), app_id)
    return MarathonObservation(
        app_id=app_id, app=app, deployment=deployment, queue_entry=queue_entry
    )


def _waits(app: dict[str, Any]) -> bool:
    running = int(app.get("tasksRunning") or 0)
    return running < int(app.get("instances") or 0) or bool(app.get("lastTaskFailure"))


def _deployment_of(deployments: list[dict[str, Any]], app_id: str) -> dict[str, Any] | None:
    return next((d for d in deployments if app_id in (d.get("affectedApps") or [])), None)


def _queue_entry_of(queue: list[dict[str, Any]], app_id: str) -> dict[str, Any] | None:
    for entry in queue:
        queued = entry.get("app") or entry.get("runSpec") or {}
        if isinstance(queued, dict) and queued.get("id") == app_id:
            return entry
    return None


# What a Marathon runs, read at most once a SNAPSHOT_SECONDS for all the apps of a cluster
# (three requests: the apps with their counts, the deployments, the launch queue) instead
# of three requests per app and tick: 100 apps on one Marathon would otherwise keep it busy
# answering the operator's reads.
SNAPSHOT_SECONDS = 1.0
APP_LIST_EMBEDS = ("apps.counts", "apps.deployments", "apps.lastTaskFailure")


@dataclass(frozen=True)
class Snapshot:
    apps: dict[str, dict[str, Any]]
    deployments: list[dict[str, Any]]
    queue: list[dict[str, Any]]


_SNAPSHOTS: dict[str, tuple[float, Snapshot]] = {}
_SNAPSHOT_LOCKS: dict[str, threading.Lock] = {}
_SNAPSHOTS_LOCK = threading.Lock()


def _snapshot(client: MarathonClient) -> Snapshot:
    key = client.base_url
    with _SNAPSHOTS_LOCK:
        lock = _SNAPSHOT_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one reader fetches; the apps of the cluster waiting here get its answer
        seen = _SNAPSHOTS.get(key)
        if seen and time.monotonic() - seen[0] < SNAPSHOT_SECONDS:
            return seen[1]
        started = time.monotonic()
        apps = client.list_apps(embed=APP_LIST_EMBEDS)
        snapshot = Snapshot(
            apps={str(app.get("id")): app for app in apps},
            deployments=client.deployments(),
            queue=client.queue() if any(_waits(app) for app in apps) else [],
        )
        _SNAPSHOTS[key] = (started, snapshot)
        return snapshot


def invalidate(client: MarathonClient) -> None:
    """After a change: the next observation reads Marathon again."""
    _SNAPSHOTS.pop(client.base_url, None)


def observe_shared(client: MarathonClient, app_id: str) -> MarathonObservation:
    """The app from the cluster's snapshot (at most SNAPSHOT_SECONDS old)."""
    snapshot = _snapshot(client)
    app = snapshot.apps.get(app_id)
    if app is None:
        return MarathonObservation(app_id=app_id)
    return MarathonObservation(
        app_id=app_id,
        app=app,
        deployment=_deployment_of(snapshot.deployments, app_id),
        queue_entry=_queue_entry_of(snapshot.queue, app_id) if _waits(app) else None,
    )


def unreachable(cluster: str, error: MarathonError) -> Unobservable:
    return Unobservable(Reason.MARATHON_UNREACHABLE, f"Marathon of MesosCluster {cluster}: {error}")
