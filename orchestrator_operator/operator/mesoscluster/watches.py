"""A MesosCluster's status follows events: ZooKeeper watches and the workloads' watch streams.

What wakes a status refresh of one cluster at once:

- ZooKeeper watches (kazoo's DataWatch and ChildrenWatch, on the pooled session of the
  cluster's ensemble, with its credentials) on the masters' election path (the
  `json.info_*` contenders under `spec.masters.zkPath`) and Marathon's leader latch
  (`<spec.marathon.zkPath>/leader-curator`): a leader that appears, changes or goes;
- the StatefulSets, DaemonSets and Deployments the cluster owns, from the watch streams
  Kopf already keeps for the indexes (indexes.py), when their readiness counts change;
- the MesosCluster itself when its spec or annotations change (a migration's routing, a
  new ZooKeeper).

A refresh is the observer's own work (handlers.observe_once) with a status patch of its
own. Refreshes are debounced (the first trigger of a quiet cluster refreshes it at once;
triggers during that refresh make one more, DEBOUNCE_SECONDS after it), bounded
(REFRESH_WORKERS threads for all clusters) and never more than one in flight per cluster
(the timer waits for a refresh in flight too).

The timer in handlers.py stays as the safety net: a settled cluster is observed every
`--status-resync-seconds` (default 10 s); every second, as before, while something only
polling can see is moving: a rollout or maintenance step, cordoned nodes, a named leader
whose metrics do not say Ready yet (elected, registry recovered, agents registered), or
ZooKeeper watches that are not armed (the ensemble cannot be reached). With
`--no-status-watches` none of this runs and the timer observes every cluster every second.

Clean-up: a cluster's watches are cancelled when it is deleted or when what they watch
changes (another ensemble, credentials or paths, e.g. after a migration points it at
ensemble B); kazoo 2.11 cannot remove a watch from the server, so a cancelled watch ends at
its next firing (its callback returns False) or with its session. A session the pool
replaces is noticed on the next refresh and the watches are armed again on the new one.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

import kopf
from kazoo.client import KazooState
from kazoo.recipe.watchers import ChildrenWatch, DataWatch
from pydantic import ValidationError

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.common.zk_credentials import CredentialsRefused, read_zk_credentials
from orchestrator_operator.models import API_GROUP, API_VERSION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.vocabulary import WorkloadPhase
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.indexes import OURS
from orchestrator_operator.operator.mesoscluster.observe import cordoned_nodes
from orchestrator_operator.operator.settings import OperatorSettings
from orchestrator_operator.operator.workloads import WorkloadSummary, summarize
from orchestrator_operator.zk.clients import ZK_POOL, ZkUnreachable, zk_tls_routes

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.05
REFRESH_WORKERS = 8  # refreshes wait on I/O (ZooKeeper, the leader, the API server)
# Marathon's leader latch under its ZooKeeper path (Curator's LeaderLatch, as
# sim/marathon/layout.py follows it): contenders are `_c_<uuid>-latch-NNNNNNNNNN`.
MARATHON_LATCH_DIR = "leader-curator"
INDEX_NAMES = ("statefulsets", "daemonsets", "deployments")

K = TypeVar("K", bound=Hashable)
ClusterKey = tuple[str, str]  # (namespace, name)


class Debouncer(Generic[K]):
    """Runs `run(key)` on a few worker threads after `trigger(key)`, debounced per key.

    A trigger of a quiet key runs it at once (leading edge: no added lag); triggers while
    that run is waiting for a worker join it; a trigger while it is in flight makes exactly
    one more run, `delay` after it ends (so a burst costs two runs, not one per event).
    Never two runs of one key at once; at most `workers` runs of all keys at once. `run`
    raising is logged.
    """

    def __init__(
        self,
        run: Callable[[K], None],
        delay: float = DEBOUNCE_SECONDS,
        workers: int = REFRESH_WORKERS,
        name: str = "debouncer",
    ) -> None:
        self._run = run
        self._delay = delay
        self._workers_wanted = workers
        self._name = name
        self._changed = threading.Condition()
        self._due: dict[K, float] = {}  # scheduled keys -> when
        self._heap: list[tuple[float, int, K]] = []
        self._order = 0  # ties in the heap: keys need not be comparable
        self._running: set[K] = set()
        self._again: set[K] = set()
        self._ended: dict[K, float] = {}  # when each key's last run ended
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def trigger(self, key: K) -> None:
        with self._changed:
            if self._stopped:
                return
            if key in self._running:
                self._again.add(key)
            elif key not in self._due:
                ended = self._ended.get(key)
                now = time.monotonic()
                self._schedule(key, now if ended is None else max(now, ended + self._delay))
            self._start_workers()

    def forget(self, key: K) -> None:
        """Drop a scheduled run of `key` (one in flight ends as it is)."""
        with self._changed:
            self._due.pop(key, None)  # its heap entry is skipped when popped
            self._again.discard(key)
            self._ended.pop(key, None)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)

    def _schedule(self, key: K, when: float) -> None:
        self._due[key] = when
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, key))
        self._changed.notify()

    def _start_workers(self) -> None:
        while len(self._threads) < self._workers_wanted:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _next(self) -> K | None:
        """The next due key, marked running; None once stopped. Holds the condition."""
        while not self._stopped:
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # forgotten or rescheduled
            if not self._heap:
                self._changed.wait()
                continue
            when, _, key = self._heap[0]
            left = when - time.monotonic()
            if left > 0:
                self._changed.wait(left)
                continue
            heapq.heappop(self._heap)
            del self._due[key]
            self._running.add(key)  # not scheduled while running: triggers go to _again
            return key
        return None

    def _work(self) -> None:
        while True:
            with self._changed:
                key = self._next()
            if key is None:
                return
            try:
                self._run(key)
            except Exception:
                log.exception("%s: run for %s failed", self._name, key)
            finally:
                with self._changed:
                    self._running.discard(key)
                    self._ended[key] = time.monotonic()
                    if key in self._again and not self._stopped:
                        self._again.discard(key)
                        self._schedule(key, self._ended[key] + self._delay)


@dataclass(frozen=True)
class WatchTarget:
    """What a cluster's ZooKeeper watches are on; a change re-arms them."""

    connect: str
    secret: tuple[str, str] | None  # (Secret name, key) of the ensemble's credentials
    paths: tuple[str, ...]
    # spec.zookeeper.tls: the TLS connect string the operator reaches `connect` on
    tls_connect: str | None = None

    def tls_routes(self) -> dict[str, str]:
        return {self.connect: self.tls_connect} if self.tls_connect else {}


def watch_target(owner: Owner, spec: MesosClusterSpec) -> WatchTarget:
    ref = spec.zookeeper.external.auth_secret_ref if spec.zookeeper.external else None
    latch = f"{spec.marathon.zk_path.rstrip('/')}/{MARATHON_LATCH_DIR}"
    connect = zookeeper.connect_string(owner, spec)
    return WatchTarget(
        connect=connect,
        secret=(ref.name, ref.key) if ref else None,
        paths=(spec.masters.zk_path, latch),
        tls_connect=zookeeper.operator_tls_routes(owner, spec).get(connect),
    )


class _ArmedWatches:
    """One cluster's watches on one session: a DataWatch per path (it exists or not) and,
    while it exists, a ChildrenWatch on it. Calls `changed` on every change after arming."""

    def __init__(self, client: Any, target: WatchTarget, changed: Callable[[], None]) -> None:
        self.client = client
        self.target = target
        self._changed = changed
        self._lock = threading.Lock()
        self._cancelled = False
        self._with_children: set[str] = set()
        self._watches: list[Any] = []
        for path in target.paths:
            self._watches.append(DataWatch(client, path, self._on_data(path)))

    def live(self) -> bool:
        return not self._cancelled and self.client.state == KazooState.CONNECTED

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            watches, self._watches = self._watches, []
        for watch in watches:  # kazoo keeps a session listener per watch until it stops
            with contextlib.suppress(Exception):
                self.client.remove_listener(watch._session_watcher)

    def _on_data(self, path: str) -> Callable[..., bool | None]:
        first = True

        def on_data(data: bytes | None, stat: Any) -> bool | None:
            nonlocal first
            with self._lock:
                if self._cancelled:
                    return False
                if stat is None:
                    self._with_children.discard(path)  # kazoo's ChildrenWatch ends on NoNode
                elif path not in self._with_children:
                    self._with_children.add(path)
                    self._watches.append(ChildrenWatch(self.client, path, self._on_children()))
            if not first:
                self._changed()
            first = False
            return None

        return on_data

    def _on_children(self) -> Callable[[list[str]], bool | None]:
        first = True

        def on_children(children: list[str]) -> bool | None:
            nonlocal first
            if self._cancelled:
                return False
            if not first:  # the first call lists what the refresh after arming reads
                self._changed()
            first = False
            return None

        return on_children


class Observer(Protocol):
    """handlers.observe_once: observes and puts the changed status fields in `patch`."""

    def __call__(
        self,
        spec: kopf.Spec,
        status: kopf.Status,
        meta: kopf.Meta,
        patch: kopf.Patch,
        memo: kopf.Memo,
        **kwargs: Any,
    ) -> None: ...


@dataclass
class _Cluster:
    body: dict[str, Any]
    memo: kopf.Memo
    indexes: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)


def _resource_version(body: Mapping[str, Any]) -> int:
    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
    return int(version) if version.isdigit() else -1


class StatusEvents:
    """The event-driven refresh of MesosCluster status (see the module's docstring)."""

    def __init__(self) -> None:
        self._observe: Observer | None = None
        self._clusters: dict[ClusterKey, _Cluster] = {}
        self._armed: dict[ClusterKey, _ArmedWatches] = {}
        self._last_refresh: dict[ClusterKey, float] = {}
        self._workloads: dict[tuple[str, str, str], WorkloadSummary] = {}
        self._lock = threading.Lock()
        self._debouncer = Debouncer[ClusterKey](self._refresh, name="status-refresh")

    def use(self, observe: Observer) -> None:
        """The observer a refresh runs (handlers.observe_once)."""
        self._observe = observe

    # --- what triggers a refresh -------------------------------------------------------

    def cluster_event(
        self, event_type: str | None, body: Mapping[str, Any], memo: kopf.Memo, indexes: Any
    ) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        if event_type == "DELETED":
            self.forget(key)
            return
        if not _settings(memo).status_watches:
            return
        with self._lock:
            known = self._clusters.get(key)
            if known is not None and _resource_version(body) < _resource_version(known.body):
                return  # older than the status this process just wrote
            changed = known is None or any(
                (known.body.get("metadata") or {}).get(part) != meta.get(part)
                for part in ("generation", "annotations", "uid")
            )
            picked = {name: indexes[name] for name in INDEX_NAMES}
            if known is None:
                self._clusters[key] = _Cluster(copy.deepcopy(dict(body)), memo, picked)
            else:  # in place: a refresh may hold it
                known.body, known.memo, known.indexes = copy.deepcopy(dict(body)), memo, picked
        if changed:  # a status written by the refresh itself is no reason for another
            self._debouncer.trigger(key)

    def workload_event(
        self, kind: str, event_type: str | None, body: Mapping[str, Any], memo: kopf.Memo
    ) -> None:
        if not _settings(memo).status_watches:
            return
        meta = body.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        owners = [
            ref["name"]
            for ref in meta.get("ownerReferences") or []
            if ref.get("kind") == "MesosCluster" and ref.get("apiVersion", "").startswith(API_GROUP)
        ]
        if not owners:
            return  # e.g. a ZkMigration's ensemble B
        workload = (kind, namespace, str(meta.get("name")))
        with self._lock:
            if event_type == "DELETED":
                self._workloads.pop(workload, None)
            else:
                summary = summarize(kind, body)
                if self._workloads.get(workload) == summary:
                    return
                self._workloads[workload] = summary
        self._debouncer.trigger((namespace, owners[0]))

    def trigger(self, key: ClusterKey) -> None:
        self._debouncer.trigger(key)

    def forget(self, key: ClusterKey) -> None:
        """The cluster is gone: no more refreshes, its watches cancelled."""
        self._debouncer.forget(key)
        with self._lock:
            self._clusters.pop(key, None)
            self._last_refresh.pop(key, None)
            armed = self._armed.pop(key, None)
        if armed is not None:
            armed.cancel()

    def stop(self) -> None:
        self._debouncer.stop()
        with self._lock:
            armed, self._armed = list(self._armed.values()), {}
        for watches in armed:
            watches.cancel()

    # --- the safety net ----------------------------------------------------------------

    def on_timer(self, body: kopf.Body, memo: kopf.Memo, kwargs: Mapping[str, Any]) -> None:
        """The timer's tick: a refresh unless the cluster is settled and was refreshed within
        the resync interval (always, with the watches off)."""
        settings = _settings(memo)
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name")))
        if settings.status_watches and not self._due(key, body.get("status") or {}, settings):
            return
        indexes = {name: kwargs[name] for name in INDEX_NAMES}
        with self._cluster_lock(key) as cluster:
            if _resource_version(body) >= _resource_version(cluster.body):
                cluster.body = copy.deepcopy(dict(body))
            cluster.memo, cluster.indexes = memo, indexes
            self._observe_and_write(key, cluster, arm=settings.status_watches)

    def _due(self, key: ClusterKey, status: Mapping[str, Any], settings: OperatorSettings) -> bool:
        last = self._last_refresh.get(key)
        if last is None or time.monotonic() - last >= settings.status_resync_seconds:
            return True
        return self.moving(key, status)

    def moving(self, key: ClusterKey, status: Mapping[str, Any]) -> bool:
        """Something only polling sees may change the status soon."""
        phase = status.get("phase")
        if phase == WorkloadPhase.INVALID:
            return False
        armed = self._armed.get(key)
        if armed is None or not armed.live():
            return True  # ZooKeeper unreachable, or the watches not armed yet
        if status.get("rollout") or status.get("maintenance"):
            return True
        if status.get("leadingMaster") and phase != WorkloadPhase.READY:
            return True  # the leader's metrics: elected, recovered, agents registered
        return bool(cordoned_nodes())

    # --- the refresh -------------------------------------------------------------------

    @contextlib.contextmanager
    def _cluster_lock(self, key: ClusterKey) -> Iterator[_Cluster]:
        """The cluster's entry, held: one refresh at a time per cluster."""
        with self._lock:
            cluster = self._clusters.get(key)
            if cluster is None:
                cluster = self._clusters[key] = _Cluster({}, kopf.Memo(), {})
        with cluster.lock:
            yield cluster

    def _refresh(self, key: ClusterKey) -> None:
        if key not in self._clusters:
            return  # deleted
        with self._cluster_lock(key) as cluster:
            if cluster.body and cluster.indexes:
                self._observe_and_write(key, cluster, arm=True)

    def _observe_and_write(self, key: ClusterKey, cluster: _Cluster, arm: bool) -> None:
        """Observe from the freshest body this process knows and write the status patch
        itself (not through Kopf, which would write after the cluster's lock is released,
        possibly over a newer refresh's status). Holds the cluster's lock."""
        observe = self._observe
        if observe is None:
            raise RuntimeError("no observer: handlers.py registers it with use()")
        body = kopf.Body(cast(kopf.RawBody, copy.deepcopy(cluster.body)))
        if arm:
            self._arm(key, body.spec, body.metadata)
        patch = kopf.Patch()
        observe(
            spec=body.spec, status=body.status, meta=body.metadata, patch=patch,
            memo=cluster.memo, **cluster.indexes,
        )  # fmt: skip
        self._last_refresh[key] = time.monotonic()
        if not patch:
            return
        try:
            written = KubeApi.shared().merge_patch(
                f"{API_GROUP}/{API_VERSION}", "MesosCluster", key[0], key[1], dict(patch),
                subresource="status",
            )  # fmt: skip
        except ApiError as error:
            if error.status == 404:
                return  # deleted meanwhile: its DELETED event forgets it
            raise
        with self._lock:  # the next refresh starts from what was written
            if _resource_version(written) > _resource_version(cluster.body):
                cluster.body = written

    def _arm(self, key: ClusterKey, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Watches on the cluster's current ZooKeeper (re-armed if that changed); none, and
        the old ones cancelled, when it cannot be reached. Before the observer reads, so a
        change between its read and the arming cannot be missed."""
        owner = Owner(name=str(meta["name"]), namespace=str(meta["namespace"]), uid="")
        armed = self._armed.get(key)
        try:
            parsed = MesosClusterSpec.model_validate(copy.deepcopy(dict(spec)))
            target = watch_target(owner, parsed)
            ref = parsed.zookeeper.external.auth_secret_ref if parsed.zookeeper.external else None
            auth = read_zk_credentials(KubeApi.shared(), owner.namespace, ref)
            with zk_tls_routes(target.tls_routes()):
                client = ZK_POOL.get(target.connect, auth)
        except (ValidationError, ZkUnreachable, CredentialsRefused, ApiError) as error:
            if armed is not None:
                log.info("ZooKeeper watches of %s/%s dropped: %s", *key, error)
                self._disarm(key)
            return
        if armed is not None and armed.target == target and armed.client is client and armed.live():
            return
        self._disarm(key)
        try:
            watches = _ArmedWatches(client, target, lambda: self._debouncer.trigger(key))
        except Exception as error:  # a connection lost while arming: the timer polls
            log.info("ZooKeeper watches of %s/%s not armed: %r", *key, error)
            return
        with self._lock:
            self._armed[key] = watches

    def _disarm(self, key: ClusterKey) -> None:
        with self._lock:
            armed = self._armed.pop(key, None)
        if armed is not None:
            armed.cancel()

    def watched(self, key: ClusterKey) -> WatchTarget | None:
        """What the cluster's live watches are on; None if it has none."""
        armed = self._armed.get(key)
        return armed.target if armed is not None and armed.live() else None


def _settings(memo: kopf.Memo) -> OperatorSettings:
    settings = memo.get("settings")
    return settings if isinstance(settings, OperatorSettings) else OperatorSettings()


STATUS_EVENTS = StatusEvents()


@kopf.on.event(API_GROUP, API_VERSION, "mesosclusters")
def cluster_changed(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    STATUS_EVENTS.cluster_event(kwargs.get("type"), body, memo, kwargs)


@kopf.on.event("apps", "v1", "statefulsets", labels=OURS)
def statefulset_changed(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    STATUS_EVENTS.workload_event("StatefulSet", kwargs.get("type"), body, memo)


@kopf.on.event("apps", "v1", "daemonsets", labels=OURS)
def daemonset_changed(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    STATUS_EVENTS.workload_event("DaemonSet", kwargs.get("type"), body, memo)


@kopf.on.event("apps", "v1", "deployments", labels=OURS)
def deployment_changed(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    STATUS_EVENTS.workload_event("Deployment", kwargs.get("type"), body, memo)


@kopf.on.cleanup()
def stop_status_events(**_: Any) -> None:
    STATUS_EVENTS.stop()
