"""spec.zookeeper.tls's zoo.cfg settings (issue 17, point 7) in a real ZooKeeper 3.8 server
(Debian's, as in every integration test) and kazoo's TLS client, the one the operator and the
sync engine use: the TLS client port answers a client with a certificate from the CA,
refuses one without (`ssl.clientAuth=need`), and 2181 keeps serving Mesos' and Marathon's
plain-text clients. A one-server ensemble (its ports are per host here): the quorum TLS
settings load, but no peer connects over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from orchestrator_operator.models.mesoscluster import ZooKeeperTls
from orchestrator_operator.operator.builders.zookeeper import TLS_DIR, tls_lines
from testenv.processes import free_port
from testenv.tls_secret import TlsCa, tls_kazoo, tls_secret, write_secret_volume
from testenv.zookeeper import ZkEnsemble


def test_kazoo_speaks_tls_to_the_secure_client_port(tmp_path: Path) -> None:
    ca = TlsCa("zookeeper-ca")
    server = ca.issue("zookeeper", hosts=("127.0.0.1", "localhost"))
    secret = tmp_path / "zk-tls"
    write_secret_volume(
        secret, {**tls_secret(ca, server), "tls-combined.pem": server.key_pem + server.cert_pem}
    )
    client_dir = tmp_path / "client"
    write_secret_volume(client_dir, tls_secret(ca, ca.issue("operator", client=True)))
    port = free_port()
    settings = dict(
        line.replace(f"{TLS_DIR}/", f"{secret}/").split("=", 1)
        for line in tls_lines(ZooKeeperTls(secret_name="zk-tls"))
    )
    settings["secureClientPort"] = str(port)

    with ZkEnsemble(1, extra_config=settings) as zk:
        secure = tls_kazoo(f"127.0.0.1:{port}", secret / "ca.crt", client_dir)
        secure.start(timeout=60)
        try:
            secure.create("/over-tls", b"x")
        finally:
            secure.stop()
            secure.close()

        plain = KazooClient(hosts=zk.connect_string, timeout=10)  # Mesos and Marathon: 2181
        plain.start(timeout=60)
        try:
            assert plain.get("/over-tls")[0] == b"x"
        finally:
            plain.stop()
            plain.close()

        no_cert = tls_kazoo(f"127.0.0.1:{port}", secret / "ca.crt", timeout=5)
        with pytest.raises(KazooTimeoutError):
            no_cert.start(timeout=10)
        no_cert.stop()
        no_cert.close()
