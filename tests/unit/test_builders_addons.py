"""Mesos-DNS and marathon-lb: the optional addons of a MesosCluster, from spec to manifests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders import addons
from orchestrator_operator.operator.builders.cluster import build_children, stale_children
from orchestrator_operator.operator.zkmigration.machine import routing_for

OWNER = Owner(name="prod", namespace="mesos", uid="1234")
BOTH = {"addons": {"mesosDns": {"enabled": True}, "marathonLb": {"enabled": True}}}
ADDON_OBJECTS = [
    ("ConfigMap", "prod-mesos-dns"), ("Service", "prod-mesos-dns"),
    ("Deployment", "prod-mesos-dns"), ("Service", "prod-marathon-lb"),
    ("PodDisruptionBudget", "prod-marathon-lb"), ("Deployment", "prod-marathon-lb"),
]  # fmt: skip


def _spec(raw: dict[str, Any]) -> MesosClusterSpec:
    return MesosClusterSpec.model_validate(raw)


def _by_kind_and_name(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return container


def _config(children: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(
        children["ConfigMap", "prod-mesos-dns"]["data"]["config.json"]
    )
    return config


def test_the_addons_spec_of_today_stays_valid_and_off_by_default() -> None:
    spec = _spec({"addons": {"mesosDns": {"enabled": True}, "marathonLb": {"enabled": False}}})
    assert spec.addons.mesos_dns.enabled and not spec.addons.marathon_lb.enabled
    default = _spec({}).addons
    assert not default.mesos_dns.enabled and not default.marathon_lb.enabled
    assert default.mesos_dns.image_ref == "mesosphere/mesos-dns:v0.9.0"
    assert default.marathon_lb.image_ref == "mesosphere/marathon-lb:v1.15.0"
    assert (default.mesos_dns.replicas, default.marathon_lb.replicas) == (2, 2)
    with pytest.raises(ValidationError):
        _spec({"addons": {"marathonLb": {"serviceType": "ExternalName"}}})
    with pytest.raises(ValidationError):
        _spec({"addons": {"mesosDns": {"resolvers": ["not an address"]}}})


def test_disabled_addons_build_nothing() -> None:
    children = _by_kind_and_name(build_children(OWNER, _spec({"addons": {}})))
    assert not [key for key in children if "mesos-dns" in key[1] or "marathon-lb" in key[1]]


def test_both_addons_are_owned_labelled_and_come_after_marathon() -> None:
    # the NetworkPolicies come last (builders/networkpolicy.py)
    children = [c for c in build_children(OWNER, _spec(BOTH)) if c["kind"] != "NetworkPolicy"]
    names = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert names[-6:] == ADDON_OBJECTS
    assert names.index(("Deployment", "prod-marathon")) < names.index(ADDON_OBJECTS[0])
    for child in children[-6:]:
        assert child["metadata"]["namespace"] == "mesos"
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "MesosCluster", "prod", "1234", True,
        )  # fmt: skip
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "orchestrator"
        assert labels["app.kubernetes.io/instance"] == "prod"


def test_mesos_dns_config_finds_the_leader_in_zookeeper_and_falls_back_to_the_masters() -> None:
    spec = _spec({
        "zookeeper": {"external": {"connectString": "zk1:2181,zk2:2181"}},
        "masters": {"zkPath": "/mesos-prod"},
        "addons": {"mesosDns": {"enabled": True, "domain": "mesos.example",
                                "resolvers": ["10.0.0.10", "8.8.8.8"], "refreshSeconds": 30}},
    })  # fmt: skip
    config = _config(_by_kind_and_name(build_children(OWNER, spec)))
    assert config["zk"] == "zk://zk1:2181,zk2:2181/mesos-prod"
    assert config["masters"] == ["prod-master.mesos.svc:5050"]
    assert config["refreshSeconds"] == 30
    assert config["domain"] == "mesos.example"
    assert config["resolvers"] == ["10.0.0.10", "8.8.8.8"]
    assert (config["listener"], config["port"]) == ("0.0.0.0", 53)
    assert (config["httpon"], config["httpport"]) == (True, 8123)
    assert config["IPSources"] == ["netinfo", "mesos", "host"]


def test_mesos_dns_without_resolvers_uses_the_pods_nameserver() -> None:
    config = _config(_by_kind_and_name(build_children(OWNER, _spec(BOTH))))
    assert "resolvers" not in config
    assert config["zk"] == "zk://prod-zookeeper-client.mesos.svc:2181/mesos"
    assert (config["domain"], config["refreshSeconds"]) == ("mesos", 60)


def test_mesos_dns_deployment_and_service() -> None:
    children = _by_kind_and_name(build_children(OWNER, _spec(BOTH)))
    deployment = children["Deployment", "prod-mesos-dns"]
    assert deployment["spec"]["replicas"] == 2
    container = _container(deployment)
    assert container["args"] == ["-config=/config/config.json"]
    assert container["image"] == "mesosphere/mesos-dns:v0.9.0"
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"] if "protocol" in p} == {
        (53, "UDP"), (53, "TCP"),
    }  # fmt: skip
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/version", "port": 8123}
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "config", "configMap": {"name": "prod-mesos-dns"}}]
    service = children["Service", "prod-mesos-dns"]["spec"]
    assert {(p["port"], p.get("protocol", "TCP")) for p in service["ports"]} == {
        (53, "UDP"), (53, "TCP"), (8123, "TCP"),
    }  # fmt: skip
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_a_changed_mesos_dns_config_rolls_its_pods() -> None:
    def annotations(raw: dict[str, Any]) -> dict[str, str]:
        children = _by_kind_and_name(build_children(OWNER, _spec(raw)))
        template = children["Deployment", "prod-mesos-dns"]["spec"]["template"]
        return dict(template["metadata"]["annotations"])

    changed = {"addons": {"mesosDns": {"enabled": True, "refreshSeconds": 10}}}
    assert annotations(BOTH) != annotations(changed)


def test_marathon_lb_watches_the_clusters_marathon_service() -> None:
    spec = _spec({"addons": {"marathonLb": {"enabled": True, "group": "internal"}}})
    children = _by_kind_and_name(build_children(OWNER, spec))
    deployment = children["Deployment", "prod-marathon-lb"]
    container = _container(deployment)
    assert container["args"] == [
        "sse", "--marathon", "http://prod-marathon.mesos.svc:8080", "--group", "internal",
    ]  # fmt: skip
    # The URL is the cluster's Marathon Service, by its name and port.
    marathon = children["Service", "prod-marathon"]
    assert addons.marathon_url(OWNER) == (
        f"http://{marathon['metadata']['name']}.mesos.svc:{marathon['spec']['ports'][0]['port']}"
    )
    assert deployment["spec"]["template"]["spec"]["hostNetwork"] is False
    assert {p["containerPort"] for p in container["ports"]} == {80, 443, 9090}
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/_haproxy_health_check", "port": 9090,
    }  # fmt: skip
    assert {"name": "PORTS", "value": "80,443,9090"} in container["env"]
    assert children["PodDisruptionBudget", "prod-marathon-lb"]["spec"]["maxUnavailable"] == 1


def test_marathon_lb_service_type_and_service_ports() -> None:
    default = _by_kind_and_name(build_children(OWNER, _spec(BOTH)))["Service", "prod-marathon-lb"]
    assert default["spec"]["type"] == "ClusterIP"
    ports = [p["port"] for p in default["spec"]["ports"]]
    assert ports[:3] == [80, 443, 9090]
    assert ports[3:] == list(range(10000, 10101))
    assert all(len(p["name"]) <= 15 for p in default["spec"]["ports"])
    ports_20000 = {"start": 20000, "end": 20002}
    lb = {"enabled": True, "serviceType": "LoadBalancer", "servicePorts": ports_20000}
    spec = _spec({"addons": {"marathonLb": lb}})
    service = _by_kind_and_name(build_children(OWNER, spec))["Service", "prod-marathon-lb"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert [p["port"] for p in service["spec"]["ports"]] == [80, 443, 9090, 20000, 20001, 20002]


def test_marathon_lb_authenticates_to_a_marathon_with_credentials() -> None:
    spec = _spec({
        "marathon": {"credentialsSecretRef": {"name": "marathon", "key": "credentials"}},
        "addons": {"marathonLb": {"enabled": True}},
    })  # fmt: skip
    deployment = _by_kind_and_name(addons.build(OWNER, spec))["Deployment", "prod-marathon-lb"]
    container = _container(deployment)
    # The password is read from a file (marathon-lb common.py, --marathon-auth-credential-file),
    # never in argv, where anyone who can list the node's processes reads it.
    assert container["args"][-2:] == [
        "--marathon-auth-credential-file",
        "/etc/marathon-lb/credentials/marathon",
    ]
    assert not [e for e in container.get("env", []) if "valueFrom" in e]
    assert "--auth-credentials" not in container["args"]
    (mount,) = container["volumeMounts"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/marathon-lb/credentials", True)
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["secret"]["secretName"] == "marathon"
    assert volume["secret"]["items"] == [{"key": "credentials", "path": "marathon"}]
    assert volume["secret"]["defaultMode"] == 0o400


def test_disabling_an_addon_makes_its_objects_stale() -> None:
    assert not [s for s in stale_children(OWNER, _spec(BOTH)) if "mesos-dns" in s[2]]
    only_lb = {"addons": {"mesosDns": {"enabled": False}, "marathonLb": {"enabled": True}}}
    # (the load balancer of spec.loadBalancer and the egress policies, off here, are always
    # stale too: test_lb_builder, test_builders_networkpolicy)
    stale = {
        (k, n)
        for _, k, n in stale_children(OWNER, _spec(only_lb))
        if n != "prod-lb" and not n.endswith("-egress")
    }
    assert stale == {
        ("ConfigMap", "prod-mesos-dns"), ("Service", "prod-mesos-dns"),
        ("Deployment", "prod-mesos-dns"),
    }  # fmt: skip
    off = [
        s
        for s in stale_children(OWNER, _spec({"addons": {}}))
        if s[2] != "prod-lb" and not s[2].endswith("-egress")
    ]
    both_off = {(kind, name) for _, kind, name in off}
    assert both_off == set(ADDON_OBJECTS)
    versions = {(v, k) for v, k, _ in off}
    assert versions == {
        ("v1", "ConfigMap"), ("v1", "Service"), ("apps/v1", "Deployment"),
        ("policy/v1", "PodDisruptionBudget"),
    }  # fmt: skip


def test_removing_the_whole_addons_block_deletes_the_addons() -> None:
    stale = {name for _, _, name in stale_children(OWNER, _spec({}))}
    assert {"prod-mesos-dns", "prod-marathon-lb"} <= stale


def test_addons_follow_marathon_through_a_migration() -> None:
    a, b = "a1:2181", "b1:2181"
    spec = _spec({"zookeeper": {"external": {"connectString": a}}, **BOTH})
    before = _config(
        _by_kind_and_name(build_children(OWNER, spec, routing_for(2, "m", b, 3, "master")))
    )
    assert before["zk"] == f"zk://{a}/mesos"
    assert before["masters"] == ["prod-master.mesos.svc:5050"]
    moved = _config(
        _by_kind_and_name(build_children(OWNER, spec, routing_for(4, "m", b, 3, "master")))
    )
    assert moved["zk"] == f"zk://{b}/mesos"
    assert moved["masters"] == ["prod-master-b.mesos.svc:5050"]
    on_b = _spec({"zookeeper": {"external": {"connectString": b}}, **BOTH})
    after = _config(
        _by_kind_and_name(build_children(OWNER, on_b, routing_for(6, "m", b, 3, "master")))
    )
    assert after == moved
    # The routing's own stale masters set is still found, the enabled addons are not stale.
    stale = {
        (kind, name)
        for _, kind, name in stale_children(OWNER, on_b, routing_for(6, "m", b, 3, "master"))
    }
    assert ("StatefulSet", "prod-master") in stale
    assert not [name for _, name in stale if "mesos-dns" in name or "marathon-lb" in name]
