"""The project's own ZooKeeper client code over TLS (issue 17, point 7): a real ZooKeeper 3.8
server with `spec.zookeeper.tls`'s settings (`tls_lines`, ssl.clientAuth=need) and its
secure client port, reached through zk/connection.py's `connect`, the operator's client
pool, the raw sessions (ACL reads, the multiRead probe), four-letter words, and the sync
engine copying a tree from an ensemble on TLS to another on TLS. The certificates are a
test CA's: the servers' name `localhost` (the host name checked), the clients' are the
operator's and the sync controller's. Refused: a client without a certificate, and a
client that does not trust the server's CA."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NewConfigNoQuorumError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import make_digest_acl

from orchestrator_operator.common.tls import ReloadingTls, TlsError, zk_client_tls
from orchestrator_operator.models.mesoscluster import ZooKeeperTls
from orchestrator_operator.operator.builders.zookeeper import TLS_DIR, tls_lines
from orchestrator_operator.operator.mesoscluster.zk_scale import kazoo_reconfigure
from orchestrator_operator.operator.mesoscluster.zk_scale_plan import Reconfig
from orchestrator_operator.sync.engine import SyncConfig, SyncEngine
from orchestrator_operator.sync.verify import verify
from orchestrator_operator.zk.acls import AclReader
from orchestrator_operator.zk.clients import ZkClientPool, ZkTlsNotConfigured, ZkUnreachable
from orchestrator_operator.zk.connection import SyncError, close, connect
from orchestrator_operator.zk.features import has_multi_read
from orchestrator_operator.zk.four_letter import server_mode
from orchestrator_operator.zk.wire.rawsession import RawSession
from testenv.processes import free_port
from testenv.tls_secret import TlsCa, tls_secret, write_secret_volume
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]


@dataclass
class TlsEnsemble:
    zk: ZkEnsemble
    tls_connect: str  # localhost:<secure port>: the name the server's certificate carries
    client: ReloadingTls  # the operator's: tls.crt, tls.key and ca.crt
    ca_only: ReloadingTls  # ca.crt only: no client certificate


def _start(tmp_path: Path, name: str, ca: TlsCa) -> tuple[ZkEnsemble, int]:
    server = ca.issue(name, hosts=("localhost",))
    secret = tmp_path / f"{name}-tls"
    write_secret_volume(
        secret, {**tls_secret(ca, server), "tls-combined.pem": server.key_pem + server.cert_pem}
    )
    port = free_port()
    settings = dict(
        line.replace(f"{TLS_DIR}/", f"{secret}/").split("=", 1)
        for line in tls_lines(ZooKeeperTls(secret_name=f"{name}-tls", client_auth="need"))
    )
    settings["secureClientPort"] = str(port)
    return ZkEnsemble(1, extra_config=settings), port


def _client_dirs(tmp_path: Path, ca: TlsCa, who: str) -> tuple[Path, Path]:
    with_cert = tmp_path / f"{who}-client"
    write_secret_volume(with_cert, tls_secret(ca, ca.issue(who, client=True)))
    ca_only = tmp_path / f"{who}-ca-only"
    write_secret_volume(ca_only, {"ca.crt": ca.pem})
    return with_cert, ca_only


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsEnsemble]:
    tmp = tmp_path_factory.mktemp("zk-tls")
    ca = TlsCa("zookeeper-ca")
    zk, port = _start(tmp, "zookeeper", ca)
    with_cert, ca_only = _client_dirs(tmp, ca, "operator")
    with zk:
        yield TlsEnsemble(zk, f"localhost:{port}", zk_client_tls(with_cert), zk_client_tls(ca_only))


def test_connect_reads_and_writes_over_tls(ensemble: TlsEnsemble) -> None:
    client = connect(
        ensemble.tls_connect, "target", timeout=20, session_timeout=10, tls=ensemble.client
    )
    try:
        assert client._connection._socket.version() in ("TLSv1.2", "TLSv1.3")
        client.create("/tls-connect/a", b"over 2281", makepath=True)
    finally:
        close(client)
    plain = KazooClient(hosts=ensemble.zk.connect_string, timeout=10)  # 2181 is unchanged
    plain.start(timeout=30)
    try:
        assert plain.get("/tls-connect/a")[0] == b"over 2281"
    finally:
        plain.stop()
        plain.close()


def test_without_a_client_certificate_the_server_refuses(ensemble: TlsEnsemble) -> None:
    started = time.monotonic()
    with pytest.raises(SyncError) as error:
        connect(ensemble.tls_connect, "target", timeout=5, session_timeout=10, tls=ensemble.ca_only)
    assert time.monotonic() - started < 15  # a clear error, no hang
    assert "no ZooKeeper session within 5s over TLS" in str(error.value)
    assert "the server refused this client's certificate" in str(error.value)


def test_a_server_from_another_ca_is_not_trusted(ensemble: TlsEnsemble, tmp_path: Path) -> None:
    other, _ = _client_dirs(tmp_path, TlsCa("another-ca"), "stranger")
    with pytest.raises(SyncError) as error:
        connect(
            ensemble.tls_connect, "target", timeout=5, session_timeout=10, tls=zk_client_tls(other)
        )
    assert "server certificate not accepted" in str(error.value)
    assert "localhost:" in str(error.value)


def test_the_host_name_is_checked(ensemble: TlsEnsemble) -> None:
    # the certificate names localhost, not 127.0.0.1
    by_address = ensemble.tls_connect.replace("localhost", "127.0.0.1")
    with pytest.raises(SyncError) as error:
        connect(by_address, "target", timeout=5, session_timeout=10, tls=ensemble.client)
    assert "server certificate not accepted" in str(error.value)


def test_client_tls_dir_needs_the_ca(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TlsError, match=r"ca\.crt is missing"):
        zk_client_tls(tmp_path / "empty")


def test_raw_sessions_and_four_letter_words_over_tls(ensemble: TlsEnsemble) -> None:
    """The raw sessions open their own sockets: over TLS too, with the client's context."""
    client = connect(
        ensemble.tls_connect, "target", timeout=20, session_timeout=10, tls=ensemble.client
    )
    try:
        client.add_auth("digest", "alice:secret")
        acl = make_digest_acl("alice", "secret", all=True)
        paths = [f"/tls-acls/n{i}" for i in range(300)]
        client.create("/tls-acls", b"")
        for path in paths:
            client.create(path, b"x", acl=[acl])
        with RawSession.open(client) as raw:
            assert raw._sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
            results = raw.get_acls(client, paths)
        digest = ((31, "digest", acl.id.id),)
        assert [r if isinstance(r, Exception) else r[0] for r in results] == [digest] * len(paths)
        assert has_multi_read(client)  # a raw session's probe, over TLS
        with AclReader(client, timeout=10) as reader:
            read = reader.read([(path, client.exists(path)) for path in paths])
            assert reader._raw and not reader._raw_failed  # the raw sessions, not kazoo
        assert [read[path] for path in paths] == [(digest, 0)] * len(paths)
        host, port = ensemble.tls_connect.split(":")
        assert server_mode(host, int(port), 5.0, ensemble.client.current()) == "leader"
    finally:
        close(client)


def test_the_client_pool_over_tls(ensemble: TlsEnsemble) -> None:
    pool = ZkClientPool(connect_timeout=10)
    try:
        with pytest.raises(ZkTlsNotConfigured) as missing:
            pool.get(ensemble.tls_connect, tls=True)
        assert "--zookeeper-client-tls-dir" in str(missing.value)
        assert "ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR" in str(missing.value)

        pool.configure_tls(ensemble.client)
        client = pool.get(ensemble.tls_connect, tls=True)
        client.ensure_path("/tls-pool")
        assert client.exists("/tls-pool") is not None
        assert pool.get(ensemble.tls_connect, tls=True) is client
        assert pool.open_sessions() == [ensemble.tls_connect]

        refused = ZkClientPool(connect_timeout=3)
        refused.configure_tls(ensemble.ca_only)
        try:
            with pytest.raises(ZkUnreachable, match="no session within 3s over TLS"):
                refused.get(ensemble.tls_connect, tls=True)
        finally:
            refused.close()
    finally:
        pool.close()


def test_the_sync_engine_copies_between_ensembles_on_tls(tmp_path: Path) -> None:
    """A -> B, both reached on their TLS ports (each with its own CA, the controller's
    certificate from each), including later changes; `verify` over TLS agrees."""
    ca_a, ca_b = TlsCa("a-ca"), TlsCa("b-ca")
    zk_a, port_a = _start(tmp_path, "a", ca_a)
    zk_b, port_b = _start(tmp_path, "b", ca_b)
    tls_a = zk_client_tls(_client_dirs(tmp_path, ca_a, "sync-a")[0])
    tls_b = zk_client_tls(_client_dirs(tmp_path, ca_b, "sync-b")[0])
    source, target = f"localhost:{port_a}", f"localhost:{port_b}"
    with zk_a, zk_b:
        seed = connect(source, "source", timeout=20, session_timeout=10, tls=tls_a)
        try:
            for i in range(200):
                seed.create(f"/app/n{i}", str(i).encode(), makepath=True)
            config = SyncConfig(
                source=source,
                target=target,
                paths=["/app"],
                reconcile_interval=3600,
                source_tls=tls_a,
                target_tls=tls_b,
            )
            with SyncEngine(config) as engine:
                engine.start()
                seed.set("/app/n7", b"changed")
                seed.create("/app/late", b"after bootstrap")
                deadline = time.monotonic() + 20
                reader = connect(target, "target", timeout=20, session_timeout=10, tls=tls_b)
                try:
                    while time.monotonic() < deadline:
                        late = reader.exists("/app/late")
                        if late is not None and reader.get("/app/n7")[0] == b"changed":
                            break
                        time.sleep(0.1)
                    assert reader.get("/app/late")[0] == b"after bootstrap"
                    assert reader.get("/app/n7")[0] == b"changed"
                    assert len(reader.get_children("/app")) == 201
                finally:
                    close(reader)
            report = verify(source, target, ["/app"], source_tls=tls_a, target_tls=tls_b)
            assert report.ok, report.format()
        finally:
            close(seed)

        # without B's client certificate the engine does not start, and says why
        no_cert = SyncConfig(
            source=source,
            target=target,
            paths=["/app"],
            connect_timeout=5,
            source_tls=tls_a,
            target_tls=zk_client_tls(_client_dirs(tmp_path, ca_b, "no-cert")[1]),
        )
        with pytest.raises(SyncError, match=r"target ensemble .* over TLS"):
            SyncEngine(no_cert).start()


def test_the_scalers_reconfig_session_over_tls(ensemble: TlsEnsemble) -> None:
    """zk_scale's short-lived `reconfig` session reaches the server on the TLS port: the
    request is answered (a joiner that does not run: no quorum for the new configuration),
    not timed out."""
    action = Reconfig(("server.9=localhost:2999:3999;2181",), (), "test")
    reconfigure = kazoo_reconfigure(ensemble.tls_connect, None, tls=ensemble.client)
    with pytest.raises(NewConfigNoQuorumError):
        reconfigure(action, None)
    plain = kazoo_reconfigure(ensemble.tls_connect, None, timeout=3)  # no TLS: no session
    with pytest.raises(KazooTimeoutError):
        plain(action, None)
