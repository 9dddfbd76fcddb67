"""A ZkMigration of a MesosCluster whose managed ensemble has spec.zookeeper.tls (issue 17,
point 7), against the real API server and the real operator: phase 6's handover patch is
one the API server accepts for such a cluster (the earlier one kept `tls` beside
`external`, which the CRD's rule refuses, so the migration could never finish), and a
managed ensemble B without a `tls` of its own is held with the reason, not made plain text
nor given A's certificate (which does not name B's members)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.operator.zkmigration.machine import handover_patch
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import apply, eventually, get_json

pytestmark = pytest.mark.kube


def _tls_cluster(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "zookeeper": {"replicas": 1, "tls": {"secretName": f"{name}-zookeeper-tls"}},
            "masters": {"replicas": 1},
            "marathon": {"replicas": 0},
        },
    }


def _merge_patch(env: KubeTestEnv, name: str, body: dict[str, Any]) -> str:
    """kubectl's merge patch of the cluster, as the operator sends it; "" or the refusal."""
    result = env.kubectl_run("patch", "mc", name, "--type=merge", "-p", json.dumps(body))
    return "" if result.returncode == 0 else result.stderr


def test_phase_6s_handover_is_accepted_for_a_cluster_whose_ensemble_has_tls(
    kube_env: KubeTestEnv,
) -> None:
    name = "tls-handover"
    apply(kube_env, _tls_cluster(name))
    target = "move-zookeeper-client.default.svc:2181"
    final = ZkRouting(masters_component="master-b")
    try:
        earlier = handover_patch(final, target)
        del earlier["spec"]["zookeeper"]["tls"]
        assert "zookeeper.tls is for a managed ensemble" in _merge_patch(kube_env, name, earlier)

        assert _merge_patch(kube_env, name, handover_patch(final, target)) == ""
        zookeeper = (get_json(kube_env, "mc", name) or {})["spec"]["zookeeper"]
        assert zookeeper["external"] == {"connectString": target}
        assert "tls" not in zookeeper and "replicas" not in zookeeper
    finally:
        kube_env.kubectl_run("delete", "mc", name, "--wait=true")


def test_a_plain_ensemble_b_for_a_tls_cluster_is_held_and_says_why(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    name, migration = "tls-source", "tls-source-to-b"
    apply(kube_env, _tls_cluster(name))
    apply(kube_env, {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "ZkMigration",
        "metadata": {"name": migration, "namespace": "default"},
        "spec": {"clusterRef": name, "target": {"managed": {"replicas": 1}}, "paths": ["/mesos"]},
    })  # fmt: skip
    try:

        def checks() -> list[str]:
            status = (get_json(kube_env, "zkm", migration) or {}).get("status") or {}
            return list(status.get("checks") or [])

        held = eventually(
            lambda: [c for c in checks() if "set target.managed.tls" in c], 60,
            "the migration held for B's tls",
        )  # fmt: skip
        assert "spec.zookeeper.tls" in held[0]
        assert get_json(kube_env, "statefulset", f"{migration}-zookeeper") is None, (
            "no ensemble B was made"
        )
    finally:
        kube_env.kubectl_run("delete", "zkm", migration, "--wait=true")
        kube_env.kubectl_run("delete", "mc", name, "--wait=true")
