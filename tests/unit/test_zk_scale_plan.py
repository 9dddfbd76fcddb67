"""Scaling a ZooKeeper ensemble: one member at a time, pod before reconfig on the way up,
reconfig before pod on the way down, followers before the leader, never without a majority."""

from __future__ import annotations

from orchestrator_operator.rollout.zk_scale import (
    Action,
    ConfigMember,
    Done,
    EnsembleConfig,
    PodState,
    Reconfig,
    ScaleStatefulSet,
    Wait,
    next_scale_action,
    parse_config,
)


def line(server_id: int, role: str = "participant") -> str:
    return f"server.{server_id}=zk-{server_id - 1}.zk:2888:3888:{role};2181"


def config(*ids: int, observers: tuple[int, ...] = ()) -> EnsembleConfig:
    members = [ConfigMember(i, line(i), "participant") for i in ids]
    members += [ConfigMember(i, line(i, "observer"), "observer") for i in observers]
    return EnsembleConfig(tuple(members), 0x100000000)


def pods(count: int, leader: int = 1, **overrides: PodState) -> dict[int, PodState]:
    """`count` ready pods; server `leader` leads; overrides by name `o<ordinal>`."""
    result = {
        o: PodState(o, ready=True, mode="leader" if o + 1 == leader else "follower")
        for o in range(count)
    }
    for key, state in overrides.items():
        result[int(key[1:])] = state
    return result


def plan(desired: int, replicas: int, cfg: EnsembleConfig, state: dict[int, PodState]) -> Action:
    return next_scale_action(desired, replicas, cfg, state, line)


def test_parse_config_reads_voters_observers_and_version() -> None:
    text = (
        "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n"
        "server.2=10.0.0.2:2888:3888:observer;2181\n"
        "server.3=10.0.0.3:2888:3888;2181\n"
        "version=10000000a\n"
    )
    parsed = parse_config(text)
    assert [m.id for m in parsed.members] == [1, 2, 3]
    assert parsed.voters == {1, 3}
    assert parsed.version == 0x10000000A
    assert parsed.members[0].line == "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181"
    assert parse_config("").members == () and parse_config("").version is None


def test_nothing_to_do_at_the_desired_size() -> None:
    assert plan(3, 3, config(1, 2, 3), pods(3)) == Done()


def test_three_to_five_one_member_at_a_time_pod_before_reconfig() -> None:
    # Pod of server 4 first.
    step = plan(5, 3, config(1, 2, 3), pods(3))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 4
    # Its pod is starting: wait, with what it waits for.
    starting = pods(4, o3=PodState(3, ready=False, mode=None))
    step = plan(5, 4, config(1, 2, 3), starting)
    assert isinstance(step, Wait) and "server 4" in step.reason
    assert isinstance(plan(5, 4, config(1, 2, 3), {**pods(3)}), Wait)  # pod not there yet
    # Ready but still looking for the leader: not synced, wait.
    looking = pods(4, o3=PodState(3, ready=True, mode=None))
    assert isinstance(plan(5, 4, config(1, 2, 3), looking), Wait)
    # Synced as a (non-voting) follower: reconfigure it in.
    step = plan(5, 4, config(1, 2, 3), pods(4))
    assert step == Reconfig((line(4),), (), step.reason if isinstance(step, Reconfig) else "")
    # Then the pod of server 5, wait, reconfig.
    step = plan(5, 4, config(1, 2, 3, 4), pods(4))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 5
    starting = pods(5, o4=PodState(4, ready=False, mode=None))
    assert isinstance(plan(5, 5, config(1, 2, 3, 4), starting), Wait)
    step = plan(5, 5, config(1, 2, 3, 4), pods(5))
    assert isinstance(step, Reconfig) and step.joining == (line(5),) and step.leaving == ()
    assert plan(5, 5, config(1, 2, 3, 4, 5), pods(5)) == Done()


def test_an_observer_that_has_synced_counts_as_ready_to_join() -> None:
    state = pods(4, o3=PodState(3, ready=True, mode="observer"))
    step = plan(5, 4, config(1, 2, 3), state)
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_five_to_three_reconfig_out_before_removing_the_pod() -> None:
    step = plan(3, 5, config(1, 2, 3, 4, 5), pods(5))
    assert isinstance(step, Reconfig) and step.leaving == (5,) and step.joining == ()
    # Server 5 is out of the configuration (its server now looks for a quorum): drop its pod.
    gone = pods(5, o4=PodState(4, ready=False, mode=None))
    step = plan(3, 5, config(1, 2, 3, 4), gone)
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 4
    step = plan(3, 4, config(1, 2, 3, 4), pods(4))
    assert isinstance(step, Reconfig) and step.leaving == (4,)
    step = plan(3, 4, config(1, 2, 3), pods(4))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 3
    assert plan(3, 3, config(1, 2, 3), pods(3)) == Done()


def test_the_leader_leaves_last() -> None:
    # Server 5 leads: server 4 goes first although 5 has the higher id.
    step = plan(3, 5, config(1, 2, 3, 4, 5), pods(5, leader=5))
    assert isinstance(step, Reconfig) and step.leaving == (4,)
    assert "follower" in step.reason
    # Only the leader is left to go: now it leaves (ZooKeeper hands leadership over).
    state = pods(5, leader=5, o3=PodState(3, ready=False, mode=None))
    step = plan(3, 5, config(1, 2, 3, 5), state)
    assert isinstance(step, Reconfig) and step.leaving == (5,)
    assert "leader" in step.reason


def test_no_action_without_a_ready_majority() -> None:
    down = PodState(1, ready=False, mode=None)
    state = pods(3, o1=down, o2=PodState(2, ready=True, mode=None))
    for desired in (1, 3, 5):
        step = plan(desired, 3, config(1, 2, 3), state)
        assert isinstance(step, Wait)
        assert "only 1 of 3 voting members are ready" in step.reason
    # With a majority ready, scaling up goes ahead; removing a member still needs a
    # majority of the remaining voters.
    state = pods(3, o1=down)
    assert isinstance(plan(5, 3, config(1, 2, 3), state), ScaleStatefulSet)
    state = pods(5, o1=down, o2=PodState(2, ready=False, mode=None))
    step = plan(3, 5, config(1, 2, 3, 4, 5), state)
    assert isinstance(step, Wait) and "remaining 4 voters" in step.reason


def test_joining_needs_a_majority_of_the_new_configuration() -> None:
    # 1 voter out of 2 ready after adding 2: fine (2 of 2 with the joiner). A 3-voter
    # ensemble with one down joins a 4th: 3 of 4 ready, fine. Two down: waits above.
    state = pods(4, o2=PodState(2, ready=False, mode=None))
    step = plan(5, 4, config(1, 2, 3), state)
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_repairs_a_pod_added_but_never_reconfigured_in() -> None:
    # The spec went 3 -> 5 -> 3 while pod 4 was starting: it is not a voter, remove it.
    step = plan(3, 4, config(1, 2, 3), pods(4))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 3
    # Still 5 wanted: reconfigure it in.
    step = plan(5, 4, config(1, 2, 3), pods(4))
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_repairs_a_voter_whose_pod_is_gone() -> None:
    # Someone scaled the StatefulSet from 5 to 3 by hand, spec still 5: bring the pods
    # back first (their volumes were kept), even without a majority.
    step = plan(5, 3, config(1, 2, 3, 4, 5), pods(3))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 5
    no_majority = pods(2)
    step = plan(5, 2, config(1, 2, 3, 4, 5), no_majority)
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 5
    # The spec says 3: reconfigure the orphaned voters out instead, highest first.
    step = plan(3, 3, config(1, 2, 3, 4, 5), pods(3))
    assert isinstance(step, Reconfig) and step.leaving == (5,)
    step = plan(3, 3, config(1, 2, 3, 4), pods(3))
    assert isinstance(step, Reconfig) and step.leaving == (4,)
    assert plan(3, 3, config(1, 2, 3), pods(3)) == Done()


def test_observers_in_the_config_do_not_count_as_voters() -> None:
    cfg = config(1, 2, 3, observers=(4,))
    step = plan(5, 4, cfg, pods(4, o3=PodState(3, ready=True, mode="observer")))
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_an_empty_configuration_is_never_acted_on() -> None:
    step = plan(3, 3, EnsembleConfig((), None), pods(3))
    assert isinstance(step, Wait)


def test_scale_from_one_to_three_and_back() -> None:
    step = plan(3, 1, config(1), pods(1))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 2
    step = plan(3, 2, config(1), pods(2))
    assert isinstance(step, Reconfig) and step.joining == (line(2),)
    step = plan(1, 3, config(1, 2, 3), pods(3, leader=3))
    assert isinstance(step, Reconfig) and step.leaving == (2,)
