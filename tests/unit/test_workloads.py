from __future__ import annotations

from orchestrator_operator.operator.workloads import summarize


def test_daemonset_counts_scheduled_pods() -> None:
    body = {
        "metadata": {"generation": 3},
        "spec": {},
        "status": {"desiredNumberScheduled": 5000, "numberReady": 4990,
                   "updatedNumberScheduled": 4000, "observedGeneration": 3},
    }  # fmt: skip
    summary = summarize("DaemonSet", body)
    assert (summary.desired, summary.ready, summary.updated) == (5000, 4990, 4000)
    assert summary.settled


def test_statefulset_not_settled_until_the_controller_sees_the_change() -> None:
    body = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 3, "updatedReplicas": 3, "observedGeneration": 1,
                   "updateRevision": "r1"},
    }  # fmt: skip
    summary = summarize("StatefulSet", body)
    assert not summary.settled
    assert summary.update_revision == "r1"
