"""A MesosCluster's load balancer (spec.loadBalancer): its Deployment, Service and the
ServiceAccount whose Role reads ConfigMaps and EndpointSlices only."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders import loadbalancer
from orchestrator_operator.operator.builders.cluster import build_children, stale_children

OWNER = Owner(name="prod", namespace="mesos", uid="1234")
LB_OBJECTS = {
    ("ServiceAccount", "prod-lb"),
    ("Role", "prod-lb"),
    ("RoleBinding", "prod-lb"),
    ("Service", "prod-lb"),
    ("Deployment", "prod-lb"),
}


def _spec(**lb: Any) -> MesosClusterSpec:
    return MesosClusterSpec.model_validate({"loadBalancer": {"enabled": True, **lb}})


def _children(spec: MesosClusterSpec) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in build_children(OWNER, spec)}


def test_off_by_default_and_its_objects_go_when_it_is_turned_off() -> None:
    spec = MesosClusterSpec.model_validate({})
    assert not spec.load_balancer.enabled
    assert not LB_OBJECTS & set(_children(spec))
    stale = {(kind, name) for _, kind, name in stale_children(OWNER, spec)}
    assert stale >= LB_OBJECTS
    assert not LB_OBJECTS & {(k, n) for _, k, n in stale_children(OWNER, _spec())}


def test_the_pod_runs_haproxy_and_the_lb_sharing_a_volume() -> None:
    children = _children(_spec(groups=["external", "internal"]))
    assert set(children) >= LB_OBJECTS
    pod = children[("Deployment", "prod-lb")]["spec"]["template"]["spec"]
    haproxy, lb = pod["containers"]
    assert haproxy["name"] == "haproxy" and haproxy["image"] == "haproxy:2.6"
    assert "haproxy -W -db -S /var/run/lb/master.sock" in haproxy["command"][2]
    assert lb["name"] == "lb" and lb["image"] == "ghcr.io/orchestrator-dev/orchestrator:0.1.0"
    assert lb["args"][:2] == [
        "lb",
        "--marathon-zk=zk://prod-zookeeper-client.mesos.svc:2181/marathon",
    ]
    assert "--group=external" in lb["args"] and "--group=internal" in lb["args"]
    assert "--cluster=prod" in lb["args"] and "--namespace=mesos" in lb["args"]
    run = {"name": "run", "mountPath": "/var/run/lb"}
    assert run in haproxy["volumeMounts"] and run in lb["volumeMounts"]
    assert {"name": "run", "emptyDir": {"medium": "Memory"}} in pod["volumes"]
    assert pod["serviceAccountName"] == "prod-lb"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert lb["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 9091}
    service = children[("Service", "prod-lb")]["spec"]
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["ports"]}
    assert ports["http"] == (80, 8080) and ports["https"] == (443, 8443)
    assert ports["stats"] == (9090, 9090) and ports["svc-10000"] == (10000, 10000)
    assert len(service["ports"]) == 4 + 101


def test_the_role_reads_configmaps_and_endpointslices_and_nothing_else() -> None:
    children = _children(_spec())
    rules = children[("Role", "prod-lb")]["rules"]
    assert rules == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    binding = children[("RoleBinding", "prod-lb")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prod-lb", "namespace": "mesos"}
    ]


def test_tls_and_marathon_credentials_are_mounted_files_never_args() -> None:
    spec = MesosClusterSpec.model_validate(
        {
            "loadBalancer": {"enabled": True, "tlsSecretRef": {"name": "web-tls"}},
            "marathon": {"credentialsSecretRef": {"name": "marathon-http", "key": "credentials"}},
        }
    )
    pod = _children(spec)[("Deployment", "prod-lb")]["spec"]["template"]["spec"]
    lb = pod["containers"][1]
    assert "--tls-dir=/etc/orchestrator/lb-tls" in lb["args"]
    assert "--marathon-credentials-file=/etc/orchestrator/marathon/credentials" in lb["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "web-tls"
    assert volumes["marathon-credentials"]["secret"]["secretName"] == "marathon-http"
    assert "marathon-http" not in " ".join(lb["args"])


def test_with_zookeeper_credentials_the_url_is_a_file_written_at_pod_start() -> None:
    spec = MesosClusterSpec.model_validate(
        {
            "loadBalancer": {"enabled": True},
            "zookeeper": {
                "external": {
                    "connectString": "zk-0.example:2181",
                    "authSecretRef": {"name": "zk-auth", "key": "digest"},
                }
            },
        }
    )
    pod = _children(spec)[("Deployment", "prod-lb")]["spec"]["template"]["spec"]
    assert "--marathon-zk=file:///run/orchestrator/zk/marathon" in pod["containers"][1]["args"]
    assert pod["initContainers"][0]["name"] == "zk-url"


@pytest.mark.parametrize(
    ("lb", "message"),
    [
        ({"groups": []}, "at least 1"),
        ({"groups": ["bad group"]}, "pattern"),
        ({"replicas": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused(lb: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MesosClusterSpec.model_validate({"loadBalancer": lb})


def test_builder_is_empty_when_disabled() -> None:
    assert loadbalancer.build(OWNER, MesosClusterSpec.model_validate({})) == []
