"""``orchestrator zk-sync controller``: one sync engine per active ZkMigration.

The process polls the ZkMigration list (every ``--interval`` seconds, all namespaces or
``--namespace``) and reads each one's ``status.syncRequest`` (written by the operator's
migration handlers). For every active request it runs a :class:`MigrationRunner`: a thread
that starts a bidirectional :class:`SyncEngine` (connect and bootstrap block, so a slow or
unreachable ensemble holds up only its own thread), retries with backoff when the start
fails, and patches ``status.sync`` of its ZkMigration every ``--report-interval`` seconds. A
second thread per runner compares both sides (zk/verify.py) every ``--verify-interval``
seconds through its own sessions, so verification never queues behind the engine's
requests. When the request goes inactive or changes, or the ZkMigration goes, the runner
stops its engine (and a changed request gets a new runner once the old one has let go).

The controller writes only ``status.sync`` (merge patch on the status subresource).
Pure parts (request parsing, the status document, lag p99) live in controller_status.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import REGISTRY, Gauge

from orchestrator_operator.common.health_server import Readiness, start_server
from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.models.base import API_GROUP, API_VERSION
from orchestrator_operator.sync.controller.metrics import PerMigrationCollector, controller_gauge
from orchestrator_operator.sync.controller.status import (
    Desired,
    EngineView,
    Key,
    LagWindow,
    SyncSpec,
    VerifyResult,
    build_sync_status,
    current_sync,
    desired_of,
    histogram_buckets,
    key_of,
    running_message,
    state_file_name,
)
from orchestrator_operator.sync.engine import SyncConfig, SyncEngine
from orchestrator_operator.sync.metrics import SyncMetrics
from orchestrator_operator.sync.verify import verify_clients
from orchestrator_operator.zk.connection import SyncError, close, connect

log = logging.getLogger("orchestrator.zk_sync.controller")

API = f"{API_GROUP}/{API_VERSION}"
KIND = "ZkMigration"

StatusDoc = dict[str, Any]
Reporter = Callable[[Key, StatusDoc], None]


@dataclass
class ControllerOptions:
    namespace: str | None = None
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


# ============================================================================ Kubernetes
class MigrationApi(Protocol):
    def list_migrations(self, namespace: str | None) -> list[dict[str, Any]]: ...

    def patch_sync(self, namespace: str, name: str, sync: StatusDoc) -> None: ...


class ZkMigrationApi(KubeApi):
    """The operator's API client (kube_api.py) with the two calls the controller makes."""

    def list_migrations(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.list(API, KIND, namespace)

    def patch_sync(self, namespace: str, name: str, sync: StatusDoc) -> None:
        """Merge patch of ``status.sync`` only, on the status subresource."""
        self.merge_patch(API, KIND, namespace, name, {"status": {"sync": sync}}, "status")


def reporter_for(api: MigrationApi) -> Reporter:
    def report(key: Key, sync: StatusDoc) -> None:
        namespace, name = key
        try:
            api.patch_sync(namespace, name, sync)
        except ApiError as exc:
            if exc.status == 404:
                log.debug("%s/%s is gone; status not written", namespace, name)
            else:
                log.warning("cannot write status.sync of %s/%s: %s", namespace, name, exc)
        except Exception as exc:  # network trouble: the next report retries
            log.warning("cannot write status.sync of %s/%s: %s", namespace, name, exc)

    return report


# ============================================================================ state files
def prepare_state_file(state_dir: Path | None, key: Key, spec: SyncSpec) -> Path | None:
    """``<dir>/<namespace>_<name>.json``, kept only while it describes the same pair of
    ensembles: a merge base recorded against another ensemble would read as deletions."""
    if state_dir is None:
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    state = state_dir / state_file_name(key)
    pair_file = state.with_suffix(".pair")
    pair = f"{spec.source} {spec.target}\n"
    try:
        recorded: str | None = pair_file.read_text("utf-8")
    except FileNotFoundError:
        recorded = None
    if recorded != pair:
        if state.exists():
            log.warning("%s describes other ensembles (%s); starting without it", state, recorded)
            state.unlink()
        pair_file.write_text(pair, "utf-8")
    return state


def forget_state(state_dir: Path | None, key: Key) -> None:
    if state_dir is None:
        return
    state = state_dir / state_file_name(key)
    for path in (state, state.with_suffix(".pair"), state.with_name(state.name + ".tmp")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ============================================================================ verify
def _error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SyncError) else f"{type(exc).__name__}: {exc}".rstrip(": ")


class Verifier:
    """Compares both sides every ``interval`` seconds through its own two sessions."""

    def __init__(self, spec: SyncSpec, options: ControllerOptions, label: str) -> None:
        self.spec = spec
        self.options = options
        self.result: VerifyResult | None = None
        self._clients: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"verify-{label}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _client(self, what: str, hosts: str) -> Any:
        client = self._clients.get(what)
        if client is None:
            client = connect(
                hosts,
                what,
                timeout=self.options.connect_timeout,
                session_timeout=self.options.session_timeout,
            )
            self._clients[what] = client
        return client

    def _close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                close(client)
        self._clients.clear()

    def verify_once(self) -> VerifyResult:
        try:
            a = self._client("source", self.spec.source)
            b = self._client("target", self.spec.target)
            report = verify_clients(a, b, list(self.spec.paths))
        except Exception as exc:
            self._close()  # reconnect next time
            return VerifyResult(at=time.time(), error=_error_text(exc))
        return VerifyResult(
            at=time.time(),
            digests_equal=all(r.equal for r in report.roots),
            differences=len(report.differences),
            znodes_source=sum(r.source_znodes for r in report.roots),
            znodes_target=sum(r.target_znodes for r in report.roots),
            unreadable=sum(len(u) for u in report.unreadable.values()),
        )

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.result = self.verify_once()
                if self._stop.wait(self.options.verify_interval):
                    break
        finally:
            self._close()


# ============================================================================ one migration
def engine_view(engine: SyncEngine) -> EngineView:
    healthy, detail = engine.health()
    return EngineView(
        bootstrap_znodes=engine.bootstrap.znodes,
        bootstrap_seconds=engine.bootstrap.seconds,
        conflicts=len(engine.conflicts),
        last_reconcile=engine.last_full_reconcile_wall,
        healthy=healthy,
        health=detail,
    )


class MigrationRunner:
    """A thread running the engine of one ZkMigration and reporting into its status."""

    def __init__(
        self,
        key: Key,
        spec: SyncSpec,
        options: ControllerOptions,
        report: Reporter,
        collector: PerMigrationCollector | None = None,
    ) -> None:
        self.key = key
        self.spec = spec
        self.options = options
        self.state = "Starting"
        self.metrics = SyncMetrics()
        self._report = report
        self._collector = collector
        self._stop = threading.Event()
        self._stop_reason = ""
        self._final_report = True
        self._lag = LagWindow(options.lag_window)
        self._last_view: EngineView | None = None
        self._last_verify: VerifyResult | None = None
        namespace, name = key
        self._thread = threading.Thread(
            target=self._run, name=f"zk-sync-{namespace}/{name}", daemon=True
        )

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._collector is not None:
            self._collector.add(self.key, self.metrics.registry)
        self._thread.start()

    def stop(self, reason: str, report: bool = True) -> None:
        """Ask the thread to stop the engine (returns at once; see ``alive``)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._final_report = report
            self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # ------------------------------------------------------------------ thread
    def _publish(
        self,
        state: str,
        message: str,
        *,
        engine: EngineView | None = None,
        bootstrapped: bool = False,
        verify: VerifyResult | None = None,
        lag: float | None = None,
    ) -> None:
        doc = build_sync_status(
            state,
            message,
            now=time.time(),
            engine=engine,
            bootstrapped=bootstrapped,
            verify=verify,
            lag_p99=lag,
        )
        self._report(self.key, doc)

    def _run(self) -> None:
        namespace, name = self.key
        try:
            self._loop()
        except Exception as exc:  # never die silently: say it in the status
            log.exception("%s/%s: sync runner failed", namespace, name)
            self._publish("Failed", f"sync controller error: {_error_text(exc)}")
            self._final_report = False
        finally:
            if self._collector is not None:
                self._collector.remove(self.key, self.metrics.registry)
            self.state = "Stopped"
            if self._final_report:
                self._publish(
                    "Stopped",
                    f"stopped: {self._stop_reason}" if self._stop_reason else "stopped",
                    engine=self._last_view,
                    verify=self._last_verify,
                )
            log.info("%s/%s: sync stopped (%s)", namespace, name, self._stop_reason)

    def _loop(self) -> None:
        namespace, name = self.key
        spec = self.spec
        delay = self.options.backoff_initial
        while not self._stop.is_set():
            if self.state != "Failed":  # a retry stays Failed until it succeeds: no flapping
                self.state = "Starting"
                self._publish(
                    "Starting",
                    f"starting: connecting and bootstrapping {spec.describe()}",
                    engine=self._last_view,
                    verify=self._last_verify,
                )
            engine: SyncEngine | None = None
            try:
                config = SyncConfig(
                    source=spec.source,
                    target=spec.target,
                    paths=list(spec.paths),
                    bidirectional=True,
                    strategy=spec.engine_strategy,
                    reconcile_interval=self.options.reconcile_interval,
                    session_timeout=self.options.session_timeout,
                    connect_timeout=self.options.connect_timeout,
                    state_file=prepare_state_file(self.options.state_dir, self.key, spec),
                )
                engine = SyncEngine(config, self.metrics)
                log.info("%s/%s: starting sync of %s", namespace, name, spec.describe())
                engine.start()
            except Exception as exc:
                if engine is not None and engine.clients:
                    with contextlib.suppress(Exception):
                        engine.stop()  # closes the sessions a failed bootstrap left open
                self.state = "Failed"
                message = _error_text(exc)
                log.warning("%s/%s: %s; retrying in %gs", namespace, name, message, delay)
                self._publish("Failed", f"{message}; retrying in {delay:g}s")
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.options.backoff_max)
                continue
            try:
                self._follow(engine)
            finally:
                engine.stop()
            return

    def _follow(self, engine: SyncEngine) -> None:
        namespace, name = self.key
        self.state = "Running"
        log.info(
            "%s/%s: running (bootstrap %d znodes in %.2fs)",
            namespace, name, engine.bootstrap.znodes, engine.bootstrap.seconds,
        )  # fmt: skip
        verifier = Verifier(self.spec, self.options, f"{namespace}/{name}")
        verifier.start()
        try:
            while True:
                view = engine_view(engine)
                self._lag.add(time.monotonic(), histogram_buckets(self.metrics.lag.collect()))
                verify = verifier.result
                self._last_view, self._last_verify = view, verify
                self._publish(
                    "Running",
                    running_message(self.spec, view, verify),
                    engine=view,
                    bootstrapped=True,
                    verify=verify,
                    lag=self._lag.p99(),
                )
                if self._stop.wait(self.options.report_interval):
                    return
        finally:
            verifier.stop()


# ============================================================================ all migrations
class Runner(Protocol):
    spec: SyncSpec
    state: str

    def start(self) -> None: ...

    def stop(self, reason: str, report: bool = True) -> None: ...

    @property
    def alive(self) -> bool: ...

    def join(self, timeout: float | None = None) -> None: ...


RunnerFactory = Callable[[Key, SyncSpec], Runner]


class Controller:
    """Level-triggered: :meth:`reconcile` takes the current ZkMigration list and makes the
    set of runners match it. Called from one thread at a time."""

    def __init__(
        self,
        report: Reporter,
        options: ControllerOptions,
        runner_factory: RunnerFactory,
        gauge: Gauge | None = None,
    ) -> None:
        self.report = report
        self.options = options
        self.factory = runner_factory
        self.gauge = gauge
        self.runners: dict[Key, Runner] = {}
        self.stopping: dict[Key, Runner] = {}

    def reconcile(self, items: Sequence[Mapping[str, Any]]) -> None:
        seen = {key_of(obj): obj for obj in items}
        for key, old in list(self.stopping.items()):
            if not old.alive:
                del self.stopping[key]
                if key not in seen:
                    forget_state(self.options.state_dir, key)
        for key, obj in seen.items():
            desired = desired_of(obj)
            runner = self.runners.get(key)
            if runner is not None and runner.spec != desired.spec:
                why = desired.why if desired.spec is None else "status.syncRequest changed"
                self._stop(key, why, report=True)
                runner = None
            if desired.spec is not None and runner is None:
                if key in self.stopping:
                    continue  # the previous engine is still letting go of its sessions
                runner = self.factory(key, desired.spec)
                self.runners[key] = runner
                runner.start()
            elif desired.spec is None and runner is None and key not in self.stopping:
                self._report_idle(key, obj, desired)
        for key in [k for k in self.runners if k not in seen]:
            self._stop(key, "the ZkMigration was deleted", report=False)
        self._update_gauge()

    def _stop(self, key: Key, reason: str, *, report: bool) -> None:
        runner = self.runners.pop(key)
        log.info("%s/%s: stopping sync: %s", key[0], key[1], reason)
        runner.stop(reason, report=report)
        self.stopping[key] = runner

    def _report_idle(self, key: Key, obj: Mapping[str, Any], desired: Desired) -> None:
        """No engine: make status.sync say so once (Failed for a request that cannot run)."""
        current = current_sync(obj)
        if desired.invalid:
            if current is None or (current.get("state"), current.get("message")) != (
                "Failed",
                desired.why,
            ):
                self.report(key, build_sync_status("Failed", desired.why, now=time.time()))
        elif current is not None and current.get("state") != "Stopped":
            self.report(
                key, build_sync_status("Stopped", f"stopped: {desired.why}", now=time.time())
            )

    def _update_gauge(self) -> None:
        if self.gauge is None:
            return
        counts = {"Starting": 0, "Running": 0, "Failed": 0, "Stopping": len(self.stopping)}
        for runner in self.runners.values():
            counts[runner.state] = counts.get(runner.state, 0) + 1
        for state, count in counts.items():
            self.gauge.labels(state).set(count)

    def shutdown(
        self, reason: str = "the sync controller is shutting down", timeout: float = 20.0
    ) -> None:
        for key in list(self.runners):
            self._stop(key, reason, report=True)
        deadline = time.monotonic() + timeout
        for runner in self.stopping.values():
            runner.join(max(0.0, deadline - time.monotonic()))
        self._update_gauge()


# ============================================================================ process
async def _serve(options: ControllerOptions, api: ZkMigrationApi) -> int:
    collector = PerMigrationCollector()
    REGISTRY.register(collector)
    report = reporter_for(api)

    def factory(key: Key, spec: SyncSpec) -> Runner:
        return MigrationRunner(key, spec, options, report, collector)

    controller = Controller(report, options, factory, controller_gauge())
    readiness = Readiness()
    http = await start_server(readiness, options.health_host, options.health_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    where = f"namespace {options.namespace}" if options.namespace else "all namespaces"
    log.info(
        "sync controller watching ZkMigrations in %s (poll every %gs); health on %s:%d",
        where, options.interval, options.health_host, options.health_port,
    )  # fmt: skip
    last_ok: float | None = None
    last_error = ""
    stale_after = max(30.0, 10 * options.interval)
    try:
        while not stop.is_set():
            try:
                items = await asyncio.to_thread(api.list_migrations, options.namespace)
            except Exception as exc:
                if str(exc) != last_error:
                    log.warning("cannot list ZkMigrations (engines keep running): %s", exc)
                    last_error = str(exc)
            else:
                if last_error:
                    log.info("listing ZkMigrations works again")
                    last_error = ""
                last_ok = time.monotonic()
                await asyncio.to_thread(controller.reconcile, items)
            readiness.set(last_ok is not None and time.monotonic() - last_ok < stale_after)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.interval)
    finally:
        log.info("stopping every engine")
        await asyncio.to_thread(controller.shutdown)
        await http.cleanup()
        REGISTRY.unregister(collector)
    return 0


def run_controller(options: ControllerOptions) -> int:
    try:
        api = ZkMigrationApi()
    except Exception as exc:  # no kubeconfig and not in a pod
        log.error("no Kubernetes API credentials (kubeconfig or in-cluster): %s", exc)
        return 2
    return asyncio.run(_serve(options, api))
