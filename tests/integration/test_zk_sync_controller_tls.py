"""The sync controller (a real process, testenv's API server) with a syncRequest whose
source is on TLS (`sourceTls`, as the operator writes it for a managed ensemble with
spec.zookeeper.tls): with its own client certificate (--zookeeper-client-tls-dir) it syncs
A (ZooKeeper 3.8, TLS port, ssl.clientAuth=need) to B (plain) and B back to A; without one
it stays Retrying and names the setting. The operator does not run here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.common.tls import zk_client_tls
from orchestrator_operator.zk.connection import close, connect
from testenv.kube import KubeTestEnv
from testenv.tls_secret import TlsCa
from tests.fixtures.sync_controller import SyncControllerFactory
from tests.fixtures.zk_sync import zk_client
from tests.fixtures.zookeeper import ZkEnsembleFactory
from tests.integration.test_zk_client_tls import _client_dirs, _start
from tests.integration.test_zk_sync_controller import (
    create_migration,
    namespace,  # noqa: F401 (the fixture)
    request_sync,
    sync_status,
    wait_for,
)

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(240)]


def test_the_controller_syncs_from_a_tls_source_with_its_own_certificate(
    kube_env: KubeTestEnv,
    namespace: str,  # noqa: F811
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
    tmp_path: Path,
) -> None:
    ca = TlsCa("zookeeper-ca")
    zk_a, port = _start(tmp_path, "a", ca)
    with_cert, _ = _client_dirs(tmp_path, ca, "sync-controller")
    b = zk_ensemble_factory(size=1)
    source = f"localhost:{port}"
    with zk_a:
        seed = connect(
            source, "source", timeout=20, session_timeout=10, tls=zk_client_tls(with_cert)
        )
        try:
            seed.create("/mesos/seed", b"over TLS", makepath=True)
            without = sync_controller_factory("--namespace", namespace, "--connect-timeout", "3",
                                              "--interval", "0.5")  # fmt: skip
            create_migration(kube_env, namespace, "m1", b.connect_string)
            request = {
                "active": True, "source": source, "target": b.connect_string,
                "paths": ["/mesos"], "strategy": "SourceWins", "sourceTls": True,
            }  # fmt: skip
            request_sync(kube_env, namespace, "m1", **request)

            def status() -> dict[str, Any]:
                return sync_status(kube_env, namespace, "m1")

            def explain(log: Callable[[], str]) -> Callable[[], str]:
                return lambda: f"status.sync {status()}\ncontroller log:\n{log()}"

            retrying = wait_for(
                lambda: (s := status()).get("state") == "Retrying" and s, 60,
                explain(without.log_tail),
            )  # fmt: skip
            assert "the source ensemble is reached over TLS" in retrying["message"]
            assert "--zookeeper-client-tls-dir" in retrying["message"]
            without.stop()

            controller = sync_controller_factory(
                "--namespace", namespace, "--connect-timeout", "5", "--interval", "0.5",
                "--zookeeper-client-tls-dir", str(with_cert),
            )  # fmt: skip
            wait_for(
                lambda: (s := status()).get("state") == "Running" and s.get("digestsEqual") and s,
                90, explain(controller.log_tail),
            )  # fmt: skip
            with zk_client(b.connect_string) as cb:
                assert cb.get("/mesos/seed")[0] == b"over TLS"
                cb.create("/mesos/from-b", b"b")  # and back to A, over TLS
            wait_for(lambda: seed.exists("/mesos/from-b"), 30, explain(controller.log_tail))
        finally:
            close(seed)
