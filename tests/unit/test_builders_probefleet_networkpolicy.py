"""Issue 17, points 8 and 12: a ProbeFleet's monitoring app gets an Ingress NetworkPolicy
that admits its one port (UI, API, the probes' ingest and control channel, /metrics) from
the probes (the nodes' addresses: they use the host's network), the operator's namespace
(its /healthz reads), Prometheus' namespaces and whom `app.networkPolicy.allowFrom` names
(by default the fleet's own namespace); `enabled: false` makes none and retires it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.operator.builders.probefleet import (
    build_children,
    fleet_owner,
    stale_children,
)

OWNER = fleet_owner("scope", "monitoring", "1234")


def _policy(app: dict[str, Any]) -> dict[str, Any] | None:
    spec = ProbeFleetSpec.model_validate({"app": app})
    policies = [c for c in build_children(OWNER, spec) if c["kind"] == "NetworkPolicy"]
    assert len(policies) <= 1
    return policies[0] if policies else None


def _admitted(policy: dict[str, Any], port: int) -> list[Any]:
    """Every peer admitted on `port`, each rule's ports checked to be exactly that port."""
    peers: list[Any] = []
    for rule in policy["spec"]["ingress"]:
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
        peers += rule["from"]
    return peers


def test_default_admits_the_nodes_the_operator_prometheus_and_the_fleets_namespace() -> None:
    policy = _policy({})
    assert policy is not None
    assert policy["metadata"]["name"] == "scope-app"
    assert policy["metadata"]["namespace"] == "monitoring"
    assert [
        (o["kind"], o["name"], o["controller"]) for o in policy["metadata"]["ownerReferences"]
    ] == [("ProbeFleet", "scope", True)]
    # the app's pods, as its Deployment selects them
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "scope", "app.kubernetes.io/component": "app"}
    }
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert _admitted(policy, 4040) == [
        {"ipBlock": {"cidr": "0.0.0.0/0"}},  # the probes: the host's network, no nodeCidrs
        {"ipBlock": {"cidr": "::/0"}},
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "orchestrator-system"}
            }
        },
        {"namespaceSelector": {"matchLabels": {"orchestrator.dev/monitoring": "true"}}},
        {"podSelector": {}},  # the fleet's own namespace: the UI's and API's users
    ]


def test_the_selected_port_follows_the_apps_port_and_the_probes_their_nodes() -> None:
    policy = _policy(
        {"port": 8443, "networkPolicy": {"nodeCidrs": ["10.0.0.0/16", "fd00::/64"],
                                         "operatorNamespace": "ops"}}
    )  # fmt: skip
    assert policy is not None
    peers = _admitted(policy, 8443)
    assert peers[:3] == [
        {"ipBlock": {"cidr": "10.0.0.0/16"}},
        {"ipBlock": {"cidr": "fd00::/64"}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}},
    ]
    assert {"ipBlock": {"cidr": "0.0.0.0/0"}} not in peers


def test_allow_from_replaces_the_default_users_and_keeps_their_peers_as_written() -> None:
    allow = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
        {"namespaceSelector": {"matchLabels": {"team": "ops"}},
         "podSelector": {"matchExpressions": [{"key": "role", "operator": "In",
                                               "values": ["grafana"]}]}},
        {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.8/29"]}},
    ]  # fmt: skip
    policy = _policy({"networkPolicy": {"allowFrom": allow, "monitoringNamespaceLabels": {}}})
    assert policy is not None
    peers = _admitted(policy, 4040)
    assert peers[3:] == allow  # no Prometheus rule (empty labels), no default namespace peer
    assert {"podSelector": {}} not in peers
    nobody = _policy({"networkPolicy": {"allowFrom": [], "monitoringNamespaceLabels": {}}})
    assert nobody is not None
    assert len(nobody["spec"]["ingress"]) == 2  # the probes and the operator only


@pytest.mark.parametrize(
    "peer",
    [{}, {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0"}}],
)
def test_a_malformed_peer_is_refused_naming_the_field(peer: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="allowFrom"):
        ProbeFleetSpec.model_validate({"app": {"networkPolicy": {"allowFrom": [peer]}}})


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"monitoringNamespaceLabels": {"not a key": "x"}}, "monitoringNamespaceLabels"),
        ({"monitoringNamespaceLabels": {"team": "a value!"}}, "monitoringNamespaceLabels.team"),
        ({"allowFrom": [{"namespaceSelector": {"matchLabels": {"/x": "y"}}}]}, "matchLabels"),
        ({"nodeCidrs": ["10.0.0.0"]}, "nodeCidrs.0"),
    ],
)
def test_labels_and_cidrs_are_checked_before_the_api_server_sees_them(
    policy: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=f"app.networkPolicy.*{field}"):
        ProbeFleetSpec.model_validate({"app": {"networkPolicy": policy}})


def test_disabled_makes_none_and_retires_the_one_made_before() -> None:
    assert _policy({"networkPolicy": {"enabled": False}}) is None
    off = ProbeFleetSpec.model_validate({"app": {"networkPolicy": {"enabled": False}}})
    assert stale_children(OWNER, off) == [("networking.k8s.io/v1", "NetworkPolicy", "scope-app")]
    assert stale_children(OWNER, ProbeFleetSpec()) == []
