"""MesosCluster addons against the real control plane: enabling Mesos-DNS and marathon-lb
makes their objects, owned by the cluster; disabling one deletes its objects."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
import yaml

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import eventually, get_json

pytestmark = [pytest.mark.kube]

NAME = "addons-e2e"
MESOS_DNS = [
    ("configmap", f"{NAME}-mesos-dns"),
    ("service", f"{NAME}-mesos-dns"),
    ("deployment", f"{NAME}-mesos-dns"),
]
MARATHON_LB = [
    ("service", f"{NAME}-marathon-lb"),
    ("poddisruptionbudget", f"{NAME}-marathon-lb"),
    ("deployment", f"{NAME}-marathon-lb"),
]


def _apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr


def test_enabled_addons_are_made_and_a_disabled_one_is_deleted(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    # Nothing needs to answer on the external ensemble: only the objects are checked.
    _apply(kube_env, {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": NAME, "namespace": "default"},
        "spec": {
            "zookeeper": {"external": {"connectString": "127.0.0.1:2181"}},
            "masters": {"replicas": 1},
            "addons": {
                "mesosDns": {"enabled": True, "replicas": 1, "resolvers": ["10.0.0.10"]},
                "marathonLb": {"enabled": True, "replicas": 1, "serviceType": "NodePort",
                               "servicePorts": {"start": 10000, "end": 10004}},
            },
        },
    })  # fmt: skip
    uid = (get_json(kube_env, "mc", NAME) or {})["metadata"]["uid"]
    for kind, name in MESOS_DNS + MARATHON_LB:
        child = eventually(functools.partial(get_json, kube_env, kind, name), 60, f"{kind}/{name}")
        owners = child["metadata"].get("ownerReferences", [])
        assert [(o["kind"], o["name"], o["uid"], o.get("controller")) for o in owners] == [
            ("MesosCluster", NAME, uid, True)
        ], f"{kind}/{name}"

    config_map = get_json(kube_env, "configmap", f"{NAME}-mesos-dns") or {}
    config = json.loads(config_map["data"]["config.json"])
    assert config["zk"] == "zk://127.0.0.1:2181/mesos"
    assert config["masters"] == [f"{NAME}-master.default.svc:5050"]
    assert config["resolvers"] == ["10.0.0.10"]
    dns_service = get_json(kube_env, "service", f"{NAME}-mesos-dns") or {}
    assert {(p["port"], p["protocol"]) for p in dns_service["spec"]["ports"]} == {
        (53, "UDP"), (53, "TCP"), (8123, "TCP"),
    }  # fmt: skip

    lb = get_json(kube_env, "deployment", f"{NAME}-marathon-lb") or {}
    args = lb["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == [
        "sse", "--marathon", f"http://{NAME}-marathon.default.svc:8080", "--group", "external",
    ]  # fmt: skip
    assert get_json(kube_env, "service", f"{NAME}-marathon") is not None
    lb_service = get_json(kube_env, "service", f"{NAME}-marathon-lb") or {}
    assert lb_service["spec"]["type"] == "NodePort"
    assert [p["port"] for p in lb_service["spec"]["ports"]] == [
        80, 443, 9090, 10000, 10001, 10002, 10003, 10004,
    ]  # fmt: skip

    # Someone else's Service under the name the cluster's load balancer would have (it is
    # not enabled, so a reconcile counts that name among the stale ones): not the cluster's,
    # so the operator must leave it.
    _apply(kube_env, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"{NAME}-lb", "namespace": "default"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "someone-else"}},
    })  # fmt: skip
    foreign = get_json(kube_env, "service", f"{NAME}-lb") or {}

    # Disabling Mesos-DNS deletes its objects; marathon-lb stays as it is.
    patch = {"spec": {"addons": {"mesosDns": {"enabled": False}}}}
    patched = kube_env.kubectl_run("patch", "mc", NAME, "--type=merge", "-p", json.dumps(patch))
    assert patched.returncode == 0, patched.stderr

    def mesos_dns_gone() -> bool:
        return all(get_json(kube_env, kind, name) is None for kind, name in MESOS_DNS)

    eventually(mesos_dns_gone, 60, "the Mesos-DNS objects deleted")
    for kind, name in MARATHON_LB:
        assert get_json(kube_env, kind, name) is not None, f"{kind}/{name}"
    lb_now = get_json(kube_env, "deployment", f"{NAME}-marathon-lb") or {}
    assert lb_now["metadata"]["uid"] == lb["metadata"]["uid"]
    kept = get_json(kube_env, "service", f"{NAME}-lb") or {}
    assert kept.get("metadata", {}).get("uid") == foreign["metadata"]["uid"]
    kube_env.kubectl_run("delete", "service", f"{NAME}-lb")


def test_a_reversed_service_port_range_is_refused_by_the_api_server(kube_env: KubeTestEnv) -> None:
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": f"{NAME}-bad", "namespace": "default"},
        "spec": {"addons": {"marathonLb": {"servicePorts": {"start": 10100, "end": 10000}}}},
    }
    result = kube_env.kubectl_run(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(manifest)
    )
    assert result.returncode != 0
    assert "end must be at least start" in result.stderr, result.stderr
