"""The pre-migration checks: a ZkMigration does not start on a cluster that is not Ready,
nor towards an ensemble B whose servers do not all answer, and says so in words (issue 18)."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.operator.zkmigration.handlers import pre_migration_checks
from orchestrator_operator.operator.zkmigration.observation import EnsembleView

B = EnsembleView("zk-b:2181", servers=3, answering=3)


def _cluster(phase: str | None, *conditions: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "status": {
            "phase": phase,
            "conditions": [
                {"type": t, "status": s, "reason": "R", "message": m} for t, s, m in conditions
            ],
        }
    }


def test_a_ready_cluster_and_a_whole_ensemble_b_pass() -> None:
    assert pre_migration_checks("demo", _cluster("Ready"), B) == []


def test_a_degraded_cluster_holds_the_start_and_names_what_is_wrong() -> None:
    cluster = _cluster(
        "Degraded",
        ("ZookeeperReady", "False", "cannot reach ZooKeeper at zk-a:2181"),
        ("MastersReady", "False", "3/3 master pods ready, but ZooKeeper cannot be read"),
        ("AgentsReady", "True", "3/3 agents ready"),
        ("Ready", "False", "ZookeeperReady, MastersReady"),
    )
    [check] = pre_migration_checks("demo", cluster, B)
    assert check == (
        "pre-migration check: MesosCluster demo is Degraded, and a migration starts only on a"
        " Ready cluster (ZookeeperReady: cannot reach ZooKeeper at zk-a:2181; MastersReady:"
        " 3/3 master pods ready, but ZooKeeper cannot be read)"
    )


def test_a_cluster_not_observed_yet_and_an_unreachable_b_are_both_said() -> None:
    unreachable = EnsembleView("zk-b:2181", servers=3, answering=0, error="no session")
    checks = pre_migration_checks("demo", {}, unreachable)
    assert checks == [
        "pre-migration check: MesosCluster demo is not observed yet, and a migration starts"
        " only on a Ready cluster",
        "pre-migration check: ensemble B (zk-b:2181) unreachable: no session",
    ]
