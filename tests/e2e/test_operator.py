"""The operator runs against the real control plane: it accepts resources, says so in their
status, and serves health, readiness and metrics."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess

pytestmark = pytest.mark.kube


def _wait_for_status(
    env: KubeTestEnv, resource: str, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        got = env.kubectl_run("get", resource, name, "-o", "json")
        if got.returncode == 0:
            status = json.loads(got.stdout).get("status", {})
            if status.get("phase") == phase:
                return status
        time.sleep(0.5)
    raise AssertionError(f"{resource}/{name} never reached phase {phase}; status: {status}")


@pytest.mark.parametrize(
    ("kind", "resource", "spec"),
    [
        ("ZkMigration", "zkmigrations",
         {"clusterRef": "demo", "target": {"external": {"connectString": "zk-b:2181"}}}),
    ],
)  # fmt: skip
def test_kinds_not_yet_reconciled_are_accepted_as_pending(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    kind: str,
    resource: str,
    spec: dict[str, Any],
) -> None:
    name = f"accepted-{kind.lower()}"
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }
    assert kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest)).returncode == 0
    status = _wait_for_status(kube_env, resource, name, "Pending")
    accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "True"
    assert accepted["reason"] == "SpecValid"
    assert status["observedGeneration"] == 1

    printed = kube_env.kubectl_run("get", resource, name)
    assert "Pending" in printed.stdout, printed.stdout


def _child_deletes(operator: OperatorProcess) -> float:
    """The DELETE requests the handlers sent for the kinds of a MesosCluster's children."""
    status, body = operator.get("/metrics")
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "orchestrator_kube_api_requests_total"
        and sample.labels["verb"] == "delete" and sample.labels["kind"] != "Pod"
    )  # fmt: skip


def test_spec_change_moves_observed_generation(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": "generations", "namespace": "default"},
        "spec": {"masters": {"replicas": 3}},
    }
    deletes = _child_deletes(operator)
    kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    _wait_for_status(kube_env, "mc", "generations", "Degraded")  # no ZooKeeper behind it
    # a new cluster owns nothing yet: no DELETE of children another spec might have made
    # (addons, the load balancer, Egress policies: 14 requests per create, all 404, before)
    assert _child_deletes(operator) == deletes
    manifest["spec"] = {"masters": {"replicas": 5}}
    kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = json.loads(kube_env.kubectl_run("get", "mc", "generations", "-o", "json").stdout)
        if status.get("status", {}).get("observedGeneration") == 2:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"observedGeneration never reached 2: {status.get('status')}")
    # nor does a change that drops nothing the cluster owns (the stale names are looked up
    # and none is its child; tests/e2e/test_mesoscluster_addons.py deletes one that is)
    assert _child_deletes(operator) == deletes


def test_health_readiness_and_metrics(kube_env: KubeTestEnv, operator: OperatorProcess) -> None:
    assert operator.get("/healthz") == (200, '{"status": "ok"}')
    assert operator.get("/readyz")[0] == 200
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "ZkMigration",
        "metadata": {"name": "metrics", "namespace": "default"},
        "spec": {"clusterRef": "demo", "target": {"external": {"connectString": "zk-b:2181"}}},
    }
    kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    _wait_for_status(kube_env, "zkm", "metrics", "Pending")
    status, body = operator.get("/metrics")
    assert status == 200
    assert 'orchestrator_reconcile_total{kind="ZkMigration",result="ok"}' in body
    assert "orchestrator_operator_ready 1.0" in body
