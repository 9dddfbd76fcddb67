"""One migration: a :class:`MigrationRunner` thread starts the bidirectional
:class:`SyncEngine` of one ZkMigration (connect and bootstrap block, so a slow or unreachable
ensemble holds up only its own thread), retries with backoff when the start fails (state
Retrying; but not when source and target are the same ensemble: that stays Failed), runs a
:class:`Verifier` beside it and reports into the migration's ``status.sync`` every
``--report-interval`` seconds until it is asked to stop."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator_operator.common.zk_credentials import Credentials, CredentialsRefused
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.vocabulary import SyncState
from orchestrator_operator.sync.controller.kube import Reporter
from orchestrator_operator.sync.controller.metrics import PerMigrationCollector
from orchestrator_operator.sync.controller.state_files import prepare_state_file
from orchestrator_operator.sync.controller.status import (
    EngineView,
    Key,
    LagWindow,
    SyncSpec,
    VerifyResult,
    build_sync_status,
    histogram_buckets,
    running_message,
)
from orchestrator_operator.sync.controller.verifier import Verifier, _error_text
from orchestrator_operator.sync.engine import SyncConfig, SyncEngine
from orchestrator_operator.sync.metrics import SyncMetrics
from orchestrator_operator.zk.identity import SameEnsembleError
from orchestrator_operator.zk.model import Side

if TYPE_CHECKING:
    from orchestrator_operator.sync.controller.options import ControllerOptions

log = logging.getLogger("orchestrator.zk_sync.controller")

# (namespace, Secret key reference) -> digest credentials, or CredentialsRefused
CredentialReader = Callable[[str, SecretKeyRef], Credentials]


def engine_view(engine: SyncEngine) -> EngineView:
    healthy, detail = engine.health()
    return EngineView(
        bootstrap_znodes=engine.bootstrap.znodes,
        bootstrap_seconds=engine.bootstrap.seconds,
        conflicts=len(engine.conflicts),
        last_reconcile=engine.last_full_reconcile_wall,
        acl_sweep_seconds=engine.acl_sweep.get(Side.A),
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
        credentials: CredentialReader | None = None,
    ) -> None:
        self.key = key
        self.spec = spec
        self.options = options
        self._credentials = credentials
        self._auth: dict[str, Credentials] = {}  # "source"/"target", read at each start
        self.state: str = SyncState.STARTING  # a SyncState; str as in the Runner protocol
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
        state: SyncState,
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
            self._publish(SyncState.FAILED, f"sync controller error: {_error_text(exc)}")
            self._final_report = False
        finally:
            if self._collector is not None:
                self._collector.remove(self.key, self.metrics.registry)
            self.state = SyncState.STOPPED
            if self._final_report:
                self._publish(
                    SyncState.STOPPED,
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
            # a retry stays Retrying (with the last error) until it succeeds: no flapping
            if self.state != SyncState.RETRYING:
                self.state = SyncState.STARTING
                self._publish(
                    SyncState.STARTING,
                    f"starting: connecting and bootstrapping {spec.describe()}",
                    engine=self._last_view,
                    verify=self._last_verify,
                )
            engine: SyncEngine | None = None
            try:
                self._auth = self._read_credentials()
                config = SyncConfig(
                    source=spec.source,
                    target=spec.target,
                    paths=list(spec.paths),
                    bidirectional=True,
                    strategy=spec.engine_strategy,
                    reconcile_interval=self.options.reconcile_interval,
                    session_timeout=self.options.session_timeout,
                    connect_timeout=self.options.connect_timeout,
                    acl_sweep_rate=self.options.acl_sweep_rate,
                    state_file=prepare_state_file(self.options.state_dir, self.key, spec),
                    source_auth=list(self._auth["source"]),
                    target_auth=list(self._auth["target"]),
                    source_tls=self.options.tls_for("source", spec.source_tls),
                    target_tls=self.options.tls_for("target", spec.target_tls),
                )
                engine = SyncEngine(config, self.metrics)
                log.info("%s/%s: starting sync of %s", namespace, name, spec.describe())
                # refuses an ensemble synced onto itself before any session; checked on
                # every attempt (names and memberships can change)
                engine.start()
            except SameEnsembleError as exc:
                # permanent for this request: no retry; a changed request gets a new runner
                self.state = SyncState.FAILED
                log.error("%s/%s: %s", namespace, name, exc)
                self._publish(SyncState.FAILED, str(exc))
                self._stop.wait()
                return
            except Exception as exc:
                if engine is not None and engine.clients:
                    with contextlib.suppress(Exception):
                        engine.stop()  # closes the sessions a failed bootstrap left open
                # Not Failed: the start is retried (a fixed Secret, an ensemble back), and
                # Failed is for what no retry can mend.
                self.state = SyncState.RETRYING
                message = _error_text(exc)
                log.warning("%s/%s: %s; retrying in %gs", namespace, name, message, delay)
                self._publish(SyncState.RETRYING, f"{message}; retrying in {delay:g}s")
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.options.backoff_max)
                continue
            try:
                self._follow(engine)
            finally:
                engine.stop()
            return

    def _read_credentials(self) -> dict[str, Credentials]:
        """Each side's digest credentials from the Secret its syncRequest names (read
        again at every start, so a fixed Secret is picked up by the next retry);
        CredentialsRefused says which rule a Secret breaks."""
        namespace, _ = self.key
        auth: dict[str, Credentials] = {}
        for side, secret in (("source", self.spec.source_secret),
                             ("target", self.spec.target_secret)):  # fmt: skip
            if secret is None:
                auth[side] = ()
            elif self._credentials is None:
                raise CredentialsRefused(f"no Kubernetes API to read Secret {secret[0]}")
            else:
                ref = SecretKeyRef(name=secret[0], key=secret[1])
                try:
                    auth[side] = self._credentials(namespace, ref)
                except CredentialsRefused as exc:
                    raise CredentialsRefused(f"ZooKeeper {side} credentials: {exc}") from None
        return auth

    def _follow(self, engine: SyncEngine) -> None:
        namespace, name = self.key
        self.state = SyncState.RUNNING
        log.info(
            "%s/%s: running (bootstrap %d znodes in %.2fs)",
            namespace, name, engine.bootstrap.znodes, engine.bootstrap.seconds,
        )  # fmt: skip
        verifier = Verifier(self.spec, self.options, f"{namespace}/{name}", self._auth)
        verifier.start()
        try:
            while True:
                view = engine_view(engine)
                self._lag.add(time.monotonic(), histogram_buckets(self.metrics.lag.collect()))
                verify = verifier.result
                self._last_view, self._last_verify = view, verify
                self._publish(
                    SyncState.RUNNING,
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
