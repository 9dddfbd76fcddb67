"""Which connections go over TLS, where, and with what (issue 17, point 7): the pure parts
of the operator's and the sync controller's ZooKeeper client TLS. A managed ensemble with
spec.zookeeper.tls is reached by the operator on 2281 by its members' certificate names;
Mesos and Marathon keep 2181; a cluster without `tls` is unchanged; a missing client
certificate is named, not waited for. tests/integration/test_zk_client_tls.py runs them
against a real ZooKeeper."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from orchestrator_operator.common import tls as common_tls
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.common.tls import TlsError, load_zk_client_tls
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders import marathon, masters, zookeeper
from orchestrator_operator.operator.mesoscluster.watches import watch_target
from orchestrator_operator.sync.controller.options import ControllerOptions
from orchestrator_operator.sync.controller.status import desired_of
from orchestrator_operator.zk.clients import ZkClientPool, ZkTlsNotConfigured, zk_tls_routes
from orchestrator_operator.zk.connection import SyncError
from orchestrator_operator.zk.handler import describe_tls_error, tls_hint
from testenv.tls_secret import TlsCa, tls_secret, write_secret_volume

OWNER = Owner(name="prod", namespace="mesos", uid="1")
PLAIN = "prod-zookeeper-client.mesos.svc:2181"
MEMBERS = [
    f"prod-zookeeper-{i}.prod-zookeeper-headless.mesos.svc.cluster.local:2281" for i in range(3)
]


def _spec(**zookeeper: object) -> MesosClusterSpec:
    return MesosClusterSpec.model_validate({"zookeeper": zookeeper})


def test_the_operator_reaches_a_tls_ensemble_on_2281_by_its_members_names() -> None:
    spec = _spec(replicas=3, tls={"secretName": "zk-tls"})
    assert zookeeper.operator_tls_routes(OWNER, spec) == {PLAIN: ",".join(MEMBERS)}
    # Mesos and Marathon keep 2181: their clients have no TLS
    assert zookeeper.connect_string(OWNER, spec) == PLAIN
    assert masters.mesos_zk_hosts(OWNER, spec).startswith(f"{PLAIN}/")
    assert marathon.marathon_zk_hosts(OWNER, spec).startswith(f"{PLAIN}/")


def test_without_tls_nothing_changes() -> None:
    assert zookeeper.operator_tls_routes(OWNER, _spec(replicas=3)) == {}
    external = _spec(external={"connectString": "zk1:2181,zk2:2181"})
    assert zookeeper.operator_tls_routes(OWNER, external) == {}
    target = watch_target(OWNER, _spec(replicas=3))
    assert target.tls_connect is None and target.tls_routes() == {}


def test_an_external_ensemble_with_tls_servers_is_reached_there_under_its_chroot() -> None:
    tls = "zk-0.zk.example:2281,zk-1.zk.example:2281"
    spec = _spec(external={"connectString": "zk-0.zk.example:2181/prod", "tlsServers": tls})
    assert zookeeper.operator_tls_routes(OWNER, spec) == {
        "zk-0.zk.example:2181/prod": f"{tls}/prod"
    }
    # Mesos and Marathon keep the plain connect string
    assert masters.mesos_zk_hosts(OWNER, spec).startswith("zk-0.zk.example:2181/prod/")
    target = watch_target(OWNER, spec)
    assert target.tls_routes() == {"zk-0.zk.example:2181/prod": f"{tls}/prod"}
    with pytest.raises(ValueError, match=r"tls_?[sS]ervers"):
        _spec(external={"connectString": "zk:2181", "tlsServers": "zk:2281/chroot"})


def test_the_watches_follow_the_tls_connect_string() -> None:
    target = watch_target(OWNER, _spec(replicas=3, tls={"secretName": "zk-tls"}))
    assert target.connect == PLAIN
    assert target.tls_routes() == {PLAIN: ",".join(MEMBERS)}
    # scaling changes the connect string, and so re-arms the watches
    bigger = watch_target(OWNER, _spec(replicas=5, tls={"secretName": "zk-tls"}))
    assert bigger != target and bigger.tls_connect is not None
    assert bigger.tls_connect.count(":2281") == 5


def test_the_pool_names_the_missing_setting_without_connecting() -> None:
    pool = ZkClientPool(connect_timeout=0.1)
    with zk_tls_routes({PLAIN: ",".join(MEMBERS)}), pytest.raises(ZkTlsNotConfigured) as error:
        pool.get(PLAIN)
    message = str(error.value)
    assert "--zookeeper-client-tls-dir (ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR)" in message
    assert MEMBERS[0] in message and "spec.zookeeper.tls" in message
    with zk_tls_routes({PLAIN: ",".join(MEMBERS)}), pytest.raises(ZkTlsNotConfigured):
        pool.ensemble_modes(PLAIN)


def test_the_sync_request_carries_tls_to_the_controller() -> None:
    request = {
        "active": True,
        "source": ",".join(MEMBERS),
        "target": "zk-b:2181",
        "paths": ["/mesos"],
        "sourceTls": True,
    }
    desired = desired_of({"metadata": {"namespace": "ns", "name": "m"}, "status": {
        "syncRequest": request}})  # fmt: skip
    assert desired.spec is not None
    assert (desired.spec.source_tls, desired.spec.target_tls) == (True, False)
    options = ControllerOptions()
    assert options.tls_for("target", False) is None
    with pytest.raises(SyncError) as error:
        options.tls_for("source", True)
    assert "the source ensemble is reached over TLS" in str(error.value)
    assert "--zookeeper-client-tls-dir" in str(error.value)


def test_the_client_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = TlsCa("zk-ca")
    write_secret_volume(tmp_path / "op", tls_secret(ca, ca.issue("operator", client=True)))
    monkeypatch.setattr(common_tls, "ZK_CLIENT_TLS_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv(common_tls.ZK_CLIENT_TLS_ENV, raising=False)
    assert load_zk_client_tls(None) is None  # nothing mounted: off
    (tmp_path / "absent").mkdir()  # an optional Secret volume without its Secret: off
    assert load_zk_client_tls(None) is None
    loaded = load_zk_client_tls(str(tmp_path / "op"))
    assert loaded is not None and loaded.files.cert is not None
    context = loaded.current()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    monkeypatch.setenv(common_tls.ZK_CLIENT_TLS_ENV, str(tmp_path / "op"))
    assert load_zk_client_tls(None) is not None
    monkeypatch.delenv(common_tls.ZK_CLIENT_TLS_ENV)
    monkeypatch.setattr(common_tls, "ZK_CLIENT_TLS_DIR", str(tmp_path / "op"))  # the mount
    assert load_zk_client_tls(None) is not None
    (tmp_path / "no-ca").mkdir()
    with pytest.raises(TlsError, match=r"ca\.crt is missing"):
        load_zk_client_tls(str(tmp_path / "no-ca"))
    with pytest.raises(TlsError, match="is not a directory"):
        load_zk_client_tls(str(tmp_path / "nowhere"))


def test_tls_failures_read_as_what_to_fix() -> None:
    refused = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")
    refused.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert "refused this client's certificate" in describe_tls_error(refused)
    assert tls_hint(False, None) == ""
    assert "client certificate" in tls_hint(True, None)
    assert tls_hint(True, "zk:2281: boom") == " over TLS: zk:2281: boom"
