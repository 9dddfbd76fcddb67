"""All migrations: the :class:`Controller` makes the set of runners match the current
ZkMigration list (level-triggered): it starts a runner for every active
``status.syncRequest``, stops the runner of a request that went inactive or changed, or whose
ZkMigration went (a changed request gets a new runner once the old one has let go), reports
``status.sync`` of a migration that has no engine, and counts the runners by state."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Gauge

from orchestrator_operator.models.vocabulary import SyncState
from orchestrator_operator.sync.controller.kube import Reporter
from orchestrator_operator.sync.controller.state_files import forget_state
from orchestrator_operator.sync.controller.status import (
    Desired,
    Key,
    SyncSpec,
    build_sync_status,
    current_sync,
    desired_of,
    key_of,
)

if TYPE_CHECKING:
    from orchestrator_operator.sync.controller.options import ControllerOptions

log = logging.getLogger("orchestrator.zk_sync.controller")
STOPPING = "Stopping"  # a gauge label only, never in status.sync (see SyncState)


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
            desired = desired_of(obj, self.options.zookeeper_endpoints)
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
                SyncState.FAILED,
                desired.why,
            ):
                self.report(key, build_sync_status(SyncState.FAILED, desired.why, now=time.time()))
        elif current is not None and current.get("state") != SyncState.STOPPED:
            self.report(
                key,
                build_sync_status(SyncState.STOPPED, f"stopped: {desired.why}", now=time.time()),
            )

    def _update_gauge(self) -> None:
        if self.gauge is None:
            return
        # Runners by the state they report, and those asked to stop that have not let go yet.
        counts: dict[str, int] = {
            SyncState.STARTING: 0,
            SyncState.RUNNING: 0,
            SyncState.RETRYING: 0,
            SyncState.FAILED: 0,
            STOPPING: len(self.stopping),
        }
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
