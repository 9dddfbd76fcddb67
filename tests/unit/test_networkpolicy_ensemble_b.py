"""A ZkMigration's managed ensemble B gets an Ingress NetworkPolicy like the cluster's own
ensemble (issue 17 point 12): it selects B's pods, admits B's members on the quorum ports
and, on the client port, the pods of the cluster that move to B, the operator's namespace
and the nodes; nothing when the cluster turns its policies off."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models import ZK_MIGRATION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.zkmigration import ManagedEnsemble
from orchestrator_operator.operator.builders import cluster, networkpolicy, zookeeper

CLUSTER = Owner(name="prod", namespace="mesos", uid="u1")
MIGRATION = Owner(
    name="move", namespace="mesos", uid="u2", kind=ZK_MIGRATION.kind,
    api_version=ZK_MIGRATION.api_version,
)  # fmt: skip


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions") or [])


def _pod_labels(children: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
    workload = next(c for c in children if c["kind"] == kind and c["metadata"]["name"] == name)
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def test_ensemble_b_policy_selects_b_and_admits_the_clusters_clients() -> None:
    spec = MesosClusterSpec()
    (policy,) = networkpolicy.migration_target(MIGRATION, CLUSTER, spec)
    ensemble = zookeeper.build_migration_target(MIGRATION, ManagedEnsemble(), spec)
    b_pods = _pod_labels(ensemble, "StatefulSet", "move-zookeeper")
    assert _selects(policy["spec"]["podSelector"], b_pods)
    rules = policy["spec"]["ingress"]
    assert any(
        _selects(peer["podSelector"], b_pods) and {"port": 2888, "protocol": "TCP"} in rule["ports"]
        for rule in rules for peer in rule["from"] if "podSelector" in peer
    )  # fmt: skip
    children = cluster.build_children(CLUSTER, spec)
    for kind, name in (("StatefulSet", "prod-master"), ("Deployment", "prod-marathon")):
        labels = _pod_labels(children, kind, name)
        admitted = [
            rule["ports"] for rule in rules for peer in rule["from"]
            if "podSelector" in peer and _selects(peer["podSelector"], labels)
        ]  # fmt: skip
        assert admitted == [[{"port": 2181, "protocol": "TCP"}]], (name, admitted)
    operator = [rule for rule in rules if any("namespaceSelector" in p for p in rule["from"])]
    assert operator[0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "orchestrator-system"
    }


def test_no_policy_when_the_cluster_has_them_off() -> None:
    spec = MesosClusterSpec.model_validate({"networkPolicies": {"enabled": False}})
    assert networkpolicy.migration_target(MIGRATION, CLUSTER, spec) == []
