"""Cordoned nodes' agents are drained, then taken down; uncordoned ones come back up."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.mesos.maintenance import (
    machines_in,
    plan_maintenance,
    with_window,
    without_hosts,
)

STATE: dict[str, Any] = {
    "slaves": [
        {"id": "a1", "hostname": "node-1", "pid": "slave(1)@10.0.0.1:5051"},
        {"id": "a2", "hostname": "node-2", "pid": "slave(1)@10.0.0.2:5051"},
    ],
    "frameworks": [
        {"tasks": [
            {"slave_id": "a1", "state": "TASK_RUNNING"},
            {"slave_id": "a1", "state": "TASK_FINISHED"},
            {"slave_id": "a2", "state": "TASK_RUNNING"},
        ]}
    ],
}  # fmt: skip
NODE_1 = {"hostname": "node-1", "ip": "10.0.0.1"}


def test_a_cordoned_node_with_an_agent_is_scheduled() -> None:
    plan = plan_maintenance({"node-1", "not-a-mesos-node"}, STATE, {}, {}, {})
    assert plan.schedule == [NODE_1]
    assert plan.report == [{"node": "node-1", "state": "Draining", "tasks": 1}]
    assert not plan.down and not plan.up


def test_draining_waits_for_live_tasks_then_goes_down() -> None:
    still_busy = plan_maintenance({"node-1"}, STATE, {}, {"node-1": NODE_1}, {})
    assert still_busy.down == [] and still_busy.report[0]["tasks"] == 1
    empty = {**STATE, "frameworks": []}
    drained = plan_maintenance({"node-1"}, empty, {}, {"node-1": NODE_1}, {})
    assert drained.down == [NODE_1]


def test_uncordoned_nodes_come_back() -> None:
    plan = plan_maintenance(
        set(), STATE, {}, {"node-2": {"hostname": "node-2"}}, {"node-1": NODE_1}
    )
    assert plan.up == [NODE_1]
    assert plan.unschedule == {"node-2"}
    assert plan.report == []


def test_schedule_windows_added_and_removed() -> None:
    schedule = with_window({}, [NODE_1], start_nanos=5)
    assert schedule["windows"][0]["machine_ids"] == [NODE_1]
    assert schedule["windows"][0]["unavailability"]["start"] == {"nanoseconds": 5}
    assert without_hosts(schedule, {"node-1"}) == {"windows": []}


def test_maintenance_status_shapes() -> None:
    draining = [{"id": NODE_1, "statuses": []}]
    assert machines_in(draining) == {"node-1": NODE_1}
    assert machines_in([NODE_1]) == {"node-1": NODE_1}


def test_a_draining_machine_whose_agent_has_not_re_registered_is_not_taken_down() -> None:
    # After a failover the leader lists the agents of its registry in `recovered_slaves`
    # (SlaveInfo, no tasks; src/master/readonly_handler.cpp) until they re-register: no task
    # of node-1 is visible, yet they run. DOWN now would have the master shut the agent down
    # when it re-registers (src/master/master.cpp `_reregisterSlave`), killing them.
    after_failover = {
        "slaves": [STATE["slaves"][1]],
        "recovered_slaves": [{"id": "a1", "hostname": "node-1", "port": 5051}],
        "frameworks": [],
    }
    plan = plan_maintenance({"node-1"}, after_failover, {}, {"node-1": NODE_1}, {})
    assert plan.down == []
    assert plan.report == [{"node": "node-1", "state": "Draining"}]
    # A recovering leader lists no agent at all: the same.
    recovering: dict[str, Any] = {"slaves": [], "recovered_slaves": [], "frameworks": []}
    assert plan_maintenance({"node-1"}, recovering, {}, {"node-1": NODE_1}, {}).down == []
    # Re-registered with no task left: now it goes down.
    back = {"slaves": STATE["slaves"], "recovered_slaves": [], "frameworks": []}
    assert plan_maintenance({"node-1"}, back, {}, {"node-1": NODE_1}, {}).down == [NODE_1]
