"""``orchestrator zk-sync controller``: one sync engine per active ZkMigration.

The process polls the ZkMigration list (every ``--interval`` seconds, all namespaces or
``--namespace``) and reads each one's ``status.syncRequest`` (written by the operator's
migration handlers). For every active request it runs a :class:`MigrationRunner`: a thread
that starts a bidirectional :class:`SyncEngine` (connect and bootstrap block, so a slow or
unreachable ensemble holds up only its own thread), retries with backoff when the start
fails, and patches ``status.sync`` of its ZkMigration every ``--report-interval`` seconds. A
second thread per runner compares both sides (sync/verify.py) every ``--verify-interval``
seconds through its own sessions, so verification never queues behind the engine's
requests. When the request goes inactive or changes, or the ZkMigration goes, the runner
stops its engine (and a changed request gets a new runner once the old one has let go).

The controller writes only ``status.sync`` (merge patch on the status subresource). This
module is the process: the poll loop and the health server (its options: options.py). The rest lives
beside it: kube.py (the Kubernetes adapter), controller.py (the reconcile of all
migrations), runner.py (one migration's engine), verifier.py, state_files.py, metrics.py and
status.py (the pure parts: request parsing, the status document, lag p99).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from prometheus_client import REGISTRY

from orchestrator_operator.common.health_server import Readiness, start_server
from orchestrator_operator.common.zk_credentials import Credentials, read_zk_credentials
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.sync.controller.controller import Controller, Runner
from orchestrator_operator.sync.controller.kube import ZkMigrationApi, reporter_for
from orchestrator_operator.sync.controller.metrics import PerMigrationCollector, controller_gauge
from orchestrator_operator.sync.controller.options import ControllerOptions
from orchestrator_operator.sync.controller.runner import MigrationRunner
from orchestrator_operator.sync.controller.status import Key, SyncSpec

log = logging.getLogger("orchestrator.zk_sync.controller")


async def _serve(options: ControllerOptions, api: ZkMigrationApi) -> int:
    collector = PerMigrationCollector()
    REGISTRY.register(collector)
    report = reporter_for(api)

    def credentials(namespace: str, ref: SecretKeyRef) -> Credentials:
        # the same rule as the operator's (a labelled Secret in the migration's namespace)
        return read_zk_credentials(api, namespace, ref, cached=False)

    def factory(key: Key, spec: SyncSpec) -> Runner:
        return MigrationRunner(key, spec, options, report, collector, credentials)

    controller = Controller(report, options, factory, controller_gauge())
    readiness = Readiness()
    http = await start_server(readiness, options.health_host, options.health_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    where = ", ".join(options.namespaces) or "all namespaces"
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
                items = await asyncio.to_thread(_list_migrations, api, options.namespaces)
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


def _list_migrations(api: ZkMigrationApi, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every ZkMigration the controller serves: all namespaces, or each one given."""
    if not namespaces:
        return api.list_migrations(None)
    return [item for namespace in namespaces for item in api.list_migrations(namespace)]


def run_controller(options: ControllerOptions) -> int:
    try:
        api = ZkMigrationApi()
    except Exception as exc:  # no kubeconfig and not in a pod
        log.error("no Kubernetes API credentials (kubeconfig or in-cluster): %s", exc)
        return 2
    return asyncio.run(_serve(options, api))
