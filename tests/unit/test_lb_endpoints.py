"""The off-ramp's side of the load balancer (pure): the traffic ConfigMap's `kubernetes`
entry, a Service's EndpointSlices as servers, and the two sides weighted in one backend."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator_operator.lb import config as cfg
from orchestrator_operator.lb.endpoints import endpoint_servers
from orchestrator_operator.lb.weights import (
    DEFAULT_WEIGHT,
    KubernetesShare,
    TrafficError,
    expected_shares,
    parse_traffic,
)

SHARE = KubernetesShare("web", None, 50)


def endpoint(ip: str, pod: str, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "conditions": conditions, "targetRef": {"kind": "Pod", "name": pod}}


def slice_(
    name: str, service: str, endpoints: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "port0", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
        **extra,
    }


def test_the_kubernetes_entry_is_parsed_with_the_weights_summing_to_100() -> None:
    body = {
        "group": "/web",
        "weights": {"/web": 30},
        "kubernetes": {"service": "web", "port": "http", "weight": 70},
    }
    traffic = parse_traffic("web-traffic", {"weights.json": json.dumps(body)})
    assert traffic.group == "/web"
    assert traffic.weights == {"/web": 30}
    assert traffic.kubernetes == KubernetesShare("web", "http", 70)
    assert traffic.kubernetes.app_id == "kubernetes:web"
    # A ConfigMap without it reads as before.
    plain = parse_traffic("t", {"weights.json": json.dumps({"group": "g", "weights": {"/a": 100}})})
    assert plain.kubernetes is None


@pytest.mark.parametrize(
    ("kubernetes", "message"),
    [
        ({"service": "web", "weight": 40}, r"weights \(with kubernetes.weight\) sum to 90"),
        ("web", "must be an object"),
        ({"service": "Web_1", "weight": 50}, "'service' must be a Service name"),
        ({"service": "x" * 64, "weight": 50}, "'service' must be a Service name"),
        ({"service": "web", "weight": 50, "port": "a" * 16}, "'port' must be a port name"),
        ({"service": "web", "weight": 50, "port": 8080}, "'port' must be a port name"),
        ({"service": "web", "weight": 101}, "'weight' must be an integer 0-100"),
        ({"service": "web", "weight": True}, "'weight' must be an integer 0-100"),
        ({"service": "web", "weight": 50, "namespace": "x"}, r"unknown keys \['namespace'\]"),
    ],
)
def test_a_bad_kubernetes_entry_says_what_is_wrong(kubernetes: Any, message: str) -> None:
    body = {"group": "/web", "weights": {"/web": 50}, "kubernetes": kubernetes}
    with pytest.raises(TrafficError, match=message):
        parse_traffic("web-traffic", {"weights.json": json.dumps(body)})


def test_ready_endpoints_serve_terminating_ones_drain_the_rest_are_left_out() -> None:
    slices = [
        slice_(
            "web-abc",
            "web",
            [
                endpoint("10.1.0.1", "web-1", ready=True),
                endpoint("10.1.0.2", "web-2"),  # unknown: read as ready (the API says so)
                endpoint("10.1.0.3", "web-3", ready=False, serving=True, terminating=True),
                endpoint("10.1.0.4", "web-4", ready=False),  # starting, not ready
                endpoint("10.1.0.5", "web-5", ready=False, serving=False, terminating=True),
            ],
        ),
        slice_("other-abc", "other", [endpoint("10.2.0.1", "other-1", ready=True)]),
        slice_("web-v6", "web", [endpoint("fd00::1", "web-6")], addressType="IPv6"),
    ]
    servers = endpoint_servers(slices, SHARE)
    assert [(s.host, s.port, s.state, s.app_id) for s in servers] == [
        ("10.1.0.1", 8080, cfg.READY, "kubernetes:web"),
        ("10.1.0.2", 8080, cfg.READY, "kubernetes:web"),
        ("10.1.0.3", 8080, cfg.DRAIN, "kubernetes:web"),
    ]


def test_the_port_is_the_named_one_else_the_only_else_port0() -> None:
    two = slice_("web-a", "web", [endpoint("10.1.0.1", "web-1", ready=True)])
    two["ports"] = [{"name": "admin", "port": 9000}, {"name": "port0", "port": 8080}]
    assert [s.port for s in endpoint_servers([two], SHARE)] == [8080]
    assert [s.port for s in endpoint_servers([two], KubernetesShare("web", "admin", 1))] == [9000]
    assert endpoint_servers([two], KubernetesShare("web", "nope", 1)) == []


def marathon_app(tasks: int) -> dict[str, Any]:
    return {
        "id": "/web",
        "labels": {"HAPROXY_0_PORT": "10001"},
        "tasks": [
            {"id": f"web.{n}", "host": "10.0.0.1", "ports": [31000 + n], "state": "TASK_RUNNING"}
            for n in range(tasks)
        ],
    }


@pytest.mark.parametrize(("kube_weight", "tasks", "pods"), [(10, 3, 2), (50, 2, 2), (75, 1, 4)])
def test_marathon_tasks_and_pods_share_one_backend_by_the_configmap(
    kube_weight: int, tasks: int, pods: int
) -> None:
    """A lone app's backend takes the weights of the ConfigMap whose group is the app id."""
    slices = [
        slice_(
            "web-a", "web", [endpoint(f"10.1.0.{n}", f"web-{n}", ready=True) for n in range(pods)]
        )
    ]
    kube = endpoint_servers(slices, KubernetesShare("web", None, kube_weight))
    weights = {"/web": {"/web": 100 - kube_weight, "kubernetes:web": kube_weight}}
    plan = cfg.build_plan([marathon_app(tasks)], weights, ["external"], kubernetes={"/web": kube})
    (backend,) = plan.backends
    assert backend.apps == ("/web", "kubernetes:web")
    per_app = {s.app_id: s.weight for s in backend.servers}
    counts = {"/web": tasks, "kubernetes:web": pods}
    shares = expected_shares(per_app, counts)
    assert abs(shares["kubernetes:web"] - kube_weight / 100) < 0.01, shares


def test_all_on_kubernetes_with_marathon_scaled_to_zero_and_no_pod_ready_falls_back() -> None:
    weights = {"/web": {"/web": 0, "kubernetes:web": 100}}
    ready = endpoint_servers(
        [slice_("web-a", "web", [endpoint("10.1.0.1", "web-1", ready=True)])], SHARE
    )
    plan = cfg.build_plan([marathon_app(0)], weights, ["external"], kubernetes={"/web": ready})
    assert [(s.host, s.weight) for s in plan.backends[0].servers] == [("10.1.0.1", 256)]
    # No pod ready and the tasks still there: the tasks serve (a stale ConfigMap does not
    # take the service down).
    plan = cfg.build_plan([marathon_app(2)], weights, ["external"], kubernetes={"/web": []})
    assert {s.weight for s in plan.backends[0].servers} == {DEFAULT_WEIGHT}
    assert plan.backends[0].apps == ("/web", "kubernetes:web")
