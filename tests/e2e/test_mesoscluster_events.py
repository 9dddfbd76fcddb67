"""MesosCluster status follows ZooKeeper events, not the timer (mesoscluster/watches.py).

The operator here runs with `--status-resync-seconds 3600`: its timer observes a settled
cluster once an hour. It has a control plane of its own, so that no other operator of the
test session (the shared one observes every 10 s) can write this cluster's status. Each
leader below appears while the cluster is settled (its workloads ready, no leader named, no
rollout, nothing cordoned), so nothing but the ZooKeeper watch can bring it to status
within the wait, which is generous for an event and far short of the timer's hour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kazoo.client import KazooClient

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import eventually, get_json
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper]
REPO = Path(__file__).resolve().parents[2]
NAME = "events"
MESOS_PATH = "/events/mesos"
EVENT_WAIT = 60.0  # generous for an event; the timer alone would take an hour
SETTLE_WAIT = 120.0


@pytest.fixture(scope="module")
def own_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestEnv]:
    env = KubeTestEnv(nodes=1, base_dir=tmp_path_factory.mktemp("testenv-events"))
    with env:
        env.install_crds(REPO / "crds")
        yield env


@pytest.fixture(scope="module")
def hour_timer_operator(
    own_env: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        own_env,
        tmp_path_factory.mktemp("operator-events") / "operator.log",
        "--status-resync-seconds",
        "3600",
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def _apply(env: KubeTestEnv, connect: str) -> None:
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": NAME, "namespace": "default"},
        "spec": {
            "zookeeper": {"external": {"connectString": connect}},
            "masters": {"replicas": 1, "zkPath": MESOS_PATH},
            "marathon": {"replicas": 1, "zkPath": "/events/marathon"},
        },
    }
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr


def _status(env: KubeTestEnv) -> dict[str, Any]:
    return dict((get_json(env, "mesoscluster", NAME) or {}).get("status") or {})


def _settled_on(env: KubeTestEnv, connect: str) -> dict[str, Any] | None:
    """The status once it names `connect`, no leader, every workload ready, no rollout."""
    status = _status(env)
    components = [status.get(c) or {} for c in ("masters", "agents", "marathon")]
    settled = (
        status.get("zookeeperConnectString") == connect
        and not status.get("leadingMaster")
        and not status.get("rollout")
        and all(c.get("desired") and c.get("ready") == c.get("desired") for c in components)
    )
    return status if settled else None


def _register_master(connect: str, port: int) -> KazooClient:
    """A Mesos master's contender znode, as src/master/detector/ and contender/ write it."""
    session = KazooClient(hosts=connect)
    session.start(timeout=15)
    info = {"id": f"master-{port}", "hostname": "127.0.0.1", "port": port,
            "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": port}}  # fmt: skip
    session.create(f"{MESOS_PATH}/json.info_", json.dumps(info).encode(),
                   ephemeral=True, sequence=True, makepath=True)  # fmt: skip
    return session


def test_a_new_leader_reaches_status_without_the_timer_also_after_moving_to_another_ensemble(
    own_env: KubeTestEnv,
    hour_timer_operator: OperatorProcess,
    zk_ensemble_factory: ZkEnsembleFactory,
) -> None:
    ensemble_a, ensemble_b = zk_ensemble_factory(1), zk_ensemble_factory(1)
    a, b = ensemble_a.connect_string, ensemble_b.connect_string
    sessions: list[KazooClient] = []
    try:
        _apply(own_env, a)
        eventually(lambda: _settled_on(own_env, a), SETTLE_WAIT, "a settled status on A")

        sessions.append(_register_master(a, 5050))
        status = eventually(
            lambda: _status(own_env) if _status(own_env).get("leadingMaster") else None,
            EVENT_WAIT,
            "the leader registered in ZooKeeper A in status",
        )
        assert status["leadingMaster"] == "127.0.0.1:5050"

        # The cluster moves to ensemble B (as a migration's last step does): its watches
        # follow it there; B has no leader yet.
        _apply(own_env, b)
        eventually(lambda: _settled_on(own_env, b), SETTLE_WAIT, "a settled status on B")

        sessions.append(_register_master(b, 5051))
        status = eventually(
            lambda: _status(own_env) if _status(own_env).get("leadingMaster") else None,
            EVENT_WAIT,
            "the leader registered in ZooKeeper B in status",
        )
        assert status["leadingMaster"] == "127.0.0.1:5051"
        assert status["zookeeperConnectString"] == b
    finally:
        for session in sessions:
            session.stop()
            session.close()
        own_env.kubectl_run("delete", "mesoscluster", NAME, "--wait=true")
