"""Scaling a REAL ZooKeeper ensemble 3 -> 5 -> 3 with dynamic reconfiguration, driven step by
step by the operator's planner and executor (operator.mesoscluster.zk_scale.scale_step).

The KWOK-based e2e cannot run ZooKeeper in pods, so this is the proof with real servers: a
fake "StatefulSet" starts a server process where the operator would add a pod (configured,
like a new pod from the ConfigMap, with the members of the lower ordinals plus itself) and
stops one where it would remove a pod. A client connected from the start keeps its session
throughout, and data written before is readable on every member afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kazoo.client import KazooClient, KazooState

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.mesoscluster.zk_scale import (
    ScaleResult,
    kazoo_reconfigure,
    scale_step,
)
from orchestrator_operator.operator.mesoscluster.zk_scale_plan import (
    Action,
    PodState,
    Reconfig,
    ScaleStatefulSet,
    Wait,
    parse_config,
)
from orchestrator_operator.operator.zk_super_key import cluster_password
from testenv.zookeeper import ZkEnsemble, ZooKeeperStartError, parse_srvr_mode
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = pytest.mark.zookeeper

# As the operator does it: the password derived from its key for one cluster, the servers
# given the digest the cluster's Secret holds.
SUPER_PASSWORD = cluster_password(b"scale-test-operator-key-0123456789", "mesos", "prod")
SUPER_DIGEST = zookeeper.super_secret(Owner("prod", "mesos", "uid"), SUPER_PASSWORD)["stringData"][
    "digest"
]


class ProcessFleet:
    """A stand-in StatefulSet: ordinal i is server process i (myid i + 1)."""

    def __init__(self, ensemble: ZkEnsemble) -> None:
        self.ensemble = ensemble
        self.count = len(ensemble.servers)
        self.sizes: list[int] = []

    def replicas(self) -> int | None:
        return self.count

    def pods(self, count: int) -> dict[int, PodState]:
        result: dict[int, PodState] = {}
        for server in self.ensemble.servers[:count]:
            if not server.running:
                continue
            try:
                ready = self.ensemble.four_letter_word(server.index, "ruok", 1.0) == "imok"
                mode = parse_srvr_mode(self.ensemble.four_letter_word(server.index, "srvr", 1.0))
            except OSError:
                ready, mode = False, None
            # `srvr` answers "This ZooKeeper instance is not currently serving requests"
            # (no Mode line) while a server looks for a leader.
            result[server.index] = PodState(server.index, ready=ready, mode=mode)
        return result

    def start_pod(self, index: int, timeout: float | None = None) -> None:
        """Server `index` coming back on its retained volume, as the pod's start script does
        (operator/builders/zookeeper.py): its own dynamic configuration if that still lists
        it, else it joins afresh with the lower members. Started with a configuration that
        no longer lists it, ZooKeeper exits with code 1 ("My id N not in the peer list")."""
        if f"server.{index + 1}=" in self.ensemble.dynamic_config(index):
            self.ensemble.start_server(index, timeout=timeout)
        else:
            lower = [s.server_line() for s in self.ensemble.servers[:index]]
            self.ensemble.join_server(index, lower, wait=False)

    def scale(self, replicas: int) -> None:
        self.sizes.append(replicas)
        while self.count < replicas:
            if self.count < len(self.ensemble.servers):
                self.start_pod(self.count)
            else:
                lower = [s.server_line() for s in self.ensemble.servers[: self.count]]
                self.ensemble.add_server(lower, wait=False)
            self.count += 1
        while self.count > replicas:
            self.ensemble.stop_server(self.count - 1)
            self.count -= 1


def drive(
    client: Any, fleet: ProcessFleet, desired: int, reconfigure: Any, timeout: float = 180.0
) -> list[Action]:
    """Call scale_step until Done, as the observer's timer would; the actions taken."""
    taken: list[Action] = []
    waits: list[ScaleResult] = []
    deadline = time.monotonic() + timeout
    while True:
        result = scale_step(
            client,
            fleet,
            desired,
            lambda i: fleet.ensemble.servers[i - 1].server_line(),
            reconfigure,
        )
        if result.done:
            return taken
        assert time.monotonic() < deadline, f"not done in {timeout}s: {taken} {waits[-3:]}"
        if isinstance(result.action, Wait):
            assert result.message.startswith(f"zookeeper scaling to {desired}: waiting")
            waits.append(result)
            time.sleep(0.3)
        else:
            taken.append(result.action)
            time.sleep(0.2)


def voters(client: Any) -> set[int]:
    client.sync("/zookeeper/config")
    data, _ = client.get("/zookeeper/config")
    return set(parse_config(data.decode()).voters)


def read_on_every_member(ensemble: ZkEnsemble, count: int, path: str) -> list[bytes]:
    values = []
    for server in ensemble.servers[:count]:
        direct = KazooClient(hosts=server.address, timeout=10.0)
        direct.start(timeout=15)
        try:
            direct.sync(path)
            values.append(direct.get(path)[0])
        finally:
            direct.stop()
            direct.close()
    return values


@dataclass
class Scaling:
    ensemble: ZkEnsemble
    fleet: ProcessFleet
    reconfigure: Any  # as the operator's: super user, the three members that stay
    operator: KazooClient  # the operator's session, on the members that stay
    stable: str


@pytest.fixture
def scaling(zk_ensemble_factory: ZkEnsembleFactory) -> Iterator[Scaling]:
    """Three servers that accept the super user, the fleet standing in for their pods."""
    ensemble = zk_ensemble_factory(
        3, extra_config={"DigestAuthenticationProvider.superDigest": SUPER_DIGEST}
    )
    stable = ",".join(s.address for s in ensemble.servers[:3])
    operator = KazooClient(hosts=stable, timeout=10.0)
    operator.start(timeout=15)
    try:
        yield Scaling(
            ensemble,
            ProcessFleet(ensemble),
            kazoo_reconfigure(stable, ("digest", f"super:{SUPER_PASSWORD}")),
            operator,
            stable,
        )
    finally:
        operator.stop()
        operator.close()


def test_three_to_five_to_three_to_five_one_member_at_a_time(scaling: Scaling) -> None:
    ensemble, fleet, reconfigure, operator = (
        scaling.ensemble,
        scaling.fleet,
        scaling.reconfigure,
        scaling.operator,
    )
    stable = scaling.stable  # the members that stay
    app = KazooClient(hosts=stable, timeout=10.0)
    states: list[str] = []
    app.add_listener(lambda state: states.append(state))
    app.start(timeout=15)
    session = app.client_id[0]
    try:
        app.create("/app/before", b"written at 3", makepath=True)

        assert voters(operator) == {1, 2, 3}

        up = drive(operator, fleet, 5, reconfigure)
        assert [type(a) for a in up] == [ScaleStatefulSet, Reconfig, ScaleStatefulSet, Reconfig]
        assert [a.replicas for a in up if isinstance(a, ScaleStatefulSet)] == [4, 5]
        joined = [a.joining for a in up if isinstance(a, Reconfig)]
        assert joined == [
            (ensemble.servers[3].server_line(),),
            (ensemble.servers[4].server_line(),),
        ]
        assert voters(operator) == {1, 2, 3, 4, 5}
        assert read_on_every_member(ensemble, 5, "/app/before") == [b"written at 3"] * 5
        modes = {ensemble.server_state(i) for i in range(5)}
        assert modes == {"leader", "follower"}  # every member votes; none is an observer

        app.create("/app/at-five", b"written at 5")
        leader = ensemble.leader_index()
        down = drive(operator, fleet, 3, reconfigure)
        removed = [a.leaving for a in down if isinstance(a, Reconfig)]
        sizes = [a.replicas for a in down if isinstance(a, ScaleStatefulSet)]
        assert sorted(removed) == [(4,), (5,)] and sorted(sizes, reverse=True) == [4, 3]
        if leader is not None and leader + 1 in (4, 5):
            assert removed[-1] == (leader + 1,), "the leader must leave last"
        else:  # highest id first, each reconfigured out before its pod goes
            assert [type(a) for a in down] == [
                Reconfig,
                ScaleStatefulSet,
                Reconfig,
                ScaleStatefulSet,
            ]
            assert removed == [(5,), (4,)]
        assert voters(operator) == {1, 2, 3}
        assert fleet.count == 3 and not ensemble.servers[3].running
        expected = [b"written at 3", b"written at 5"]
        for path, value in zip(["/app/before", "/app/at-five"], expected, strict=True):
            assert read_on_every_member(ensemble, 3, path) == [value] * 3

        # The client connected before the first step kept its session the whole time.
        assert app.state == KazooState.CONNECTED and app.client_id[0] == session
        assert KazooState.LOST not in states
        app.set("/app/before", b"still writable")

        # Up again: servers 4 and 5 come back on their old data directories (a pod on its
        # retained volume); their last dynamic configuration no longer lists them, so they
        # join afresh and are reconfigured in again.
        again = drive(operator, fleet, 5, reconfigure)
        assert [type(a) for a in again] == [ScaleStatefulSet, Reconfig, ScaleStatefulSet, Reconfig]
        assert voters(operator) == {1, 2, 3, 4, 5}
        assert read_on_every_member(ensemble, 5, "/app/before") == [b"still writable"] * 5
        assert app.client_id[0] == session and KazooState.LOST not in states
    finally:
        app.stop()
        app.close()


def test_a_reconfig_without_the_super_user_is_refused_and_planned_again(
    scaling: Scaling,
) -> None:
    """A wrong credential changes nothing; the next step with the right one goes on."""
    ensemble, fleet, operator = scaling.ensemble, scaling.fleet, scaling.operator
    wrong = kazoo_reconfigure(scaling.stable, ("digest", "super:wrong"))
    deadline = time.monotonic() + 120
    while True:
        result = scale_step(
            operator, fleet, 5, lambda i: ensemble.servers[i - 1].server_line(), wrong
        )
        if isinstance(result.action, Reconfig):
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert "NoAuth" in result.message
    assert voters(operator) == {1, 2, 3}
    assert drive(operator, fleet, 5, scaling.reconfigure)[-1:] == [
        Reconfig((ensemble.servers[4].server_line(),), (), "reconfiguring server 5 in")
    ]
    assert voters(operator) == {1, 2, 3, 4, 5}


def test_a_leaving_leader_goes_last_and_leadership_moves(scaling: Scaling) -> None:
    ensemble, fleet, reconfigure, operator = (
        scaling.ensemble,
        scaling.fleet,
        scaling.reconfigure,
        scaling.operator,
    )
    drive(operator, fleet, 5, reconfigure)
    operator.create("/app/data", b"kept", makepath=True)
    # Restart leaders until server 5 leads (an election prefers the highest id among
    # the most up-to-date servers, so this takes one or two restarts).
    for _ in range(5):
        leader = ensemble.wait_for_leader()
        if leader == 4:
            break
        ensemble.stop_server(leader)
        ensemble.wait_for_leader()
        ensemble.start_server(leader)
    assert ensemble.wait_for_leader() == 4, "could not make server 5 the leader"

    down = drive(operator, fleet, 3, reconfigure)
    assert [a.leaving for a in down if isinstance(a, Reconfig)] == [(4,), (5,)]
    assert [a.replicas for a in down if isinstance(a, ScaleStatefulSet)] == [4, 3]
    assert isinstance(down[1], Reconfig) and "(the leader)" in down[1].reason
    assert voters(operator) == {1, 2, 3}
    assert ensemble.wait_for_leader() in (0, 1, 2)
    assert read_on_every_member(ensemble, 3, "/app/data") == [b"kept"] * 3


def test_a_voter_whose_pod_was_removed_by_hand_is_repaired(scaling: Scaling) -> None:
    """Half-done states with real servers: the StatefulSet scaled 5 -> 4 by hand (server 5
    is still a voter, its pod gone); spec 5 gives the pod back; spec 3 reconfigures the
    orphan out; server 5, which never learnt it was removed, later rejoins on its stale
    volume and is reconfigured in again."""
    ensemble, fleet, reconfigure, operator = (
        scaling.ensemble,
        scaling.fleet,
        scaling.reconfigure,
        scaling.operator,
    )
    drive(operator, fleet, 5, reconfigure)
    fleet.scale(4)  # by hand
    assert drive(operator, fleet, 5, reconfigure) == [
        ScaleStatefulSet(5, "server 5 is a voter without its pod: restoring it")
    ]
    fleet.scale(4)  # by hand, again
    repaired = drive(operator, fleet, 3, reconfigure)
    assert [a.leaving for a in repaired if isinstance(a, Reconfig)] == [(5,), (4,)]
    assert voters(operator) == {1, 2, 3}
    assert "server.5=" in ensemble.dynamic_config(4)  # it was down when removed
    operator.create("/app/after", b"at 3", makepath=True)
    drive(operator, fleet, 5, reconfigure)
    assert voters(operator) == {1, 2, 3, 4, 5}
    assert read_on_every_member(ensemble, 5, "/app/after") == [b"at 3"] * 5


def test_a_member_removed_while_it_ran_comes_back_as_a_joiner_by_the_pods_start_logic(
    scaling: Scaling,
) -> None:
    """Issue 20's scale finding: the operator reconfigures servers 4 and 5 out (the first
    step of 5 -> 3, their pods still there), server 4 learns it and then dies. Started on its
    own dynamic configuration, which no longer lists it, ZooKeeper 3.8 exits with code 1
    ("My id 4 not in the peer list"); the pod's start logic (operator/builders/zookeeper.py's
    start_script, ProcessFleet.start_pod) joins it afresh instead, and it serves again."""
    ensemble, fleet, operator = scaling.ensemble, scaling.fleet, scaling.operator
    drive(operator, fleet, 5, scaling.reconfigure)
    scaling.reconfigure(Reconfig((), (4, 5), "the first step of 5 -> 3"), None)
    assert voters(operator) == {1, 2, 3}
    deadline = time.monotonic() + 30
    while "server.4=" in ensemble.dynamic_config(3):
        assert time.monotonic() < deadline, ensemble.dynamic_config(3)
        time.sleep(0.2)
    server = ensemble.servers[3]
    assert server.process is not None
    server.process.kill()
    server.process.wait(timeout=30)

    with pytest.raises(ZooKeeperStartError, match=r"exited \(code 1\)"):
        ensemble.start_server(3, timeout=60)
    assert "My id 4 not in the peer list" in server.log_path.read_text()

    fleet.start_pod(3)
    deadline = time.monotonic() + 60
    while ensemble.server_state(3) not in ("leader", "follower", "observer"):
        assert server.running, server.log_tail()
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.5)
    operator.create("/app/after-rejoin", b"x", makepath=True)
    assert voters(operator) == {1, 2, 3}  # it came back without a vote, as a joiner does
