"""Issue 17, point 12: the NetworkPolicies the operator makes for a MesosCluster admit to
ZooKeeper, the masters and Marathon only the parts that talk to them (builders/networkpolicy.py
names the Mesos and Marathon behaviour each rule follows), the operator's namespace and the
nodes; `networkPolicies.enabled: false` makes none and retires those made before."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
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
    # a default spec retires only the egress policies it does not ask for
    default = {name for _, kind, name in stale_children(OWNER, MesosClusterSpec())
               if kind == "NetworkPolicy"}  # fmt: skip
    assert default == {"prod-zookeeper-egress", "prod-master-egress", "prod-marathon-egress"}


# Egress (spec.networkPolicies.egress): what ZooKeeper, the masters and Marathon open
# connections to.

EGRESS = {"networkPolicies": {"egress": True, "nodeCidrs": ["10.0.0.0/16"]}}
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def _reached(policy: dict[str, Any], port: int, protocol: str = "TCP") -> list[Any]:
    """Every destination the policy lets its pods open on `port` (no ports: every port; a
    protocol without a port: its every port)."""
    peers = []
    for rule in policy["egress"]:
        ports = rule.get("ports")
        if ports is None or any(
            p.get("port", port) == port and p["protocol"] == protocol for p in ports
        ):
            for peer in rule["to"]:
                if peer == DNS_PEER:
                    peers.append("kube-dns")
                elif "podSelector" in peer:
                    selector = peer["podSelector"]
                    (expression,) = selector["matchExpressions"]
                    instance = selector["matchLabels"]["app.kubernetes.io/instance"]
                    peers += [f"pod:{instance}/{c}" for c in expression["values"]]
                else:
                    peers.append(f"ip:{peer['ipBlock']['cidr']}")
    return sorted(peers)


def test_egress_is_off_by_default_so_an_upgrade_changes_nothing() -> None:
    assert sorted(_policies({})) == ["prod-marathon", "prod-master", "prod-zookeeper"]
    assert all(p["policyTypes"] == ["Ingress"] for p in _policies({}).values())
    # egress without the policies themselves: none at all
    assert _policies({"networkPolicies": {"enabled": False, "egress": True}}) == {}


def test_zookeeper_reaches_dns_and_its_members_quorum_ports_only() -> None:
    policy = _policies(EGRESS)["prod-zookeeper-egress"]
    assert policy["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "prod",
                        "app.kubernetes.io/component": "zookeeper"},
    }  # fmt: skip
    assert policy["policyTypes"] == ["Egress"]
    assert _reached(policy, 53, "UDP") == _reached(policy, 53) == ["kube-dns"]
    assert _reached(policy, 2888) == _reached(policy, 3888) == ["pod:prod/zookeeper"]
    assert _reached(policy, 2181) == []
    assert _reached(policy, 443) == []


def test_masters_reach_zookeeper_each_other_the_agents_and_marathon() -> None:
    spec = {"networkPolicies": {"egress": True, "nodeCidrs": ["10.0.0.0/16"]},
            "agents": {"port": 5052}}  # fmt: skip
    policy = _policies(spec)["prod-master-egress"]
    assert policy["podSelector"]["matchExpressions"][0]["values"] == ["master", "master-b"]
    assert _reached(policy, 53, "UDP") == ["kube-dns"]
    assert _reached(policy, 2181) == ["pod:prod/marathon", "pod:prod/zookeeper"]
    assert _reached(policy, 5050) == [
        "pod:prod/marathon", "pod:prod/master", "pod:prod/master-b",
    ]  # fmt: skip
    # the agents' libprocess port on the nodes, not any other port there
    assert _reached(policy, 5052) == ["ip:10.0.0.0/16", "pod:prod/marathon"]
    assert _reached(policy, 31000) == ["pod:prod/marathon"]  # the scheduler's libprocess port
    assert _reached(policy, 2888) == ["pod:prod/marathon"]


def test_marathon_reaches_zookeeper_the_masters_its_peers_and_the_tasks() -> None:
    policy = _policies(EGRESS)["prod-marathon-egress"]
    assert policy["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "prod",
                        "app.kubernetes.io/component": "marathon"},
    }  # fmt: skip
    assert _reached(policy, 53, "UDP") == ["kube-dns"]
    assert _reached(policy, 2181) == ["ip:10.0.0.0/16", "pod:prod/zookeeper"]
    assert _reached(policy, 5050) == ["ip:10.0.0.0/16", "pod:prod/master", "pod:prod/master-b"]
    assert _reached(policy, 8080) == ["ip:10.0.0.0/16", "pod:prod/marathon"]
    # health and readiness checks: any port of the tasks on the nodes, nothing else
    assert _reached(policy, 31000) == ["ip:10.0.0.0/16"]
    assert _reached(policy, 31000, "UDP") == []


def test_an_external_ensemble_is_reached_by_its_cidrs_or_on_its_ports_anywhere() -> None:
    external = {"external": {"connectString": "zk-1.example:2181,zk-2.example:2182/mesos"}}
    policies = _policies({"networkPolicies": {"egress": True}, "zookeeper": external})
    assert "prod-zookeeper-egress" not in policies
    master = policies["prod-master-egress"]
    assert _reached(master, 2181) == _reached(master, 2182) == [
        "ip:0.0.0.0/0", "ip:::/0", "pod:prod/marathon",
    ]  # fmt: skip
    assert "pod:prod/zookeeper" not in _reached(master, 2181)
    narrowed = {"egress": True, "zookeeperCidrs": ["192.0.2.0/28"]}
    policies = _policies({"networkPolicies": narrowed, "zookeeper": external})
    for name in ("prod-master-egress", "prod-marathon-egress"):
        assert "ip:192.0.2.0/28" in _reached(policies[name], 2182)
    # the ensemble's port: the given CIDRs only (Marathon also reaches any TCP port on the
    # nodes, which are anywhere without nodeCidrs, so the masters show it)
    assert _reached(policies["prod-master-egress"], 2182) == [
        "ip:192.0.2.0/28",
        "pod:prod/marathon",
    ]


def test_a_running_migration_adds_ensemble_b() -> None:
    spec = MesosClusterSpec.model_validate(EGRESS)

    def masters_on_2181(routing: ZkRouting) -> list[Any]:
        children = build_children(OWNER, spec, routing)
        (policy,) = [c["spec"] for c in children if c["metadata"]["name"] == "prod-master-egress"]
        return _reached(policy, 2181)

    managed_b = ZkRouting(migration="move", target="move-zookeeper-client.mesos.svc:2181")
    assert masters_on_2181(managed_b) == [
        "pod:move/zookeeper", "pod:prod/marathon", "pod:prod/zookeeper",
    ]  # fmt: skip
    external_b = ZkRouting(migration="move", target="b.example:2181")
    assert masters_on_2181(external_b) == [
        "ip:0.0.0.0/0", "ip:::/0", "pod:prod/marathon", "pod:prod/zookeeper",
    ]  # fmt: skip


def test_egress_switched_off_retires_the_egress_policies_only() -> None:
    off = MesosClusterSpec.model_validate({"networkPolicies": {"egress": False}})
    stale = {name for _, kind, name in stale_children(OWNER, off) if kind == "NetworkPolicy"}
    assert stale == {"prod-zookeeper-egress", "prod-master-egress", "prod-marathon-egress"}
    on = MesosClusterSpec.model_validate(EGRESS)
    assert not any(kind == "NetworkPolicy" for _, kind, _ in stale_children(OWNER, on))
