"""Status from observations: conditions and phase tell the truth."""

from __future__ import annotations

from orchestrator_operator.mesos.discovery import Election
from orchestrator_operator.mesos.leader import MasterInfo
from orchestrator_operator.operator.mesoscluster.status import Observation, Replicas, build_status

LEADER = MasterInfo(id="m", hostname="m0", ip="10.0.0.5", port=5050, znode="json.info_1")
NOW = "2026-01-01T00:00:00Z"


def _observation(**changes: object) -> Observation:
    base: dict[str, object] = {
        "zookeeper_connect_string": "zk:2181",
        "zookeeper": Replicas(3, 3),
        "zookeeper_error": None,
        "zookeeper_servers": None,
        "election": Election(LEADER, 3),
        "master_health": None,
        "masters": Replicas(3, 3),
        "quorum": 2,
        "agents": Replicas(5, 5),
        "marathon": Replicas(2, 2),
    }
    base.update(changes)
    return Observation(**base)  # type: ignore[arg-type]


def _conditions(status: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}  # type: ignore[attr-defined]


def test_everything_up_is_ready_with_the_leader_named() -> None:
    status = build_status(_observation(), 4, [], NOW)
    assert status["phase"] == "Ready"
    assert status["leadingMaster"] == "10.0.0.5:5050"
    assert set(_conditions(status).values()) == {
        ("True", "Elected"),
        ("True", "Ready"),
        ("True", "Serving"),
        ("True", "AllComponentsReady"),
    }


def test_unreachable_zookeeper_degrades() -> None:
    status = build_status(
        _observation(zookeeper_error="cannot reach ZooKeeper at zk:2181", election=None),
        1, [], NOW,
    )  # fmt: skip
    assert status["phase"] == "Degraded"
    assert _conditions(status)["ZookeeperReady"] == ("False", "Unreachable")
    assert _conditions(status)["LeaderElected"] == ("False", "Unknown")
    assert status["leadingMaster"] is None


def test_lost_zookeeper_majority_is_reported() -> None:
    status = build_status(_observation(zookeeper=Replicas(3, 1)), 1, [], NOW)
    assert _conditions(status)["ZookeeperReady"] == ("False", "NoQuorum")


def test_masters_below_quorum_are_progressing_not_ready() -> None:
    status = build_status(
        _observation(masters=Replicas(3, 1), election=Election(None, 0)), 1, [], NOW
    )
    assert status["phase"] == "Progressing"
    assert _conditions(status)["MastersReady"] == ("False", "NotReady")


def test_agents_with_no_matching_node() -> None:
    status = build_status(_observation(agents=Replicas(0, 0)), 1, [], NOW)
    assert _conditions(status)["AgentsReady"] == ("False", "NoneScheduled")


def test_four_letter_words_tell_quorum_and_leader() -> None:
    servers = (("zk-0:2181", "follower"), ("zk-1:2181", "leader"), ("zk-2:2181", None))
    status = build_status(_observation(zookeeper_servers=servers), 1, [], NOW)
    zk = next(c for c in status["conditions"] if c["type"] == "ZookeeperReady")
    assert zk["status"] == "True"
    assert zk["message"].endswith("2/3 servers answer srvr, leader zk-1:2181")
    lost = (("zk-0:2181", None), ("zk-1:2181", "leader"), ("zk-2:2181", None))
    status = build_status(_observation(zookeeper_servers=lost), 1, [], NOW)
    assert _conditions(status)["ZookeeperReady"] == ("False", "NoQuorum")
