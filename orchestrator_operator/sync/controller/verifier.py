"""Verification of one migration: a thread that compares both ensembles (sync/verify.py)
every ``--verify-interval`` seconds through its own two sessions, so verification never
queues behind the engine's requests, and keeps the latest result for the runner to report."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator_operator.common.zk_credentials import CredentialsRefused
from orchestrator_operator.sync.controller.status import SyncSpec, VerifyResult
from orchestrator_operator.sync.verify import verify_clients
from orchestrator_operator.zk.connection import SyncError, close, connect

if TYPE_CHECKING:
    from orchestrator_operator.sync.controller.options import ControllerOptions


def _error_text(exc: BaseException) -> str:
    """An error for status: ours as it is (written for the user), others with their type."""
    if isinstance(exc, SyncError | CredentialsRefused):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


class Verifier:
    """Compares both sides every ``interval`` seconds through its own two sessions."""

    def __init__(
        self,
        spec: SyncSpec,
        options: ControllerOptions,
        label: str,
        auth: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    ) -> None:
        self.spec = spec
        self.options = options
        self._auth = dict(auth or {})  # "source"/"target": digest credentials
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
                auth=list(self._auth.get(what, ())),
                tls=self.options.tls_for(
                    what, self.spec.source_tls if what == "source" else self.spec.target_tls
                ),
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
