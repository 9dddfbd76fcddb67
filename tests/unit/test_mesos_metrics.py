"""A MesosCluster's status is mirrored into Prometheus series, and removed with it."""

from __future__ import annotations

from prometheus_client import REGISTRY

from orchestrator_operator.operator.mesoscluster.metrics import export_status, forget

STATUS = {
    "conditions": [
        {"type": "LeaderElected", "status": "True"},
        {"type": "ZookeeperReady", "status": "False"},
    ],
    "agents": {"desired": 5, "ready": 4},
    "leadingMaster": "10.0.0.2:5050",
    "maintenance": [{"node": "n1", "state": "Draining", "tasks": 2}],
}


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": "ns", "name": "metrics-test", **labels})


def test_status_becomes_series_and_goes_away_with_the_cluster() -> None:
    export_status("ns", "metrics-test", STATUS, previous_leader="10.0.0.1:5050")
    assert _value("orchestrator_mesoscluster_condition", condition="LeaderElected") == 1
    assert _value("orchestrator_mesoscluster_condition", condition="ZookeeperReady") == 0
    assert _value("orchestrator_mesoscluster_replicas", component="agents", state="ready") == 4
    assert _value("orchestrator_mesoscluster_leader_changes_total") == 1
    assert _value("orchestrator_mesoscluster_agents_in_maintenance", state="Draining") == 1

    export_status("ns", "metrics-test", STATUS, previous_leader="10.0.0.2:5050")
    assert _value("orchestrator_mesoscluster_leader_changes_total") == 1, "same leader"

    forget("ns", "metrics-test")
    assert _value("orchestrator_mesoscluster_condition", condition="LeaderElected") is None
    assert _value("orchestrator_mesoscluster_leader_changes_total") is None
