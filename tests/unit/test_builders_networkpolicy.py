"""Issue 17, point 12: the NetworkPolicies the operator makes for a MesosCluster admit to
ZooKeeper, the masters and Marathon only the parts that talk to them (builders/networkpolicy.py
names the Mesos and Marathon behaviour each rule follows), the operator's namespace and the
nodes; `networkPolicies.enabled: false` makes none and retires those made before."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.cluster import build_children, stale_children

OWNER = Owner(name="prod", namespace="mesos", uid="1234")


def _policies(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    children = build_children(OWNER, MesosClusterSpec.model_validate(spec))
    return {c["metadata"]["name"]: c["spec"] for c in children if c["kind"] == "NetworkPolicy"}


def _admitted(policy: dict[str, Any], port: int) -> list[Any]:
    """Every peer the policy admits on `port` (a rule without ports admits every port)."""
    peers = []
    for rule in policy["ingress"]:
        if "ports" not in rule or any(p["port"] == port for p in rule["ports"]):
            for peer in rule["from"]:
                if "podSelector" in peer:
                    selector = peer["podSelector"]
                    assert selector["matchLabels"] == {"app.kubernetes.io/instance": "prod"}
                    (expression,) = selector["matchExpressions"]
                    peers += [f"pod:{c}" for c in expression["values"]]
                elif "namespaceSelector" in peer:
                    labels = peer["namespaceSelector"]["matchLabels"]
                    peers.append(f"namespace:{labels['kubernetes.io/metadata.name']}")
                else:
                    peers.append(f"ip:{peer['ipBlock']['cidr']}")
    return sorted(peers)


def test_zookeeper_admits_its_members_its_clients_the_operator_and_the_nodes() -> None:
    policy = _policies({"networkPolicies": {"nodeCidrs": ["10.0.0.0/16"]}})["prod-zookeeper"]
    assert policy["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "prod",
                        "app.kubernetes.io/component": "zookeeper"},
    }  # fmt: skip
    assert policy["policyTypes"] == ["Ingress"]
    assert _admitted(policy, 2181) == [
        "ip:10.0.0.0/16", "namespace:orchestrator-system", "pod:lb", "pod:marathon",
        "pod:master", "pod:master-b", "pod:mesos-dns", "pod:zookeeper",
    ]  # fmt: skip
    # the quorum and election ports: members only
    assert _admitted(policy, 2888) == _admitted(policy, 3888) == ["pod:zookeeper"]
    assert _admitted(policy, 8080) == []


def test_masters_admit_each_other_their_clients_the_operator_and_the_agents() -> None:
    policy = _policies({"networkPolicies": {"operatorNamespace": "ops"}})["prod-master"]
    expression = policy["podSelector"]["matchExpressions"][0]
    assert expression["values"] == ["master", "master-b"]
    assert _admitted(policy, 5050) == [
        "ip:0.0.0.0/0", "ip:::/0", "namespace:ops", "pod:lb", "pod:marathon",
        "pod:marathon-lb", "pod:master", "pod:master-b", "pod:mesos-dns",
    ]  # fmt: skip
    assert _admitted(policy, 2181) == ["pod:master", "pod:master-b"]


def test_marathon_admits_libprocess_from_masters_and_nodes_and_http_from_its_clients() -> None:
    policy = _policies({"networkPolicies": {"nodeCidrs": ["192.168.0.0/24"]}})["prod-marathon"]
    assert _admitted(policy, 8080) == [
        "ip:192.168.0.0/24", "namespace:orchestrator-system", "pod:lb", "pod:marathon",
        "pod:marathon-lb", "pod:master", "pod:master-b",
    ]  # fmt: skip
    # Marathon's libprocess port is not fixed: any port, from the masters and the nodes only
    assert _admitted(policy, 41234) == ["ip:192.168.0.0/24", "pod:master", "pod:master-b"]


def test_an_external_zookeeper_gets_no_policy() -> None:
    external = {"zookeeper": {"external": {"connectString": "zk:2181"}}}
    assert sorted(_policies(external)) == ["prod-marathon", "prod-master"]


def test_disabled_makes_none_and_retires_those_made_before() -> None:
    spec = MesosClusterSpec.model_validate({"networkPolicies": {"enabled": False}})
    assert _policies({"networkPolicies": {"enabled": False}}) == {}
    stale = {(kind, name) for _, kind, name in stale_children(OWNER, spec)}
    assert {("NetworkPolicy", n) for n in ("prod-zookeeper", "prod-master", "prod-marathon")} <= (
        stale
    )
    assert not any(
        kind == "NetworkPolicy" for _, kind, _ in stale_children(OWNER, MesosClusterSpec())
    )
