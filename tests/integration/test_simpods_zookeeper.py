"""SimPodRunner with a cluster DNS (what `make run` uses): the operator's own ZooKeeper
StatefulSet, ConfigMap and Services (builders/zookeeper.py, no operator running) on the
local control plane become a real 3-server ensemble that a client reaches by the client
Service's name, as Mesos and the operator do in a cluster; a deleted pod's server stops, and
the pod the StatefulSet makes again runs a server on the same address with the same data."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kazoo.client import KazooClient

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders import zookeeper
from testenv.cluster_dns import parse_hosts
from testenv.kube import KubeTestEnv
from testenv.simpods import ZOOKEEPER, SimPodRunner

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(300)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    name = f"simzk-{uuid.uuid4().hex[:6]}"
    assert kube_env.kubectl_run("create", "namespace", name).returncode == 0
    yield name
    kube_env.kubectl_run("delete", "namespace", name, "--wait=false")


def _client_over_dns(hosts: Path, connect: str, script: str) -> str:
    """Run `script` (with `zk`, a started KazooClient on `connect`) in a Python process that
    resolves the cluster's names as make run's processes do."""
    program = (
        "from kazoo.client import KazooClient\n"
        f"zk = KazooClient(hosts={connect!r}, timeout=10)\n"
        "zk.start(timeout=60)\n"
        f"{script}\n"
        "zk.stop()\n"
    )
    env = {"PYTHONPATH": str(REPO / "testenv" / "site"), "TESTENV_HOSTS_FILE": str(hosts)}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_zookeeper_pods_are_a_real_ensemble_reached_by_the_service_name(
    kube_env: KubeTestEnv, namespace: str, tmp_path: Path
) -> None:
    owner = Owner(name="zt", namespace=namespace, uid="not-an-owner")
    manifests = zookeeper.build(owner, MesosClusterSpec.model_validate({"zookeeper": {}}))
    for manifest in manifests:
        manifest["metadata"].pop("ownerReferences", None)  # no MesosCluster here
    applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    assert applied.returncode == 0, applied.stderr
    hosts = tmp_path / "hosts"
    client_service = zookeeper.client_address(owner)  # zt-zookeeper-client.<ns>.svc:2181

    with SimPodRunner(kube_env, namespace, tmp_path / "simpods", cluster_dns=hosts) as pods:

        def serving() -> bool:
            names = parse_hosts(hosts.read_text())
            return len(pods.zookeeper_addresses()) == 3 and (
                len(names.get(client_service.rsplit(":", 1)[0], [])) == 3
            )

        pods.wait_for(serving, 120, "3 ZooKeeper servers behind the client Service")
        addresses = pods.zookeeper_addresses()
        assert len(set(addresses.values())) == 3, addresses  # one address per pod
        assert {i.component for i in pods.processes().values()} == {ZOOKEEPER}

        written = _client_over_dns(
            hosts,
            client_service,
            "zk.create('/made-here', b'by name')\nprint(zk.get('/made-here')[0].decode())",
        )
        assert written == "by name"

        before = pods.processes()["zt-zookeeper-1"]
        deleted = kube_env.kubectl_run(
            "delete", "pod", "zt-zookeeper-1", "-n", namespace, "--wait=false"
        )
        assert deleted.returncode == 0, deleted.stderr
        pods.wait_for(
            lambda: any(s.uid == before.uid for s in pods.stopped()), 60, "the old server gone"
        )

        def again() -> bool:
            now = pods.processes().get("zt-zookeeper-1")
            return now is not None and now.uid != before.uid and now.alive

        pods.wait_for(again, 90, "a server for the new pod zt-zookeeper-1")
        assert pods.zookeeper_addresses()["zt-zookeeper-1"] == addresses["zt-zookeeper-1"]

        # The new server, asked alone at its own address, has the data (its volume and the
        # ensemble's): it has rejoined.
        def has_data() -> bool:
            client = KazooClient(hosts=addresses["zt-zookeeper-1"], timeout=5)
            try:
                client.start(timeout=5)
                return bool(client.get("/made-here")[0] == b"by name")
            finally:
                client.stop()
                client.close()

        pods.wait_for(has_data, 90, "the data on the new server")
