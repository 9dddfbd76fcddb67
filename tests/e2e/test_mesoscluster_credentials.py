"""A MesosCluster with every credential (issue 16, point 3 and its "Credentials end to end"):
framework and agent authentication, Marathon's HTTP credentials and ZooKeeper digest
credentials, on simulated Mesos pods (testenv/simpods.py) that enforce them as Mesos 1.11 and
Marathon 1.11 do (sim/master/auth.py, sim/agent/credential.py, sim/marathon/auth.py), against
a real ZooKeeper whose Mesos and Marathon paths only the digest user may write."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.simpods import SimPodRunner
from tests.e2e.support import get_json
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper]

ZK_USER, ZK_PASSWORD = "mesos", "zk-s3cret-7"
AGENT_SECRET, MARATHON_SECRET = "agent-s3cret-7", "marathon-s3cret-7"
HTTP_USER, HTTP_PASSWORD = "admin", "http-s3cret-7"
SECRETS = (ZK_PASSWORD, AGENT_SECRET, MARATHON_SECRET, HTTP_PASSWORD)


def _apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr


def _secret(namespace: str, name: str, key: str, value: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "stringData": {key: value},
    }


def _agent_credential(secret: str) -> str:
    return json.dumps({"principal": "agent", "secret": secret})


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    name = f"cred-{int(time.time()) % 100000}"
    assert kube_env.kubectl_run("create", "namespace", name).returncode == 0
    yield name
    kube_env.kubectl_run("delete", "mesosclusters", "--all", "-n", name, "--timeout=60s")
    kube_env.kubectl_run("delete", "namespace", name, "--wait=false")


def _status(env: KubeTestEnv, namespace: str) -> dict[str, Any]:
    status: dict[str, Any] = (get_json(env, "mc", "secure", "-n", namespace) or {}).get(
        "status", {}
    )
    return status


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def test_a_cluster_with_every_credential_becomes_ready_and_says_why_agents_are_refused(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    zk_ensemble_factory: ZkEnsembleFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    zk = zk_ensemble_factory(1)
    # Mesos' and Marathon's paths: anyone may read (the operator reads the election), only
    # the digest user may create under them, so nothing registers without the credentials.
    client = KazooClient(zk.connect_string, auth_data=[("digest", f"{ZK_USER}:{ZK_PASSWORD}")])
    client.start(timeout=15)
    try:
        acl = [
            make_digest_acl(ZK_USER, ZK_PASSWORD, all=True),
            make_acl("world", "anyone", read=True),
        ]
        for path in ("/mesos", "/marathon"):
            client.create(path, acl=acl)
    finally:
        client.stop()
        client.close()

    masters_file = {
        "credentials": [
            {"principal": "agent", "secret": AGENT_SECRET},
            {"principal": "marathon", "secret": MARATHON_SECRET},
        ]
    }
    for secret in (
        _secret(namespace, "mesos-zk", "auth", f"{ZK_USER}:{ZK_PASSWORD}",
                **{"orchestrator.dev/credentials": "zookeeper"}),
        _secret(namespace, "mesos-masters", "credentials", json.dumps(masters_file)),
        _secret(namespace, "mesos-agent", "credential", _agent_credential(AGENT_SECRET)),
        _secret(namespace, "mesos-marathon", "secret", MARATHON_SECRET),
        _secret(namespace, "marathon-http", "credentials", f"{HTTP_USER}:{HTTP_PASSWORD}"),
    ):  # fmt: skip
        _apply(kube_env, secret)
    cluster = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": "secure", "namespace": namespace},
        "spec": {
            "zookeeper": {
                "external": {
                    "connectString": zk.connect_string,
                    "authSecretRef": {"name": "mesos-zk", "key": "auth"},
                }
            },
            "masters": {
                "replicas": 1,
                "credentialsSecretRef": {"name": "mesos-masters", "key": "credentials"},
            },
            "agents": {"credentialSecretRef": {"name": "mesos-agent", "key": "credential"}},
            "marathon": {
                "replicas": 1,
                "mesosAuthentication": {
                    "principal": "marathon",
                    "secretRef": {"name": "mesos-marathon", "key": "secret"},
                },
                "credentialsSecretRef": {"name": "marathon-http", "key": "credentials"},
            },
        },
    }
    with SimPodRunner(kube_env, namespace, base_dir=tmp_path / "simpods") as pods:
        _apply(kube_env, cluster)
        pods.wait_for(lambda: pods.leader_url() is not None, 90, "an elected master")

        def scheduled() -> int:
            daemonset = get_json(kube_env, "daemonset", "secure-agent", "-n", namespace) or {}
            return int(daemonset.get("status", {}).get("desiredNumberScheduled") or 0)

        pods.wait_for(lambda: scheduled() > 0, 60, "agent pods scheduled")
        agents = scheduled()
        pods.wait_for(lambda: len(pods.agent_urls()) == agents, 60, f"{agents} agent processes")

        def ready() -> bool:
            status = _status(kube_env, namespace)
            mesos = status.get("mesos") or {}
            return bool(
                status.get("phase") == "Ready"
                and mesos.get("agentsActive") == agents
                and mesos.get("frameworksActive") == 1
            )

        pods.wait_for(ready, 120, f"phase Ready with {agents} agents and Marathon registered")
        leader = pods.leader_url()
        assert leader is not None
        state = httpx.get(leader + "/master/state", timeout=5).json()
        assert [f["name"] for f in state["frameworks"]] == ["marathon"]
        assert len(state["slaves"]) == agents

        # Marathon's HTTP API wants the credentials; the pod's readiness did not.
        marathon = pods.marathon_urls()[0]
        assert httpx.get(marathon + "/v2/info", timeout=5).status_code == 401
        auth = (HTTP_USER, HTTP_PASSWORD)
        assert httpx.get(marathon + "/v2/info", auth=auth, timeout=5).status_code == 200

        # The masters registered in ZooKeeper as the digest user.
        client = KazooClient(zk.connect_string)
        client.start(timeout=15)
        try:
            children = client.get_children("/mesos")
            assert children, "no master registered under /mesos"
            for child in children:
                acls, _ = client.get_acls(f"/mesos/{child}")
                assert any(a.id.scheme == "digest" and a.id.id.startswith(f"{ZK_USER}:")
                           for a in acls), (child, acls)  # fmt: skip
        finally:
            client.stop()
            client.close()

        # No secret in any pod spec, nor in the command line of any process (world-readable
        # in /proc on the node).
        spec_text = kube_env.kubectl_run("get", "pods", "-n", namespace, "-o", "json").stdout
        assert not [s for s in SECRETS if s in spec_text]
        for info in pods.processes().values():
            assert info.pid is not None
            cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes().decode()
            assert not [s for s in SECRETS if s in cmdline], info.pod

        # The agents' credential goes wrong: the master refuses them, and the status says so.
        _apply(kube_env, _secret(namespace, "mesos-agent", "credential", _agent_credential("nope")))
        deleted = kube_env.kubectl_run(
            "delete", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=agent"
        )
        assert deleted.returncode == 0, deleted.stderr

        def refused() -> bool:
            agents_ready = _condition(_status(kube_env, namespace), "AgentsReady")
            return bool(
                agents_ready.get("status") == "False"
                and "not registered" in agents_ready.get("message", "")
            )

        pods.wait_for(refused, 120, "AgentsReady False: agents not registered")
        message = _condition(_status(kube_env, namespace), "AgentsReady")["message"]
        assert "agents.credentialSecretRef" in message, message
        assert _status(kube_env, namespace)["phase"] != "Ready"
        assert not [s for s in SECRETS if s in json.dumps(_status(kube_env, namespace))]
        logs = "".join(p.log_path.read_text() for p in pods.processes().values())
        assert "Authentication failed" in logs
        assert not [s for s in SECRETS if s in logs]
        # nor in the operator's own log, which read every one of them (point 8 of issue 17)
        operator_log = operator.log_path.read_text(errors="replace")
        assert namespace in operator_log  # it logged its work on this cluster
        assert not [s for s in SECRETS if s in operator_log]
