"""Turning quorum TLS on in a running ensemble (issue 17, point 7), in a real three-server
ZooKeeper 3.8 (Debian's): the stages the operator moves a managed ensemble through
(`QuorumTls`, `tls_lines(tls, stage)`), one rolling restart each, followers first, as
ZooKeeper's administrator's guide says ("Upgrading existing non-TLS cluster with no
downtime"). Writes go on the whole time and none waits out its retry budget; each
restarted member rejoins; at the end every member says it uses TLS for the quorum. And
why the stages: a member restarted straight into TLS does not rejoin plain peers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

from orchestrator_operator.models.mesoscluster import QuorumTls, ZooKeeperTls
from orchestrator_operator.operator.builders.zookeeper import TLS_DIR, tls_lines
from testenv.processes import free_port
from testenv.tls_secret import TlsCa, tls_kazoo, tls_secret, write_secret_volume
from testenv.zookeeper import ZkEnsemble, ZooKeeperStartError

pytestmark = pytest.mark.zookeeper

TLS = ZooKeeperTls(secret_name="zk-tls", client_auth="need")
TLS_KEYS = ("serverCnxnFactory", "secureClientPort", "sslQuorum", "portUnification", "ssl.")


def _secret(tmp_path: Path) -> Path:
    ca = TlsCa("zookeeper-ca")
    # Each member presents it to the others, as server and as client.
    member = ca.issue("zookeeper", hosts=("127.0.0.1", "localhost"), peer=True)
    secret = tmp_path / "zk-tls"
    write_secret_volume(
        secret, {**tls_secret(ca, member), "tls-combined.pem": member.key_pem + member.cert_pem}
    )
    return secret


def _restart_into(zk: ZkEnsemble, index: int, stage: QuorumTls, secret: Path, port: int,
                  timeout: float = 90) -> None:  # fmt: skip
    """Stop one server, give its zoo.cfg the stage's TLS settings (the Secret where the pod
    mounts it), start it and wait until it has rejoined the quorum."""
    server = zk.servers[index]
    zk.stop_server(index)
    kept = [
        line for line in server.config_path.read_text().splitlines()
        if not line.startswith(TLS_KEYS)
    ]  # fmt: skip
    settings = [line.replace(f"{TLS_DIR}/", f"{secret}/") for line in tls_lines(TLS, stage)]
    settings = [f"secureClientPort={port}" if s.startswith("secureClientPort=") else s
                for s in settings]  # fmt: skip
    server.config_path.write_text("\n".join([*kept, *settings]) + "\n")
    zk.start_server(index, timeout=timeout)


class Writer:
    """Sets one znode every 50 ms through the plain port (Mesos' and Marathon's); a write
    that cannot complete within 10 s of retries counts as an outage."""

    def __init__(self, connect: str) -> None:
        self.client = KazooClient(hosts=connect, timeout=10)
        self.writes = 0
        self.outages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        retry = KazooRetry(max_tries=-1, deadline=10, max_delay=0.5)
        while not self._stop.wait(0.05):
            try:
                retry(self.client.set, "/tls-roll", str(self.writes).encode())
                self.writes += 1
            except Exception as error:
                self.outages.append(repr(error))

    def __enter__(self) -> Writer:
        self.client.start(timeout=60)
        self.client.ensure_path("/tls-roll")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.stop()
        self.client.close()


def test_tls_is_turned_on_in_a_running_ensemble_one_stage_at_a_time(tmp_path: Path) -> None:
    secret = _secret(tmp_path)
    with ZkEnsemble(3) as zk:
        ports = [free_port() for _ in zk.servers]
        with Writer(zk.connect_string) as writer:
            for stage in (
                QuorumTls.PORT_UNIFICATION, QuorumTls.TLS_WITH_PORT_UNIFICATION, QuorumTls.ON
            ):  # fmt: skip
                leader = zk.wait_for_leader()
                for index in [*zk.follower_indexes(), leader]:  # the operator's order
                    before = writer.writes
                    _restart_into(zk, index, stage, secret, ports[index])
                    assert zk.server_state(index) in ("leader", "follower"), stage
                    zk.wait_for_leader()
                    # The writer's session may have been on this member: its next write
                    # comes after a reconnect, within its 10 s retry budget (else an outage).
                    deadline = time.monotonic() + 10
                    while writer.writes <= before and time.monotonic() < deadline:
                        time.sleep(0.05)
                    assert writer.writes > before, f"no write while {index} restarted ({stage})"
            assert writer.outages == [], writer.outages
        for server in zk.servers:
            log = server.log_path.read_text(errors="replace")
            assert (
                "Using TLS encrypted quorum communication"
                in log.rsplit("Reading configuration", 1)[-1]
            )
        secure = tls_kazoo(f"127.0.0.1:{ports[0]}", secret / "ca.crt", secret)
        secure.start(timeout=60)
        try:
            assert secure.exists("/tls-roll") is not None
        finally:
            secure.stop()
            secure.close()


def test_a_member_restarted_straight_into_tls_does_not_rejoin_plain_peers(
    tmp_path: Path,
) -> None:
    secret = _secret(tmp_path)
    with ZkEnsemble(3) as zk:
        follower = zk.follower_indexes()[0]
        with pytest.raises(ZooKeeperStartError):
            _restart_into(zk, follower, QuorumTls.ON, secret, free_port(), timeout=20)
        assert zk.server_state(follower) not in ("leader", "follower")
