"""A MesosCluster with spec.zookeeper.tls, read by the operator over TLS (issue 17, point 7).

The operator (a real process, with --zookeeper-client-tls-dir) against its own testenv
control plane; KWOK marks the ensemble's pod ready, and the member's name
(`<cluster>-zookeeper-0.<cluster>-zookeeper-headless.<ns>.svc.cluster.local`) resolves,
through testenv's cluster DNS file, to a loopback address where a real ZooKeeper 3.8
serves the TLS client port 2281 with `tls_lines`' settings (ssl.clientAuth=need) and a
certificate naming that member. The ZookeeperReady condition says the ensemble serves and
its server answers `srvr` (over TLS), so the operator connected on 2281 with its client
certificate and checked the server's name."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import ZooKeeperTls
from orchestrator_operator.operator.builders.zookeeper import TLS_DIR, member_name, tls_lines
from testenv.cluster_dns import HOSTS_ENV
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.tls_secret import TlsCa, tls_secret, write_secret_volume
from testenv.zookeeper import ZkEnsemble
from tests.e2e.support import apply, eventually, get_json

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
NAME, NAMESPACE = "tls-ok", "default"


@pytest.fixture
def own_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestEnv]:
    env = KubeTestEnv(nodes=1, base_dir=tmp_path_factory.mktemp("testenv-zk-tls"))
    with env:
        env.install_crds(REPO / "crds")
        yield env


def _condition(env: KubeTestEnv, type_: str) -> dict[str, Any]:
    status = (get_json(env, "mesoscluster", NAME, "-n", NAMESPACE) or {}).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


EXTERNAL_MEMBER = "zk-0.zk-b-headless.zookeeper.svc.cluster.local"
MANAGED = {"replicas": 1, "tls": {"secretName": "zk-tls"}}
# where phase 6 leaves a cluster moved to a managed B with tls: external, with tlsServers
EXTERNAL = {
    "external": {
        "connectString": "zk-b-client.zookeeper.svc:2181",
        "tlsServers": f"{EXTERNAL_MEMBER}:2281",
    }
}


@pytest.mark.parametrize("zookeeper", [MANAGED, EXTERNAL], ids=["managed", "external"])
def test_the_operator_reads_a_tls_ensemble_on_2281_with_its_certificate(
    own_env: KubeTestEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    zookeeper: dict[str, Any],
) -> None:
    managed = "external" not in zookeeper
    member = (
        member_name(Owner(name=NAME, namespace=NAMESPACE, uid=""), 0)
        if managed
        else EXTERNAL_MEMBER
    )
    plain = (
        f"{NAME}-zookeeper-client.{NAMESPACE}.svc:2181"
        if managed
        else zookeeper["external"]["connectString"]
    )
    address = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.1"  # all 127/8 is lo
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{address} {member}\n")

    ca = TlsCa("zookeeper-ca")
    server = ca.issue("zookeeper", hosts=(member,))
    secret = tmp_path / "zk-tls"
    write_secret_volume(
        secret, {**tls_secret(ca, server), "tls-combined.pem": server.key_pem + server.cert_pem}
    )
    client_dir = tmp_path / "operator-client"
    write_secret_volume(client_dir, tls_secret(ca, ca.issue("orchestrator", client=True)))
    settings = dict(
        line.replace(f"{TLS_DIR}/", f"{secret}/").split("=", 1)
        for line in tls_lines(ZooKeeperTls(secret_name="zk-tls", client_auth="need"))
    )
    settings["secureClientPortAddress"] = address  # 2281 as in the cluster, on its own address

    monkeypatch.setenv(HOSTS_ENV, str(hosts))
    monkeypatch.setenv("PYTHONPATH", str(REPO / "testenv" / "site"))
    with ZkEnsemble(1, extra_config=settings):
        operator = OperatorProcess(
            own_env, tmp_path / "operator.log", "--zookeeper-client-tls-dir", str(client_dir)
        )
        try:
            operator.wait_ready()
            apply(own_env, {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "MesosCluster",
                "metadata": {"name": NAME, "namespace": NAMESPACE},
                "spec": {
                    "zookeeper": zookeeper,
                    "masters": {"replicas": 1}, "marathon": {"replicas": 0},
                },
            })  # fmt: skip

            def serving() -> dict[str, Any] | None:
                condition = _condition(own_env, "ZookeeperReady")
                return condition if condition.get("status") == "True" else None

            try:
                condition = eventually(serving, 120, "ZookeeperReady True")
            except AssertionError:
                raise AssertionError(
                    f"{_condition(own_env, 'ZookeeperReady')}\n{operator.log_tail()}"
                ) from None
            # The status names the ensemble as Mesos reaches it (2181), and the server the
            # operator asked `srvr`, over TLS on 2281. It could only have read it there: the
            # client Service's name does not resolve here, and the member's address has
            # nothing but the TLS port.
            assert condition["message"] == (
                f"ZooKeeper at {plain} serves; 1/1 servers answer srvr, leader {member}:2281"
            ), condition
        finally:
            operator.stop()
