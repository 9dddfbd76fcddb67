"""Pure: Mesos maintenance for cordoned Kubernetes nodes.

A cordoned node's agent is scheduled for maintenance (its machine turns DRAINING and
frameworks get inverse offers), and once no task runs on it any more the machine is marked
DOWN. An uncordoned node's machine is brought back UP (or simply unscheduled if it was still
draining). Agents are named after their node (`--hostname=$(NODE_NAME)`).

"No task runs on it" is only known of an agent registered with the leading master: after a
failover the master knows the agents of its registry only as `recovered_slaves` (SlaveInfo,
no tasks; src/master/readonly_handler.cpp) until each re-registers with its tasks, and a
recovering leader lists no agent at all. Marking such a machine DOWN would have the master
shut the agent down when it re-registers (src/master/master.cpp `_reregisterSlave`:
"Machine is `DOWN`"), killing the tasks nobody saw; so a machine goes DOWN only once its
agent is in `slaves` and not in `recovered_slaves`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator_operator.models.vocabulary import MaintenanceState

LIVE_TASK_STATES = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"}
DEFAULT_WINDOW_NANOS = 3600 * 10**9  # an hour of announced unavailability

Machine = dict[str, str]  # a Mesos MachineID: {"hostname": ..., "ip": ...}


def agent_machines(state: dict[str, Any]) -> dict[str, Machine]:
    """hostname -> MachineID of every registered agent, from /master/state."""
    machines: dict[str, Machine] = {}
    for agent in state.get("slaves", []):
        ip = agent.get("pid", "").rpartition("@")[2].partition(":")[0]
        machine = {"hostname": agent["hostname"]}
        if ip:
            machine["ip"] = ip
        machines[agent["hostname"]] = machine
    return machines


def recovered_hostnames(state: dict[str, Any]) -> set[str]:
    """Agents of the registry that have not re-registered since the leader's failover."""
    return {str(agent.get("hostname", "")).lower() for agent in state.get("recovered_slaves", [])}


def live_tasks_by_hostname(state: dict[str, Any]) -> dict[str, int]:
    hostname_of = {agent["id"]: agent["hostname"] for agent in state.get("slaves", [])}
    counts: dict[str, int] = {}
    for framework in state.get("frameworks", []):
        for task in framework.get("tasks", []):
            if task.get("state") in LIVE_TASK_STATES and task.get("slave_id") in hostname_of:
                host = hostname_of[task["slave_id"]]
                counts[host] = counts.get(host, 0) + 1
    return counts


def machines_in(status_entries: list[dict[str, Any]]) -> dict[str, Machine]:
    """hostname -> MachineID in `draining_machines` ({id, statuses}) or `down_machines`
    (MachineIDs) of /master/maintenance/status."""
    machines = [entry.get("id", entry) for entry in status_entries]
    return {machine.get("hostname", ""): machine for machine in machines}


def scheduled_hostnames(schedule: dict[str, Any]) -> set[str]:
    return {
        machine.get("hostname", "")
        for window in schedule.get("windows", [])
        for machine in window.get("machine_ids", [])
    }


def with_window(
    schedule: dict[str, Any], machines: list[Machine], start_nanos: int
) -> dict[str, Any]:
    """The schedule plus one window for `machines` starting now."""
    windows = list(schedule.get("windows", []))
    windows.append(
        {
            "machine_ids": machines,
            "unavailability": {
                "start": {"nanoseconds": start_nanos},
                "duration": {"nanoseconds": DEFAULT_WINDOW_NANOS},
            },
        }
    )
    return {"windows": windows}


def without_hosts(schedule: dict[str, Any], hostnames: set[str]) -> dict[str, Any]:
    """The schedule with those machines removed (and windows left empty dropped)."""
    windows = []
    for window in schedule.get("windows", []):
        kept = [m for m in window.get("machine_ids", []) if m.get("hostname") not in hostnames]
        if kept:
            windows.append({**window, "machine_ids": kept})
    return {"windows": windows}


@dataclass
class MaintenancePlan:
    schedule: list[Machine] = field(default_factory=list)  # start draining
    down: list[Machine] = field(default_factory=list)  # drained: take down
    up: list[Machine] = field(default_factory=list)  # uncordoned while down
    unschedule: set[str] = field(default_factory=set)  # uncordoned while draining
    report: list[dict[str, Any]] = field(default_factory=list)  # for status


def plan_maintenance(
    cordoned: set[str],
    state: dict[str, Any],
    schedule: dict[str, Any],
    draining: dict[str, Machine],
    down: dict[str, Machine],
) -> MaintenancePlan:
    machines = agent_machines(state)
    registered = {hostname.lower() for hostname in machines}
    recovering = recovered_hostnames(state)
    tasks = live_tasks_by_hostname(state)
    scheduled = scheduled_hostnames(schedule)
    plan = MaintenancePlan()
    for node in sorted(cordoned):
        if node in down:
            plan.report.append({"node": node, "state": MaintenanceState.DOWN, "tasks": 0})
        elif node in draining:
            remaining = tasks.get(node, 0)
            if node.lower() in recovering or node.lower() not in registered:
                # Its tasks are unknown until its agent (re-)registers: wait, say nothing.
                plan.report.append({"node": node, "state": MaintenanceState.DRAINING})
            elif remaining == 0:
                plan.down.append(draining[node])
                plan.report.append({"node": node, "state": MaintenanceState.DOWN, "tasks": 0})
            else:
                plan.report.append(
                    {"node": node, "state": MaintenanceState.DRAINING, "tasks": remaining}
                )
        elif node in machines and node not in scheduled:
            plan.schedule.append(machines[node])
            plan.report.append(
                {"node": node, "state": MaintenanceState.DRAINING, "tasks": tasks.get(node, 0)}
            )
    for node in sorted(down.keys() - cordoned):
        plan.up.append(down[node])  # the exact MachineID Mesos holds as DOWN
    plan.unschedule = (draining.keys() - cordoned) - down.keys()
    return plan
