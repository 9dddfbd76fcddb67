"""The sync engine: bootstrap, watch-driven replication, periodic full reconcile.

Threads: kazoo's own threads deliver watch events and connection states into a queue; one
worker thread owns all engine state (caches of both sides, the merge base, conflicts) and
does every read and write. A full reconcile (read both sides, diff, repair, re-arm every
watch) runs at start (the bootstrap copy), periodically, and after any reconnect, since
kazoo drops watches when a connection is lost.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    NoAuthError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import EventType, KazooState

from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.sync.conflict import (
    Action,
    Decision,
    NodeOwner,
    Peer,
    Strategy,
    decide_bidirectional,
    decide_one_way,
)
from orchestrator_operator.sync.counters import counters_behind, plan_bands
from orchestrator_operator.sync.metrics import SyncMetrics
from orchestrator_operator.sync.state import ConflictRecord, EngineState, load_state, save_state
from orchestrator_operator.zk.connection import SyncError, close, connect
from orchestrator_operator.zk.features import has_multi_read
from orchestrator_operator.zk.identity import check_distinct
from orchestrator_operator.zk.model import (
    NodeState,
    Op,
    Put,
    ReadAborted,
    Remove,
    Side,
    is_under,
    join,
    normalize_root,
    parent_of,
)
from orchestrator_operator.zk.reader import Watches, read_tree
from orchestrator_operator.zk.wire.multiread import GET_CHILDREN, GET_DATA, ReadOp, run_reads
from orchestrator_operator.zk.wire.persistent import add_recursive_watch
from orchestrator_operator.zk.writer import Applier, ApplyResult, SentUpdates

log = logging.getLogger(__name__)

RETRYABLE = (
    ConnectionLoss,
    SessionExpiredError,
    ConnectionClosedError,
    OperationTimeoutError,
    KazooTimeoutError,
)

# How long stop() lets the worker finish what it is doing before closing the sessions.
STOP_GRACE = 10.0

# A hook for benchmarks and tests: (path, side written, monotonic time applied, the
# state written there or None for a delete).
AppliedHook = Callable[[str, Side, float, NodeState | None], None]


# How often the ACL sweep takes its next slice of each side, and the highest rate allowed
# (each znode is one sub-operation of a multiRead on each watched side's ensemble).
ACL_SWEEP_STEP_SECONDS = 0.5
ACL_SWEEP_RATE_MAX = 100_000


def check_acl_sweep_rate(rate: int) -> None:
    """SyncError unless `rate` (znodes/s, 0 = off) is in range."""
    if not 0 <= rate <= ACL_SWEEP_RATE_MAX:
        raise SyncError(
            f"--acl-sweep-rate must be from 0 (off) to {ACL_SWEEP_RATE_MAX} znodes/s, got {rate}"
        )


@dataclass
class SyncConfig:
    source: str
    target: str
    paths: list[str]
    bidirectional: bool = False
    strategy: Strategy = Strategy.SOURCE_WINS
    reconcile_interval: float = 60.0
    session_timeout: float = 10.0
    connect_timeout: float = 15.0
    state_file: Path | None = None
    batch_max: int = 5000
    state_save_interval: float = 2.0
    # znodes per second whose ACL version is checked on each watched side (0: off; ACL
    # changes then wait for the full reconcile); a tenth of it without multiRead (< 3.6)
    acl_sweep_rate: int = 4000
    # (scheme, credential) pairs each side's sessions authenticate with; with a digest user
    # that has ADMIN, ACLs read with their real digest ids (without, they read redacted and
    # those znodes are reported unreadable, never copied)
    source_auth: list[tuple[str, str]] = field(default_factory=list)
    target_auth: list[tuple[str, str]] = field(default_factory=list)
    # TLS per side (its connect string names the secure client port, 2281 on managed
    # ensembles): the CA to verify the servers with and the client certificate to present
    source_tls: ReloadingTls | None = None
    target_tls: ReloadingTls | None = None
    # bidirectional: how far B's sequence counter runs ahead of A's under a parent with
    # sequential children (sync.counters.plan_bands); A may issue half of it between looks
    sequence_margin: int = 1000

    def __post_init__(self) -> None:
        if not self.paths:
            raise SyncError("at least one --path is required")
        check_acl_sweep_rate(self.acl_sweep_rate)
        if self.sequence_margin < 2:
            raise SyncError(f"sequence_margin must be at least 2, got {self.sequence_margin}")
        try:
            roots = [normalize_root(p) for p in self.paths]
        except ValueError as exc:
            raise SyncError(str(exc)) from exc
        for r in roots:
            if r == "/zookeeper" or r.startswith("/zookeeper/"):
                raise SyncError(f"{r} is ZooKeeper's own subtree and cannot be synced")
        # Drop roots nested in another root.
        self.paths = [r for r in roots if not any(o != r and is_under(r, o) for o in roots)]


@dataclass
class _Pending:
    kinds: set[str] = field(default_factory=set)
    seen: float = 0.0


@dataclass
class BootstrapStats:
    znodes: int = 0
    seconds: float = 0.0

    @property
    def znodes_per_second(self) -> float:
        return self.znodes / self.seconds if self.seconds > 0 else 0.0


class SyncEngine:
    def __init__(
        self,
        config: SyncConfig,
        metrics: SyncMetrics | None = None,
        on_applied: AppliedHook | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or SyncMetrics()
        self.on_applied = on_applied
        self.roots = list(config.paths)
        self.clients: dict[Side, Any] = {}
        self.appliers: dict[Side, Applier] = {}
        self.cache: dict[Side, dict[str, NodeState]] = {Side.A: {}, Side.B: {}}
        self.unreadable: dict[Side, dict[str, str]] = {Side.A: {}, Side.B: {}}
        # znodes the last write to could not change, and why (cleared by a later success)
        self.unwritable: dict[Side, dict[str, str]] = {Side.A: {}, Side.B: {}}
        # ACL sweep: paths still to check per side, when the current sweep began, and how
        # long the last complete one took (the bound on ACL replication lag)
        self._sweep: dict[Side, list[str]] = {}
        self._sweep_began: dict[Side, float] = {}
        self._next_sweep_step = 0.0
        self.acl_sweep: dict[Side, float] = {}
        # sequence counters pushed on each side since its last full read (a floor)
        self._carried: dict[Side, dict[str, int]] = {Side.A: {}, Side.B: {}}
        # bidirectional: per sequential parent, the lowest suffix B issues since the last
        # jump (sync.counters.plan_bands); kept across full reconciles, not restarts
        self._bands: dict[str, int] = {}
        self.state = EngineState()
        self.bootstrap = BootstrapStats()
        self.last_full_reconcile = 0.0  # monotonic
        self.last_full_reconcile_wall = 0.0
        self.full_reconciles = 0
        self._queue: queue.Queue[tuple[Side, str, str, float]] = queue.Queue()
        self._stop = threading.Event()
        self._need_full = threading.Event()
        self._idle = threading.Event()
        self._connected: dict[Side, bool] = {Side.A: False, Side.B: False}
        self._watches: dict[Side, Watches] = {
            side: Watches(data=self._watcher(side), children=self._watcher(side)) for side in Side
        }
        # ZooKeeper >= 3.6 (multiRead and addWatch): one persistent recursive watch per root
        # and bulk reads without watches; older servers: a data and a child watch per znode.
        self._recursive: dict[Side, bool] = {Side.A: False, Side.B: False}
        self._worker: threading.Thread | None = None
        self._state_dirty = False
        self._state_saved_at = 0.0
        self._lock = threading.Lock()  # serialises full reconciles requested from outside
        # live writes sent and not yet settled: (side, sent, when their changes were seen)
        self._sent: tuple[Side, SentUpdates, dict[str, tuple[Side, float]]] | None = None

    # ================================================================== lifecycle
    def start(self) -> None:
        """Refuse an ensemble synced onto itself, connect, check the paths, bootstrap (first
        full reconcile), start following. SameEnsembleError (a SyncError) before any
        session: synced onto itself, an ensemble loses its clients' ephemerals (the engine
        takes them over and deletes them when it stops)."""
        cfg = self.config
        check_distinct(
            cfg.source,
            cfg.target,
            contexts=(
                cfg.source_tls.current() if cfg.source_tls else None,
                cfg.target_tls.current() if cfg.target_tls else None,
            ),
        )
        try:
            self.state = load_state(cfg.state_file)
        except ValueError as exc:
            raise SyncError(str(exc)) from exc
        sides = (
            (Side.A, cfg.source, "source", cfg.source_auth, cfg.source_tls),
            (Side.B, cfg.target, "target", cfg.target_auth, cfg.target_tls),
        )
        for side, hosts, what, auth, tls in sides:
            resume = self.state.resume.get(side.value)
            try:
                client = connect(
                    hosts,
                    what,
                    timeout=cfg.connect_timeout,
                    session_timeout=cfg.session_timeout,
                    prefer_leader=True,
                    auth=auth,
                    client_id=resume,
                    tls=tls,
                )
            except SyncError:
                self._close_clients()
                raise
            self.clients[side] = client
            self._recursive[side] = has_multi_read(client)
            self.appliers[side] = Applier(client)
            self._connected[side] = True
            self.metrics.connected.labels(side.value).set(1)
            if resume is not None and resume[0] == client.client_id[0]:
                log.info("%s: carried on session 0x%x (its mirrors kept)", what, resume[0])
            client.add_listener(self._listener(side))
        self._remember_sessions()
        missing = [r for r in self.roots if self.clients[Side.A].exists(r) is None]
        if missing:
            self._close_clients()
            raise SyncError(
                f"source path(s) {', '.join(missing)} do not exist on the source ensemble "
                f"{cfg.source}"
            )
        t0 = time.monotonic()
        self._bootstrap()
        self.bootstrap = BootstrapStats(
            znodes=len(self.cache[Side.A]), seconds=time.monotonic() - t0
        )
        self.metrics.bootstrap_znodes_per_second.set(self.bootstrap.znodes_per_second)
        log.info(
            "bootstrap done: %d znodes in %.2fs (%.0f znodes/s)",
            self.bootstrap.znodes,
            self.bootstrap.seconds,
            self.bootstrap.znodes_per_second,
        )
        self._worker = threading.Thread(target=self._run, name="zk-sync-worker", daemon=True)
        self._worker.start()

    def _bootstrap(self) -> None:
        """The first full reconcile. A server of either ensemble may die meanwhile: kazoo
        moves to another server within the session, so wait for it and start over rather
        than fail the whole start (up to the connect timeout, at least twice)."""
        cfg = self.config
        deadline = time.monotonic() + max(cfg.connect_timeout, 2 * cfg.session_timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                self.full_reconcile()
                return
            except RETRYABLE as exc:
                if self._stop.is_set() or (attempt >= 2 and time.monotonic() >= deadline):
                    raise
                log.warning(
                    "connection trouble during the bootstrap (%s): starting it over",
                    exc.__class__.__name__,
                )
                self.metrics.errors.labels("connection").inc()
                while not all(self._connected.values()) and time.monotonic() < deadline:
                    if self._stop.wait(0.2):
                        raise
                self._stop.wait(0.2)

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Stop following, save the state, close the sessions. Prompt: a full reconcile
        checks for the stop between windows of reads and before writing; a worker still
        busy after ``timeout`` seconds (a request stuck on a slow ensemble) is cut short by
        closing the sessions under it, which fails its pending requests at once."""
        self._stop.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=timeout)
            if worker.is_alive():
                log.warning(
                    "sync worker still busy %.0fs after the stop: closing the sessions", timeout
                )
                self._close_clients()
                worker.join(timeout=timeout)
        if worker is not None and worker.is_alive():
            log.error("sync worker did not stop: the state file is not saved")
        else:
            self._save_state(force=True)
        self._close_clients()

    def __enter__(self) -> SyncEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_clients(self) -> None:
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                close(client)
        self.clients.clear()

    # ================================================================== observing
    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no change is pending (queue drained, no reconcile due)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.wait(timeout=0.1) and self._queue.empty():
                return True
        return False

    def request_full_reconcile(self) -> None:
        self._need_full.set()
        self._idle.clear()

    @property
    def conflicts(self) -> dict[str, ConflictRecord]:
        return dict(self.state.conflicts)

    def health(self) -> tuple[bool, dict[str, object]]:
        alive = self._worker is not None and self._worker.is_alive()
        age = time.monotonic() - self.last_full_reconcile if self.last_full_reconcile else None
        stale_after = max(3 * self.config.reconcile_interval, 120.0)
        ok = alive and all(self._connected.values()) and age is not None and age < stale_after
        return ok, {
            "worker_alive": alive,
            "connected": {s.value: c for s, c in self._connected.items()},
            "seconds_since_full_reconcile": age,
            "pending_changes": self._queue.qsize(),
            "unresolved_conflicts": len(self.state.conflicts),
            # per side, znodes not synced until someone gives the engine access (why: log)
            "unreadable": {s.value: sorted(u) for s, u in self.unreadable.items() if u},
            "unwritable": {s.value: sorted(u) for s, u in self.unwritable.items() if u},
            # an ACL change is replicated within about one sweep (no watch fires for setACL)
            "acl_sweep_seconds": {s.value: round(t, 3) for s, t in self.acl_sweep.items()},
        }

    # ================================================================== kazoo callbacks
    def _watcher(self, side: Side) -> Callable[[Any], None]:
        kinds = {
            EventType.CHANGED: "data",
            EventType.CREATED: "data",
            EventType.DELETED: "deleted",
            EventType.CHILD: "child",
        }

        def on_event(event: Any) -> None:
            kind = kinds.get(event.type)
            if kind is not None and event.path:
                self._enqueue(side, kind, event.path)

        return on_event

    def _enqueue(self, side: Side, kind: str, path: str) -> float:
        """Count a watch event and queue the look it asks for; the time it was seen."""
        self.metrics.events.labels(side.value).inc()
        self._idle.clear()
        now = time.monotonic()
        self._queue.put((side, kind, path, now))
        return now

    def _recursive_watcher(self, side: Side) -> Callable[[Any], None]:
        """Events of a persistent recursive watch: exact paths, no child events, so a create
        or delete also queues a look at its parent's children (the cached child list)."""
        kinds = {EventType.CHANGED: "data", EventType.CREATED: "data", EventType.DELETED: "deleted"}

        def on_event(event: Any) -> None:
            kind = kinds.get(event.type)
            if kind is None or not event.path:
                return
            now = self._enqueue(side, kind, event.path)
            parent = parent_of(event.path)
            if event.type != EventType.CHANGED and any(is_under(parent, r) for r in self.roots):
                self._queue.put((side, "child", parent, now))

        return on_event

    def _watched(self, side: Side) -> bool:
        return side is Side.A or self.config.bidirectional

    def _per_znode_watches(self, side: Side) -> Watches | None:
        """The watches to arm on every znode read on ``side`` (None: none needed)."""
        if not self._watched(side) or self._recursive[side]:
            return None
        return self._watches[side]

    def _listener(self, side: Side) -> Callable[[Any], None]:
        def on_state(state: Any) -> None:
            if self._stop.is_set():
                return
            if state == KazooState.CONNECTED:
                if not self._connected[side]:
                    log.warning(
                        "reconnected to side %s: re-arming watches, full reconcile", side.value
                    )
                    self._need_full.set()
                    self._idle.clear()
                self._connected[side] = True
                self.metrics.connected.labels(side.value).set(1)
            else:
                if self._connected[side]:
                    log.warning("connection to side %s: %s", side.value, state)
                self._connected[side] = False
                self.metrics.connected.labels(side.value).set(0)
                if state == KazooState.LOST:
                    self.metrics.errors.labels("session_expired").inc()

        return on_state

    # ================================================================== worker
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                due = time.monotonic() - self.last_full_reconcile >= self.config.reconcile_interval
                if self._need_full.is_set() or due:
                    if not self._wait_connected():
                        continue
                    self._need_full.clear()
                    self.full_reconcile()
                    continue
                items = self._drain()
                self.metrics.pending.set(self._queue.qsize())
                if not items:
                    self._settle_sent()
                    self._sweep_acls()
                    self._save_state()
                    if self._queue.empty() and not self._need_full.is_set():
                        self._idle.set()
                    continue
                self._idle.clear()
                self._process(items)
                self._sweep_acls()  # rate-limited by time; also under constant load
                self._save_state()  # rate-limited; also under constant load
            except ReadAborted:
                break  # stopping
            except RETRYABLE as exc:
                if self._stop.is_set():
                    break  # stop() closed the sessions under a pending request
                log.warning(
                    "connection trouble (%s): will re-sync after reconnect", exc.__class__.__name__
                )
                self.metrics.errors.labels("connection").inc()
                self._sent = None  # the full reconcile that follows reads B again
                self._need_full.set()
                self._stop.wait(0.5)
            except Exception:
                if self._stop.is_set():
                    break  # stop() closed the sessions under the worker
                log.exception("sync worker error; a full reconcile follows")
                self.metrics.errors.labels("internal").inc()
                self._sent = None
                self._need_full.set()
                self._stop.wait(1.0)

    def _sweep_acls(self) -> None:
        """Check a slice of each watched side's ACL versions (ZooKeeper fires no watch for
        setACL); a changed one is queued like a data event, whose re-read copies the ACL.
        Each sweep goes over the paths cached when it began; new ones are in the next."""
        rate = self.config.acl_sweep_rate
        now = time.monotonic()
        if rate <= 0 or now < self._next_sweep_step:
            return
        self._next_sweep_step = now + ACL_SWEEP_STEP_SECONDS
        for side in Side:
            if not self._watched(side):
                continue
            todo = self._sweep.get(side)
            if not todo:
                began = self._sweep_began.get(side)
                if began is not None:
                    self.acl_sweep[side] = now - began
                    self.metrics.acl_sweep_seconds.labels(side.value).set(now - began)
                todo = self._sweep[side] = sorted(self.cache[side], reverse=True)
                self._sweep_began[side] = now
            budget = rate * ACL_SWEEP_STEP_SECONDS
            count = max(1, int(budget if self._recursive[side] else budget / 10))
            batch = [todo.pop() for _ in range(min(count, len(todo)))]
            results = run_reads(
                self.clients[side],
                [ReadOp(GET_DATA, path, None) for path in batch],
                multi=self._recursive[side],
            )
            for path, res in zip(batch, results, strict=True):
                node = self.cache[side].get(path)
                if not isinstance(res, tuple) or node is None:
                    continue  # gone or unreadable: its own events say so
                if node.aversion != res[1].aversion:
                    self._enqueue(side, "data", path)

    def _wait_connected(self) -> bool:
        while not self._stop.is_set():
            if all(self._connected.values()):
                return True
            self._stop.wait(0.2)
        return False

    def _drain(self) -> dict[Side, dict[str, _Pending]]:
        try:
            # writes on their way: settle them soon if nothing else comes
            first = self._queue.get(timeout=0.1 if self._sent is None else 0.005)
        except queue.Empty:
            return {}
        items = [first]
        while len(items) < self.config.batch_max:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        out: dict[Side, dict[str, _Pending]] = {Side.A: {}, Side.B: {}}
        for side, kind, path, seen in items:
            if side is Side.B and not self.config.bidirectional:
                continue
            pending = out[side].setdefault(path, _Pending(seen=seen))
            pending.kinds.add(kind)
            pending.seen = min(pending.seen, seen)
        return out

    def _process(self, items: dict[Side, dict[str, _Pending]]) -> None:
        touched: set[str] = set()
        seen: dict[str, tuple[Side, float]] = {}
        for side, entries in items.items():
            if not entries:
                continue
            changed = self._refresh(side, entries)
            touched |= changed
            earliest = min(e.seen for e in entries.values())
            for path in changed:
                origin = entries.get(path) or entries.get(parent_of(path))
                when = origin.seen if origin is not None else earliest
                if path not in seen or seen[path][1] > when:
                    seen[path] = (side, when)
        if touched:
            self._sync_paths(touched, seen, bulk=False)

    # ------------------------------------------------------------------ reading changes
    def _forget(self, side: Side, path: str, touched: set[str]) -> None:
        """Drop ``path`` and its cached descendants (found through the cached children)."""
        cache = self.cache[side]
        stack = [path]
        while stack:
            p = stack.pop()
            touched.add(p)
            node = cache.pop(p, None)
            if node is not None:
                stack.extend(join(p, c) for c in node.children or ())

    def _refresh(self, side: Side, entries: dict[str, _Pending]) -> set[str]:
        """Re-read what the events point at (re-arming the watches that fired)."""
        client, cache = self.clients[side], self.cache[side]
        w = self._per_znode_watches(side) or Watches()
        touched: set[str] = set()
        full: list[str] = []
        # A child event reads the parent's stat too: its cversion is the sequence counter
        # that carrying needs (multiRead's getChildren has no stat).
        data_paths = [p for p, e in entries.items() if e.kinds & {"data", "deleted", "child"}]
        child_paths = [p for p, e in entries.items() if "child" in e.kinds]
        ops = [ReadOp(GET_DATA, p, w.data) for p in data_paths]
        ops += [ReadOp(GET_CHILDREN, p, w.children) for p in child_paths]
        results = run_reads(client, ops, multi=self._recursive[side])
        gets = zip(data_paths, results[: len(data_paths)], strict=True)
        kids = zip(child_paths, results[len(data_paths) :], strict=True)
        for path, res in gets:
            if isinstance(res, NoNodeError):
                self._forget(side, path, touched)
                continue
            if isinstance(res, NoAuthError):
                self._unreadable(side, path, "not authorized to read (ACL)")
                continue
            if isinstance(res, Exception):
                raise res
            assert isinstance(res, tuple)
            data, stat = res
            old = cache.get(path)
            if (
                old is None
                or old.aversion != stat.aversion
                or old.ephemeral_owner != stat.ephemeralOwner
            ):
                full.append(path)
                continue
            cache[path] = dataclasses.replace(
                old,
                data=data or b"",
                version=stat.version,
                mtime_ms=stat.mtime,
                cversion=stat.cversion,
                num_children=stat.numChildren,
            )
            touched.add(path)
        for path, names in kids:
            if isinstance(names, NoNodeError):
                self._forget(side, path, touched)
                continue
            if isinstance(names, NoAuthError):
                self._unreadable(side, path, "not authorized to list children (ACL)")
                continue
            if isinstance(names, Exception):
                raise names
            assert isinstance(names, list)
            old = cache.get(path)
            if old is None:
                full.append(path)
                continue
            now, before = set(names), set(old.children or ())
            full.extend(join(path, n) for n in now - before)
            for gone in before - now:
                self._forget(side, join(path, gone), touched)
            cache[path] = dataclasses.replace(old, children=tuple(sorted(now)))
        if full:
            snap = read_tree(client, list(dict.fromkeys(full)), self._per_znode_watches(side))
            for path, node in snap.nodes.items():
                cache[path] = node
                touched.add(path)
            for path in snap.missing_roots:
                self._forget(side, path, touched)
            for path, why in snap.unreadable.items():
                self._unreadable(side, path, why)
        for root in self.roots:
            if root in touched and root not in cache and not self._recursive[side]:
                client.exists_async(root, watch=w.data)  # tell us when it comes back
        return touched

    def _unreadable(self, side: Side, path: str, why: str) -> None:
        if path not in self.unreadable[side]:
            log.error("side %s: cannot read %s: %s (left alone, not synced)", side.value, path, why)
        self.unreadable[side][path] = why
        self.metrics.errors.labels("unreadable").inc()

    # ------------------------------------------------------------------ deciding
    def _owner(self, side: Side, node: NodeState | None) -> NodeOwner:
        if node is None or not node.ephemeral:
            return NodeOwner.NONE
        if node.ephemeral_owner == self.appliers[side].session_id:
            return NodeOwner.ENGINE
        if node.ephemeral_owner in self.state.sessions.get(side.value, ()):
            return NodeOwner.STALE_ENGINE
        return NodeOwner.CLIENT

    def _peer(self, side: Side, path: str) -> Peer:
        node = self.cache[side].get(path)
        return Peer(node, self._owner(side, node))

    def _blocked(self, path: str) -> bool:
        """At or under a znode unreadable on either side (its ancestors are synced: their
        data and ACLs are readable, and removing one is what the other side did)."""
        return any(is_under(path, bad) for side in Side for bad in self.unreadable[side])

    def _decide(self, path: str) -> Decision:
        a, b = self._peer(Side.A, path), self._peer(Side.B, path)
        if self.config.bidirectional:
            return decide_bidirectional(a, b, self.state.base.get(path), self.config.strategy)
        return decide_one_way(a, b)

    def _sync_paths(
        self, paths: Iterable[str], seen: dict[str, tuple[Side, float]], *, bulk: bool
    ) -> None:
        self._settle_sent()  # the decisions below need what the last writes did
        ops: dict[Side, list[Op]] = {Side.A: [], Side.B: []}
        bidi = self.config.bidirectional
        decided: list[str] = []
        for path in sorted(paths):
            if not any(is_under(path, r) for r in self.roots):
                continue
            if self._blocked(path):
                continue
            decided.append(path)
            d = self._decide(path)
            a, b = self.cache[Side.A].get(path), self.cache[Side.B].get(path)
            if d.conflict is not None and d.action is not Action.MANUAL:
                self.metrics.conflicts.labels(d.conflict).inc()
                log.warning(
                    "conflict at %s (%s): resolved by %s -> %s",
                    path,
                    d.reason,
                    d.conflict,
                    d.action.value,
                )
            if d.action is Action.NOOP:
                self._agree(path, a, b)
            elif d.action is Action.MANUAL:
                self._record_conflict(path, d, a, b)
            elif d.action is Action.COPY_A_TO_B:
                assert a is not None
                ops[Side.B].append(Put(path, a, b))
            elif d.action is Action.COPY_B_TO_A:
                assert b is not None
                ops[Side.A].append(Put(path, b, a))
            elif d.action is Action.DELETE_B:
                version = b.version if b is not None else -1
                ops[Side.B].append(Remove(path, recursive=not bidi, version=version))
            elif d.action is Action.DELETE_A:
                version = a.version if a is not None else -1
                ops[Side.A].append(Remove(path, recursive=False, version=version))
        if bidi:
            self._keep_nonempty(ops)
        for side in (Side.B, Side.A):
            if not ops[side] or self._stop.is_set():
                continue
            if bulk or not self._send_ahead(side, ops[side], seen):
                self._apply(side, ops[side], seen, bulk=bulk)
        self._carry_counters(decided)

    def _keep_nonempty(self, ops: dict[Side, list[Op]]) -> None:
        """Bidirectional: a deletion never takes children that are not deleted themselves;
        the deleted parent is restored on the other side instead (a change beats a delete)."""
        for side in Side:
            removing = {o.path for o in ops[side] if isinstance(o, Remove)}
            keep: list[Op] = []
            for op in ops[side]:
                node = self.cache[side].get(op.path)
                if isinstance(op, Remove) and node is not None:
                    survivors = [c for c in node.children or () if join(op.path, c) not in removing]
                    if survivors:
                        other = side.other
                        ops[other].append(Put(op.path, node, self.cache[other].get(op.path)))
                        continue
                keep.append(op)
            ops[side] = keep

    def _agree(self, path: str, a: NodeState | None, b: NodeState | None) -> None:
        if not self.config.bidirectional:
            return
        if a is not None and b is not None and a.content_hash == b.content_hash:
            if self.state.base.get(path) != a.content_hash:
                self.state.base[path] = a.content_hash
                self._state_dirty = True
        elif a is None and b is None and path in self.state.base:
            del self.state.base[path]
            self._state_dirty = True
        if path in self.state.conflicts and (
            (a is None and b is None)
            or (a is not None and b is not None and a.content_hash == b.content_hash)
        ):
            log.info("conflict at %s resolved (both sides agree)", path)
            del self.state.conflicts[path]
            self._state_dirty = True
            self.metrics.manual_conflicts.set(len(self.state.conflicts))

    def _record_conflict(
        self, path: str, d: Decision, a: NodeState | None, b: NodeState | None
    ) -> None:
        def show(n: NodeState | None) -> str:
            if n is None:
                return "absent"
            kind = "ephemeral" if n.ephemeral else "persistent"
            return f"{kind} {n.data[:60]!r} mtime={n.mtime_ms}"

        def value(n: NodeState | None) -> str | None:
            return None if n is None else base64.b64encode(n.data).decode("ascii")

        record = ConflictRecord(path, d.reason, show(a), show(b), time.time(), value(a), value(b))
        old = self.state.conflicts.get(path)
        if old is None or (old.source_data, old.target_data, old.source, old.target) != (
            record.source_data,
            record.target_data,
            record.source,
            record.target,
        ):
            self.metrics.conflicts.labels("manual").inc()
            log.warning(
                "conflict at %s (%s) left for a person: source %s / target %s",
                path, d.reason, record.source, record.target,
            )  # fmt: skip
            self.state.conflicts[path] = record
            self._state_dirty = True
            self.metrics.manual_conflicts.set(len(self.state.conflicts))

    # ------------------------------------------------------------------ writing
    def _apply(
        self, side: Side, ops: list[Op], seen: dict[str, tuple[Side, float]], *, bulk: bool
    ) -> None:
        bidi = self.config.bidirectional
        result: ApplyResult = self.appliers[side].apply(ops, bulk=bulk, conditional=bidi)
        self._record(side, result, seen)

    def _carry_counters(self, paths: Iterable[str]) -> None:
        """Push the written side's sequence counters of ``paths`` up to the other side's
        (sync.counters); bidirectional, keep A's below B's band under sequential parents,
        and carry the other parents both ways."""
        if not self.config.bidirectional:
            self._push_counters(Side.B, counters_behind(paths, *self._caches(Side.B)))
            return
        paths = list(paths)
        parents = set(paths) | {parent_of(p) for p in paths}
        carried = (self._carried[Side.A], self._carried[Side.B])
        cache_a, cache_b = self.cache[Side.A], self.cache[Side.B]
        plan = plan_bands(
            sorted(parents), cache_a, cache_b, carried, self._bands, self.config.sequence_margin
        )
        banded = self._bands.keys() | plan.bands.keys()
        others = [p for p in paths if p not in banded]
        # B first: its band moves up before A moves into the suffixes B has issued
        failed = self._push_counters(
            Side.B, plan.b | counters_behind(others, *self._caches(Side.B))
        )
        for path, start in plan.bands.items():
            if path in failed:
                plan.a.pop(path, None)  # A stays where it is, below B's old band
            else:
                self._bands[path] = start
        self._push_counters(Side.A, plan.a | counters_behind(others, *self._caches(Side.A)))

    def _caches(
        self, side: Side
    ) -> tuple[dict[str, NodeState], dict[str, NodeState], dict[str, int]]:
        """counters_behind's view for pushing ``side``: the other side, this one, floors."""
        return self.cache[side.other], self.cache[side], self._carried[side]

    def _push_counters(self, side: Side, needs: dict[str, int]) -> set[str]:
        """Push ``side``'s counters up to ``needs``; the parents that could not be."""
        if not needs or self._stop.is_set():
            return set(needs)
        result = self.appliers[side].carry_counters(needs)
        for path, suffix in needs.items():
            if path not in result.failed:
                self._carried[side][path] = max(suffix, self._carried[side].get(path, 0))
        self._record(side, result, {})
        return set(result.failed)

    def _send_ahead(self, side: Side, ops: list[Op], seen: dict[str, tuple[Side, float]]) -> bool:
        """One-way live changes that are data only (nearly all of them) are sent to B
        without waiting for the replies: the worker reads the next changes on A while they
        travel, and settles them before it decides anything again (_settle_sent)."""
        applier = self.appliers[side]
        if self.config.bidirectional or side is not Side.B or not applier.is_data_only(ops):
            return False
        puts = [op for op in ops if isinstance(op, Put)]
        self._sent = (side, applier.send_updates(puts), seen)
        return True

    def _settle_sent(self) -> None:
        """Read the replies of the writes _send_ahead sent; the caches follow them."""
        if self._sent is not None:
            side, sent, seen = self._sent
            self._sent = None
            self._record(side, sent.settle(), seen)

    def _record(self, side: Side, result: ApplyResult, seen: dict[str, tuple[Side, float]]) -> None:
        """Bring the cache, the merge base and the metrics up to date with what was written
        on ``side``; queue another look at whatever changed under the writes."""
        bidi = self.config.bidirectional
        direction = "a_to_b" if side is Side.B else "b_to_a"
        cache = self.cache[side]
        # child names that came and went, per parent: each parent's list is rebuilt once
        added: dict[str, set[str]] = {}
        removed: dict[str, set[str]] = {}
        for path in result.written:
            self.unwritable[side].pop(path, None)
        for path, node in result.written.items():
            above, name = path.rsplit("/", 1)
            if node is None:
                cache.pop(path, None)
                if bidi:
                    self.state.base.pop(path, None)
                removed.setdefault(above or "/", set()).add(name)
            else:
                cache[path] = node
                if bidi:  # the merge base only matters when both sides are merged
                    self.state.base[path] = node.content_hash
                added.setdefault(above or "/", set()).add(name)
            self._state_dirty = self._state_dirty or bidi
            applied = result.applied_at.get(path, time.monotonic())
            origin = seen.get(path)
            if origin is not None and origin[0] is not side:
                self.metrics.lag.labels(direction).observe(max(0.0, applied - origin[1]))
            if self.on_applied is not None:
                self.on_applied(path, side, applied, node)
        for parent_path in added.keys() | removed.keys():
            parent = cache.get(parent_path)
            if parent is None or parent.children is None:
                continue
            before = set(parent.children)
            kids = (before - removed.get(parent_path, set())) | added.get(parent_path, set())
            if kids != before:
                cache[parent_path] = dataclasses.replace(parent, children=tuple(sorted(kids)))
        for path, aversion in result.acl_versions.items():
            # a closed parent opened for a create and closed again: same ACL, new version
            node = cache.get(path)
            if node is not None:
                cache[path] = dataclasses.replace(node, aversion=aversion)
        for op, count in result.ops.items():
            self.metrics.operations.labels(op, direction).inc(count)
        self.metrics.bytes.labels(direction).inc(result.bytes)
        for path, why in result.failed.items():
            log.error("side %s: could not write %s: %s", side.value, path, why)
            self.metrics.errors.labels("write_failed").inc()
            self.unwritable[side][path] = why
        if result.created and self._watched(side) and not self._recursive[side]:
            self._arm_created(side, sorted(result.created))
        now = time.monotonic()
        for path in result.raced:
            # Changed under us: look at both sides again; the merge sees the conflict.
            log.info("side %s: %s changed concurrently, re-evaluating", side.value, path)
            for s in Side:
                self._queue.put((s, "data", path, now))
                self._queue.put((s, "child", parent_of(path), now))

    def _arm_created(self, side: Side, paths: list[str]) -> None:
        """Arm watches on nodes the engine created on a watched side; anything that changed
        between the create and the arming is queued for a look."""
        client, w, cache = self.clients[side], self._watches[side], self.cache[side]
        pending = [
            (p, client.get_async(p, watch=w.data), client.get_children_async(p, watch=w.children))
            for p in paths
        ]
        now = time.monotonic()
        for path, got, kids in pending:
            try:
                _, stat = got.get(timeout=60)
                names = kids.get(timeout=60)
            except (NoNodeError, NoAuthError):
                self._queue.put((side, "data", path, now))
                continue
            node = cache.get(path)
            if node is None or stat.version != node.version:
                self._queue.put((side, "data", path, now))
            if names:
                self._queue.put((side, "child", path, now))
            if node is not None:
                cache[path] = dataclasses.replace(
                    node, mtime_ms=stat.mtime, cversion=stat.cversion, aversion=stat.aversion
                )

    # ================================================================== full reconcile
    def full_reconcile(self) -> None:
        """Read both sides completely (re-arming all watches), repair every difference."""
        with self._lock:
            t0 = time.monotonic()
            self._settle_sent()
            self._remember_sessions()
            for side in Side:
                if self._watched(side) and self._recursive[side]:
                    # before the read, so that nothing changed meanwhile goes unseen
                    watcher = self._recursive_watcher(side)
                    for root in self.roots:
                        add_recursive_watch(self.clients[side], root, watcher)
            abort = self._stop.is_set  # a stop does not wait for a long read to finish
            snaps = {
                side: read_tree(
                    self.clients[side], self.roots, self._per_znode_watches(side), abort=abort
                )
                for side in Side
            }
            for side, snap in snaps.items():
                self.cache[side] = snap.nodes
                self._carried[side] = {}
                self.unreadable[side] = {}
                for path, why in snap.unreadable.items():
                    self._unreadable(side, path, why)
                self.metrics.znodes.labels(side.value).set(len(snap.nodes))
                if snap.missing_roots and side is Side.A:
                    log.warning("source path(s) %s absent on source", ", ".join(snap.missing_roots))
                for root in snap.missing_roots:
                    if self._per_znode_watches(side) is not None:
                        self.clients[side].exists(root, watch=self._watches[side].data)
            paths = set(self.cache[Side.A]) | set(self.cache[Side.B])
            paths |= {p for p in self.state.base if any(is_under(p, r) for r in self.roots)}
            self._sync_paths(paths, {}, bulk=True)
            self.last_full_reconcile = time.monotonic()
            self.last_full_reconcile_wall = time.time()
            self.full_reconciles += 1
            self.metrics.last_full_reconcile.set(self.last_full_reconcile_wall)
            self.metrics.full_reconcile_duration.observe(self.last_full_reconcile - t0)
            self._save_state(force=True)

    def _remember_sessions(self) -> None:
        """Record the current sessions (their ephemerals are the engine's mirrors, and a
        restarted engine carries them on) and save them before any mirror is made under
        them: an engine killed from then on starts again on the same sessions."""
        changed = False
        for side in Side:
            self.state.remember_session(side.value, self.appliers[side].session_id)
            session_id, password = self.clients[side].client_id
            if self.state.resume.get(side.value) != (session_id, password):
                self.state.resume[side.value] = (session_id, password)
                changed = True
        if changed:
            self._save_state(force=True)

    def _save_state(self, force: bool = False) -> None:
        path = self.config.state_file
        if path is None or not (self._state_dirty or force):
            return
        now = time.monotonic()
        if not force and now - self._state_saved_at < self.config.state_save_interval:
            return
        try:
            save_state(path, self.state)
        except OSError as exc:
            log.error("cannot save sync state to %s: %s", path, exc)
            self.metrics.errors.labels("state_file").inc()
            return
        self._state_dirty = False
        self._state_saved_at = now
