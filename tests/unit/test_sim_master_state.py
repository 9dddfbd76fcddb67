"""The master's registry, maintenance rules and views, without processes."""

from __future__ import annotations

import pytest

from sim import maintenance as mt
from sim.marathon.planner import LiveTask, plan, satisfied
from sim.master import views
from sim.master.registry import MasterState, Refused, Unknown
from sim.tasks import KILLED, LOST, RUNNING, STAGING, Task


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _state(clock: Clock | None = None) -> MasterState:
    clock = clock or Clock()
    return MasterState("m1", clock=clock, wall=clock, disconnect_after=3, remove_after=10)


def _identity() -> views.Identity:
    from sim import masterinfo

    info = masterinfo.master_info("m1", "127.0.0.1", 5050, "m1", "1.11.0")
    return views.Identity(info=info, cluster="c", start_time=0.0, flags={})


def _running(ms: MasterState, fid: str, agent: str, *ids: str) -> list[Task]:
    tasks = []
    for task_id in ids:
        task = Task(task_id, task_id, fid, agent, resources={"cpus": 1.0})
        task.set_state(RUNNING, 1.0)
        tasks.append(task)
    return tasks


def _schedule(*machines: dict[str, str]) -> dict[str, object]:
    return {
        "windows": [
            {"machine_ids": list(machines), "unavailability": {"start": {"nanoseconds": 1}}}
        ]
    }


def test_agents_keep_their_tasks_across_a_failover_via_reregistration() -> None:
    old = _state()
    agent_id, _ = old.register_agent(None, "a0", "127.0.0.1", 5051, {"cpus": 4.0}, [])
    assert agent_id == "m1-S0"
    fid = old.register_framework(None, {"name": "marathon"})
    new = MasterState("m2")
    new.recover(old.registry())
    assert list(new.recovered_agents) == [agent_id]
    tasks = _running(new, fid, agent_id, "t1", "t2")
    new.register_agent(agent_id, "a0", "127.0.0.1", 5051, {"cpus": 4.0}, tasks)
    assert not new.recovered_agents
    assert new.frameworks[fid].recovered  # until the framework re-registers
    assert new.register_framework(fid, {"name": "marathon"}) == fid
    live, _ = new.framework_tasks(fid)
    assert sorted(t.task_id for t in live) == ["t1", "t2"]
    assert all(t.state == RUNNING for t in live)
    assert new.next_agent == 1  # ids are never reused


def test_placement_respects_resources_and_maintenance() -> None:
    ms = _state()
    a0, _ = ms.register_agent(None, "a0", "127.0.0.1", 1, {"cpus": 2.0, "mem": 100.0}, [])
    a1, _ = ms.register_agent(None, "a1", "127.0.0.1", 2, {"cpus": 2.0, "mem": 100.0}, [])
    fid = ms.register_framework(None, {})
    ms.update_schedule(_schedule({"hostname": "a1", "ip": "127.0.0.1"}))
    specs = [{"task_id": f"t{i}", "resources": {"cpus": 1.0}} for i in range(3)]
    placed, errors = ms.place(fid, specs)
    assert [t.agent_id for t in placed] == [a0, a0]
    assert len(errors) == 1
    assert all(t.state == STAGING for t in placed)
    with pytest.raises(Unknown):
        ms.place("nope", specs)
    assert a1 in {o["agent_id"] for o in ms.inverse_offers(fid)}


def test_silent_agents_deactivate_then_get_removed_with_tasks_lost() -> None:
    clock = Clock()
    ms = _state(clock)
    fid = ms.register_framework(None, {})
    agent = "m1-S0"
    ms.register_agent(None, "a0", "127.0.0.1", 1, {"cpus": 4.0}, _running(ms, fid, agent, "t"))
    clock.now += 5
    ms.tick()
    assert not ms.agents[agent].active
    assert ms.tasks[(fid, "t")].state == RUNNING
    clock.now += 10
    assert ms.tick() == [agent]
    assert [t.state for t in ms.completed] == [LOST]
    with pytest.raises(Unknown):
        ms.heartbeat(agent, [])


def test_terminal_task_reports_are_acknowledged() -> None:
    ms = _state()
    fid = ms.register_framework(None, {})
    tasks = _running(ms, fid, "m1-S0", "t")
    agent, _ = ms.register_agent(None, "a0", "127.0.0.1", 1, {"cpus": 4.0}, tasks)
    tasks[0].set_state(KILLED, 2.0)
    assert ms.heartbeat(agent, tasks) == ["t"]
    assert not ms.tasks
    assert ms.framework_tasks(fid)[1][0].state == KILLED


def test_maintenance_rules() -> None:
    state = mt.Maintenance()
    machine = {"hostname": "a0", "ip": "127.0.0.1"}
    with pytest.raises(mt.MaintenanceError):
        state.down([mt.machine_key(machine)])  # not scheduled
    with pytest.raises(mt.MaintenanceError):
        state.update_schedule(_schedule(machine, machine))  # twice
    with pytest.raises(mt.MaintenanceError):
        state.update_schedule({"windows": [{"machine_ids": [machine]}]})  # no unavailability
    state.update_schedule(_schedule(machine))
    assert state.mode_of("A0", "127.0.0.1") == mt.DRAINING
    state.down([mt.machine_key(machine)])
    with pytest.raises(mt.MaintenanceError):
        state.update_schedule({"windows": []})  # a DOWN machine stays scheduled
    restored = mt.Maintenance.from_json(state.to_json())
    assert restored.mode_of("a0", "127.0.0.1") == mt.DOWN
    state.up([mt.machine_key(machine)])
    assert state.mode_of("a0", "127.0.0.1") == mt.UP
    assert state.schedule == {"windows": []}


def test_machine_down_removes_agents_their_tasks_go_lost_and_they_are_refused() -> None:
    ms = _state()
    fid = ms.register_framework(None, {})
    tasks = _running(ms, fid, "m1-S0", "t1")
    agent, _ = ms.register_agent(None, "a0", "127.0.0.1", 1, {"cpus": 4.0}, tasks)
    machine = {"hostname": "a0", "ip": "127.0.0.1"}
    ms.update_schedule(_schedule(machine))
    status = views.maintenance_status(ms)
    assert status["draining_machines"][0]["tasks"][0]["task_id"] == "t1"
    assert status["draining_machines"][0]["statuses"][0]["status"] == "UNKNOWN"
    gone = ms.machine_down([mt.machine_key(machine)])
    assert [a.agent_id for a in gone] == [agent]
    assert [t.state for t in ms.completed] == [LOST]
    assert views.maintenance_status(ms)["down_machines"] == [machine]
    with pytest.raises(Refused) as refused:
        ms.register_agent(None, "a0", "127.0.0.1", 1, {"cpus": 4.0}, [])
    assert refused.value.status == 403
    ms.machine_up([mt.machine_key(machine)])
    with pytest.raises(Refused) as gone_agent:
        ms.register_agent(agent, "a0", "127.0.0.1", 1, {"cpus": 4.0}, [])
    assert gone_agent.value.status == 410


def test_state_and_metrics_views() -> None:
    ms = _state()
    fid = ms.register_framework(None, {"name": "marathon"})
    tasks = _running(ms, fid, "m1-S0", "t1", "t2")
    ms.register_agent(None, "a0", "127.0.0.1", 1, {"cpus": 4.0, "mem": 10.0}, tasks)
    me = _identity()
    state = views.state(ms, me, me.info, 5.0)
    assert state["leader"] == "master@127.0.0.1:5050"
    assert state["leader_info"]["id"] == "m1"
    assert state["elected_time"] == 5.0
    assert state["frameworks"][0]["name"] == "marathon"
    assert [t["state"] for t in state["frameworks"][0]["tasks"]] == [RUNNING, RUNNING]
    snap = views.metrics(ms, me, 10.0, elected=True, log_recovered=True)
    assert snap["master/elected"] == 1.0
    assert snap["master/tasks_running"] == 2.0
    assert snap["master/slaves_active"] == 1.0
    assert snap["master/cpus_used"] == 2.0
    assert (
        views.metrics(None, me, 10.0, elected=False, log_recovered=False)["master/elected"] == 0.0
    )
    summary = views.state_summary(ms, me)
    assert summary["slaves"][0]["TASK_RUNNING"] == 2


def test_planner_scales_and_drains() -> None:
    def t(task_id: str, agent: str, state: str = RUNNING, at: float = 0.0) -> LiveTask:
        return LiveTask(task_id, agent, state, at)

    assert plan(3, [], set()).launch == 3
    down = plan(1, [t("a", "x", at=1), t("b", "x", at=2)], set())
    assert (down.launch, down.kill) == (0, ["b"])
    draining = plan(2, [t("a", "d"), t("b", "x")], {"d"})
    assert (draining.launch, draining.kill) == (1, [])
    replaced = plan(2, [t("a", "d"), t("b", "x"), t("c", "x")], {"d"})
    assert (replaced.launch, replaced.kill) == (0, ["a"])
    assert plan(0, [t("a", "d")], {"d"}).kill == ["a"]
    assert satisfied(2, [t("b", "x"), t("c", "x")], set())
    assert not satisfied(2, [t("b", "x"), t("c", "x", STAGING)], set())
