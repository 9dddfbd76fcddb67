"""Status from observations: conditions and phase tell the truth."""

from __future__ import annotations

import http.server
import json
import threading

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.mesos.discovery import Election, MasterHealth, read_master_metrics
from orchestrator_operator.mesos.leader import MasterInfo
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders import agents
from orchestrator_operator.operator.mesoscluster.observe import (
    parse_agent_pod,
    parse_unschedulable,
)
from orchestrator_operator.operator.mesoscluster.status import (
    AgentPod,
    AgentStartCause,
    AgentStartError,
    Observation,
    Replicas,
    Unschedulable,
    build_status,
)

LEADER = MasterInfo(id="m", hostname="m0", ip="10.0.0.5", port=5050, znode="json.info_1")
NOW = "2026-01-01T00:00:00Z"
# The leader as a recovered, elected Mesos master with the five agents and Marathon.
HEALTHY = MasterHealth(elected=True, agents_active=5, frameworks_active=1, tasks_running=0)


def _observation(**changes: object) -> Observation:
    base: dict[str, object] = {
        "zookeeper_connect_string": "zk:2181",
        "zookeeper": Replicas(3, 3),
        "zookeeper_error": None,
        "zookeeper_servers": None,
        "election": Election(LEADER, 3),
        "master_health": HEALTHY,
        "masters": Replicas(3, 3),
        "quorum": 2,
        "agents": Replicas(5, 5),
        "marathon": Replicas(2, 2),
        "marathon_elected": True,
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


# /metrics/snapshot of a leader the detector has just named, before its registry is
# recovered, as Mesos 1.11 answers it: `master/elected` is `elected() ? 1 : 0`
# (src/master/master.hpp `_elected`), true as soon as ZooKeeper names it; its local log
# replica may well be caught up already (`registrar/log/recovered` 1, src/log/log.cpp
# `LogProcess::_recovered`: a follower's replica is), but the registrar has not read the
# registry, so `registrar/registry_size_bytes` (src/master/registrar.cpp: "Not recovered
# yet") is left out of the snapshot, and the master knows no agent or framework yet.
RECOVERING_SNAPSHOT = {
    "master/elected": 1.0,
    "registrar/log/recovered": 1.0,
    "master/slaves_active": 0.0,
    "master/frameworks_active": 0.0,
    "master/tasks_running": 0.0,
}
RECOVERED_SNAPSHOT = {
    **RECOVERING_SNAPSHOT,
    "registrar/registry_size_bytes": 412.0,
    "master/slaves_active": 4.0,
    "master/frameworks_active": 1.0,
    "master/tasks_running": 9.0,
}
BEFORE_FAILOVER = {"agentsActive": 5, "frameworksActive": 1, "tasksRunning": 12}


class _Snapshot(http.server.BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: object) -> None:
        pass


def _served_health(snapshot: dict[str, float]) -> MasterHealth | None:
    """What the operator reads from a master answering `snapshot` on loopback."""
    handler = type("Handler", (_Snapshot,), {"body": json.dumps(snapshot).encode()})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        return read_master_metrics(f"127.0.0.1:{server.server_address[1]}", timeout=5.0)
    finally:
        server.shutdown()
        server.server_close()


def test_a_leader_that_has_not_recovered_its_registry_is_not_reported_elected() -> None:
    health = _served_health(RECOVERING_SNAPSHOT)
    status = build_status(
        _observation(master_health=health), 1, [], NOW, previous_mesos=BEFORE_FAILOVER
    )
    assert _conditions(status)["LeaderElected"] == ("False", "Recovering")
    leader = next(c for c in status["conditions"] if c["type"] == "LeaderElected")
    assert "not recovered the registry" in leader["message"]
    assert status["phase"] == "Degraded"
    # Its zero agents and frameworks are not the truth: the last known figures stay.
    assert status["mesos"] == BEFORE_FAILOVER

    recovered = build_status(
        _observation(master_health=_served_health(RECOVERED_SNAPSHOT)), 1, [], NOW,
        previous_mesos=BEFORE_FAILOVER,
    )  # fmt: skip
    assert _conditions(recovered)["LeaderElected"] == ("True", "Elected")
    assert recovered["mesos"] == {"agentsActive": 4, "frameworksActive": 1, "tasksRunning": 9}


def test_a_leader_whose_own_log_replica_is_still_catching_up_is_recovering() -> None:
    # A master that was EMPTY (a new work dir) when elected: its replica recovers first.
    snapshot = {**RECOVERING_SNAPSHOT, "registrar/log/recovered": 0.0}
    status = build_status(_observation(master_health=_served_health(snapshot)), 1, [], NOW)
    assert _conditions(status)["LeaderElected"] == ("False", "Recovering")


def test_a_recovering_leader_with_no_figures_known_says_none() -> None:
    health = _served_health(RECOVERING_SNAPSHOT)
    status = build_status(_observation(master_health=health), 1, [], NOW)
    assert status["mesos"] is None


def test_a_master_without_a_replicated_log_counts_as_recovered() -> None:
    # --registry=in_memory: no log, so no registrar/log/* metrics, but a registrar.
    snapshot = {k: v for k, v in RECOVERED_SNAPSHOT.items() if not k.startswith("registrar/log/")}
    status = build_status(_observation(master_health=_served_health(snapshot)), 1, [], NOW)
    assert _conditions(status)["LeaderElected"] == ("True", "Elected")


def test_agents_on_down_machines_are_expected_unavailable() -> None:
    obs = _observation(agents=Replicas(5, 3), machines_down=frozenset({"node-2", "node-4"}))
    status = build_status(obs, 1, [], NOW)
    agents = next(c for c in status["conditions"] if c["type"] == "AgentsReady")
    assert (agents["status"], agents["reason"]) == ("True", "Ready")
    assert (
        "2 expected unavailable on machines DOWN for maintenance (node-2, node-4)"
        in (agents["message"])
    )
    assert status["phase"] == "Ready"
    # One more agent down elsewhere is a real fault.
    worse = build_status(_observation(agents=Replicas(5, 2), machines_down=obs.machines_down),
                         1, [], NOW)  # fmt: skip
    assert _conditions(worse)["AgentsReady"] == ("False", "NotReady")
    assert worse["phase"] != "Ready"


def test_down_machines_count_by_their_pods_when_the_pods_are_known() -> None:
    # node-2's machine is DOWN but its agent is between two crashes (ready for a moment);
    # node-3's agent is down for no maintenance reason: one agent is really missing.
    pods = (
        AgentPod("node-1", True),
        AgentPod("node-2", True),
        AgentPod("node-3", False, "CrashLoopBackOff"),
    )
    obs = _observation(agents=Replicas(3, 2), machines_down=frozenset({"node-2"}), agent_pods=pods)
    assert _conditions(build_status(obs, 1, [], NOW))["AgentsReady"] == ("False", "NotReady")


def test_a_node_whose_cgroups_cannot_serve_the_isolators_is_named() -> None:
    error = (
        "Failed to create a containerizer: Could not create MesosContainerizer: Failed to"
        " create isolator 'cgroups/cpu': Failed to prepare hierarchy for the subsystem 'cpu'"
    )
    pods = (
        AgentPod("node-1", True),
        AgentPod("node-2", False, "CrashLoopBackOff", AgentStartError(ISOLATOR, error)),
    )
    obs = _observation(agents=Replicas(2, 1), agent_pods=pods)
    agents = next(
        c for c in build_status(obs, 1, [], NOW)["conditions"] if c["type"] == "AgentsReady"
    )
    assert agents["status"] == "False"
    assert "cannot start its isolators on node-2" in agents["message"]
    assert "Failed to create isolator 'cgroups/cpu'" in agents["message"]


def test_the_agent_pod_reports_its_isolator_error_to_the_operator() -> None:
    # The agent logs the error and exits (src/slave/main.cpp "Failed to create a
    # containerizer: "); its pod's container status carries the log's last lines.
    (daemonset,) = agents.build(Owner(name="c", namespace="ns", uid="u"), MesosClusterSpec())
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    log_tail = (
        "I1203 10:00:00.000001  7 containerizer.cpp:300] Using isolation: cgroups/cpu\n"
        "F1203 10:00:00.000002  7 main.cpp:791] Failed to create a containerizer: Could not"
        " create MesosContainerizer: Failed to create isolator 'cgroups/cpu': Failed to prepare"
        " hierarchy for the subsystem 'cpu'\n"
    )
    pod = {
        "spec": {"nodeName": "node-2"},
        "status": {"containerStatuses": [{
            "ready": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "message": log_tail}},
        }]},
    }  # fmt: skip
    parsed = parse_agent_pod(pod)
    assert parsed == AgentPod(
        "node-2", False, "CrashLoopBackOff", AgentStartError(ISOLATOR,
        "Failed to create isolator 'cgroups/cpu': Failed to prepare hierarchy for the subsystem"
        " 'cpu'"),
    )  # fmt: skip
    assert parse_agent_pod({"spec": {}, "status": {}}) is None  # not scheduled yet


ISOLATOR = AgentStartCause.ISOLATOR


def _agent_pod_status(waiting: dict[str, str], message: str | None = None) -> dict[str, object]:
    last = {"terminated": {"reason": "Error", "exitCode": 1, "message": message}} if message else {}
    return {
        "spec": {"nodeName": "node-2"},
        "status": {"containerStatuses": [
            {"ready": False, "state": {"waiting": waiting}, "lastState": last}
        ]},
    }  # fmt: skip


# Issue 16, point 3 on a real kubelet: an agent whose credential the masters refuse exits 1
# (src/slave/slave.cpp _authenticate: "Master <pid> refused authentication"), so its pod
# crash-loops and is never Ready; AgentsReady must say why, not only count.
def test_an_agent_the_masters_refuse_is_named_with_the_credential_to_check() -> None:
    log_tail = (
        "I1203 10:00:01.000000  7 slave.cpp:1650] Authenticating with master master@10.0.0.5:5050\n"
        "F1203 10:00:01.100000  7 slave.cpp:1664] Master master@10.0.0.5:5050 refused"
        " authentication\n"
    )
    pod = parse_agent_pod(_agent_pod_status({"reason": "CrashLoopBackOff"}, log_tail))
    assert pod is not None and pod.start_error == AgentStartError(
        AgentStartCause.AUTHENTICATION, "Master master@10.0.0.5:5050 refused authentication"
    )
    obs = _observation(agents=Replicas(2, 1), agent_pods=(AgentPod("node-1", True), pod))
    (agents_ready,) = [
        c for c in build_status(obs, 1, [], NOW)["conditions"] if c["type"] == "AgentsReady"
    ]
    assert agents_ready["status"] == "False"
    assert "refused the credential of the agent on node-2" in agents_ready["message"]
    assert "agents.credentialSecretRef" in agents_ready["message"]


# A Secret or key the agent pod mounts that does not exist: the kubelet never starts the
# container (CreateContainerConfigError with its message) and the status names it.
def test_an_agent_pod_the_kubelet_cannot_create_is_named_with_the_kubelets_reason() -> None:
    waiting = {
        "reason": "CreateContainerConfigError",
        "message": "couldn't find key agent in Secret ns/mesos-credentials",
    }
    pod = parse_agent_pod(_agent_pod_status(waiting))
    assert pod is not None and pod.start_error == AgentStartError(
        AgentStartCause.CONTAINER_CONFIG, waiting["message"]
    )
    obs = _observation(agents=Replicas(2, 1), agent_pods=(AgentPod("node-1", True), pod))
    (agents_ready,) = [
        c for c in build_status(obs, 1, [], NOW)["conditions"] if c["type"] == "AgentsReady"
    ]
    assert "cannot create the agent container on node-2" in agents_ready["message"]
    assert "couldn't find key agent in Secret ns/mesos-credentials" in agents_ready["message"]


# Issue 16, point 3: a Mesos master refuses an agent whose credential it does not list; the
# agent retries for ever (src/slave/slave.cpp, authentication back-off) and its pod stays Ready.
def test_ready_agents_the_authenticating_masters_refused_are_named_as_such() -> None:
    health = MasterHealth(elected=True, agents_active=0, frameworks_active=1, tasks_running=0)
    obs = _observation(master_health=health, agents_authenticate=True)
    status = build_status(obs, 4, [], NOW)
    (agents_ready,) = [c for c in status["conditions"] if c["type"] == "AgentsReady"]
    assert agents_ready["status"] == "False"
    assert "5/5 agent pods ready but 0 agents registered" in agents_ready["message"]
    assert "agents.credentialSecretRef" in agents_ready["message"]
    assert status["phase"] != "Ready"
    # Without authentication too, an unregistered agent is not ready (issue 18); the
    # message names the credential only when the masters authenticate agents.
    unauthenticated = build_status(_observation(master_health=health), 4, [], NOW)
    (agents_ready,) = [c for c in unauthenticated["conditions"] if c["type"] == "AgentsReady"]
    assert agents_ready["status"] == "False"
    assert "5/5 agent pods ready but 0 agents registered" in agents_ready["message"]
    assert "credentialSecretRef" not in agents_ready["message"]
    registered = MasterHealth(elected=True, agents_active=5, frameworks_active=1, tasks_running=0)
    obs = _observation(master_health=registered, agents_authenticate=True)
    assert build_status(obs, 4, [], NOW)["phase"] == "Ready"


# Issue 18, item 2: status never greener than the truth. A ready pod is a process that
# answers its probe; the component counts once Mesos has it: masters in ZooKeeper's
# election, agents registered with the leading master, Marathon elected and registered.
def test_unreadable_zookeeper_shows_no_component_that_depends_on_it_ready() -> None:
    obs = _observation(
        zookeeper=None, zookeeper_error="cannot reach ZooKeeper at zk:2181", election=None,
        master_health=None, marathon_elected=None,
    )  # fmt: skip
    status = build_status(obs, 1, [], NOW)
    conditions = {c["type"]: c for c in status["conditions"]}
    for component in ("MastersReady", "AgentsReady", "MarathonReady"):
        assert (conditions[component]["status"], conditions[component]["reason"]) == (
            "False", "Unknown",
        ), conditions[component]  # fmt: skip
        assert "ZooKeeper cannot be read" in conditions[component]["message"]
    assert conditions["MastersReady"]["message"].startswith("3/3 master pods ready, but")
    assert status["phase"] == "Degraded"
    assert "MastersReady" in conditions["Ready"]["message"]


def test_ready_master_pods_not_registered_in_zookeeper_are_not_ready() -> None:
    status = build_status(_observation(election=Election(LEADER, 1)), 1, [], NOW)
    masters = next(c for c in status["conditions"] if c["type"] == "MastersReady")
    assert (masters["status"], masters["reason"]) == ("False", "NotReady")
    assert masters["message"] == "3/3 master pods ready but 1 registered in ZooKeeper; 2 needed"
    ready = build_status(_observation(), 1, [], NOW)
    masters = next(c for c in ready["conditions"] if c["type"] == "MastersReady")
    assert masters["message"] == "3/3 masters ready; 3 registered in ZooKeeper"


def test_a_leader_that_does_not_answer_is_not_elected_and_counts_nothing() -> None:
    status = build_status(_observation(master_health=None), 1, [], NOW)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["LeaderElected"]["status"], conditions["LeaderElected"]["reason"]) == (
        "False", "NotElected",
    )  # fmt: skip
    assert "does not answer /metrics/snapshot" in conditions["LeaderElected"]["message"]
    assert conditions["AgentsReady"]["status"] == "False"
    assert "the leading master does not answer" in conditions["AgentsReady"]["message"]
    assert status["phase"] == "Degraded"


def test_marathon_counts_once_elected_and_registered_as_a_framework() -> None:
    def marathon(**changes: object) -> tuple[str, str, str]:
        status = build_status(_observation(**changes), 1, [], NOW)
        found = next(c for c in status["conditions"] if c["type"] == "MarathonReady")
        return found["status"], found["reason"], found["message"]

    assert marathon()[:2] == ("True", "Ready")
    not_elected = marathon(marathon_elected=False)
    assert not_elected[:2] == ("False", "NotElected")
    assert "leader latch in ZooKeeper is empty" in not_elected[2]
    unregistered = MasterHealth(elected=True, agents_active=5, frameworks_active=0,
                                tasks_running=0)  # fmt: skip
    assert marathon(master_health=unregistered)[:2] == ("False", "NotRegistered")
    # No Marathon wanted: nothing to elect.
    assert marathon(marathon=Replicas(0, 0), marathon_elected=None)[:2] == ("True", "Ready")


def test_pods_the_scheduler_cannot_place_say_why_in_their_component() -> None:
    why = "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports."
    pending = {
        "metadata": {"labels": {"app.kubernetes.io/component": agents.COMPONENT}},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": why},
            ],
        },
    }  # fmt: skip
    scheduled = {
        "metadata": {"labels": {"app.kubernetes.io/component": "master"}},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }
    found = parse_unschedulable([pending, pending, pending, scheduled])
    assert found == {"agents": Unschedulable(3, why)}
    status = build_status(_observation(agents=Replicas(3, 0), unschedulable=found), 1, [], NOW)
    agents_ready = next(c for c in status["conditions"] if c["type"] == "AgentsReady")
    assert (agents_ready["status"], agents_ready["reason"]) == ("False", "Unschedulable")
    assert (
        agents_ready["message"]
        == f"0/3 agents ready; 3 needed; 3 pod(s) cannot be scheduled: {why}"
    )
