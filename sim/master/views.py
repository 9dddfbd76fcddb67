"""JSON views of the master's state, shaped like Mesos' documented endpoints (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim import VERSION
from sim import maintenance as mt
from sim import resources as res
from sim.master.registry import Agent, Framework, MasterState
from sim.tasks import COUNTED, LIVE, Task, count_states


@dataclass(frozen=True)
class Identity:
    info: dict[str, Any]  # this master's MasterInfo
    cluster: str
    start_time: float
    flags: dict[str, str]


def _agent_json(state: MasterState, agent: Agent) -> dict[str, Any]:
    used = state.used(agent.agent_id)
    out: dict[str, Any] = {
        "id": agent.agent_id,
        "pid": agent.pid,
        "hostname": agent.hostname,
        "port": agent.port,
        "registered_time": agent.registered_time,
        "resources": {**res.render(agent.resources), "ports": res.render_ports(agent.ports)},
        "used_resources": res.render(used),
        "offered_resources": res.render({}),
        "reserved_resources": {},
        "unreserved_resources": res.render(agent.resources),
        "attributes": {},
        "active": agent.active,
        "deactivated": state.agent_mode(agent) != mt.UP,
        "version": VERSION,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = agent.reregistered_time
    return out


def _framework_json(state: MasterState, fw: Framework) -> dict[str, Any]:
    live, done = state.framework_tasks(fw.framework_id)
    used: res.Resources = {}
    for task in live:
        used = res.add(used, task.resources)
    connected = state.connected(fw)
    out: dict[str, Any] = {
        "id": fw.framework_id,
        "name": fw.name,
        "pid": "",
        "hostname": fw.hostname,
        "webui_url": fw.webui_url,
        "user": fw.user,
        "role": fw.role,
        "roles": [fw.role],
        "failover_timeout": fw.failover_timeout,
        "checkpoint": fw.checkpoint,
        "capabilities": ["PARTITION_AWARE"],
        "active": connected,
        "connected": connected,
        "recovered": fw.recovered,
        "registered_time": fw.registered_time,
        "unregistered_time": 0,
        "used_resources": res.render(used),
        "offered_resources": res.render({}),
        "resources": res.render(used),
        "tasks": [t.to_json() for t in live],
        "unreachable_tasks": [],
        "completed_tasks": [t.to_json() for t in done],
        "offers": [],
        "executors": [],
    }
    if fw.reregistered_time is not None:
        out["reregistered_time"] = fw.reregistered_time
    return out


def state(
    ms: MasterState, me: Identity, leader: dict[str, Any] | None, elected_time: float | None
) -> dict[str, Any]:
    agents = list(ms.agents.values())
    out: dict[str, Any] = {
        "version": VERSION,
        "git_sha": "sim",
        "build_date": "",
        "build_time": 0,
        "build_user": "sim",
        "start_time": me.start_time,
        "id": me.info["id"],
        "pid": me.info["pid"],
        "hostname": me.info["hostname"],
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": sum(1 for a in agents if a.active),
        "deactivated_slaves": sum(1 for a in agents if not a.active),
        "unreachable_slaves": 0,
        "cluster": me.cluster,
        "log_dir": "",
        "flags": me.flags,
        "slaves": [_agent_json(ms, a) for a in agents],
        "recovered_slaves": list(ms.recovered_agents.values()),
        "frameworks": [_framework_json(ms, f) for f in ms.frameworks.values()],
        "completed_frameworks": [],
        "unregistered_frameworks": [],
    }
    if elected_time is not None:
        out["elected_time"] = elected_time
    if leader is not None:
        out["leader"] = leader["pid"]
        out["leader_info"] = leader
    return out


def state_summary(ms: MasterState, me: Identity) -> dict[str, Any]:
    tasks = list(ms.tasks.values()) + list(ms.completed)
    slaves = []
    for agent in ms.agents.values():
        mine = [t for t in tasks if t.agent_id == agent.agent_id]
        entry = _agent_json(ms, agent)
        entry.update(count_states(mine))
        entry["framework_ids"] = sorted({t.framework_id for t in mine if t.live})
        slaves.append(entry)
    frameworks = []
    for fw in ms.frameworks.values():
        mine = [t for t in tasks if t.framework_id == fw.framework_id]
        entry = {
            k: v
            for k, v in _framework_json(ms, fw).items()
            if k not in ("tasks", "completed_tasks", "unreachable_tasks", "offers", "executors")
        }
        entry.update(count_states(mine))
        entry["slave_ids"] = sorted({t.agent_id for t in mine if t.live})
        frameworks.append(entry)
    return {
        "hostname": me.info["hostname"],
        "cluster": me.cluster,
        "slaves": slaves,
        "frameworks": frameworks,
    }


def metrics(
    ms: MasterState | None,
    me: Identity,
    now: float,
    *,
    elected: bool,
    log_recovered: bool,
    extra: dict[str, float] | None = None,
) -> dict[str, float]:
    """`/metrics/snapshot`. A master that does not lead reports `master/elected` 0 and zeros;
    an elected master that has not recovered its registry reports `master/elected` 1 and
    zeros (an empty master, as Mesos). `registrar/log/recovered` is the local replica's
    recovery (src/log/log.cpp `_recovered`): 1 once it is VOTING, on any master."""
    out: dict[str, float] = {
        "master/elected": 1.0 if elected else 0.0,
        "master/uptime_secs": round(now - me.start_time, 3),
        "registrar/log/recovered": 1.0 if log_recovered else 0.0,
        **(extra or {}),
    }
    agents = list(ms.agents.values()) if ms is not None else []
    frameworks = list(ms.frameworks.values()) if ms is not None else []
    live: list[Task] = list(ms.tasks.values()) if ms is not None else []
    done: list[Task] = list(ms.completed) if ms is not None else []
    counts = count_states(live + done)
    connected_fw = [f for f in frameworks if ms is not None and ms.connected(f)]
    total: res.Resources = {}
    used: res.Resources = {}
    for agent in agents:
        total = res.add(total, agent.resources)
    for task in live:
        if task.state in LIVE:
            used = res.add(used, task.resources)
    out.update(
        {
            "master/slaves_active": float(sum(1 for a in agents if a.active)),
            "master/slaves_inactive": float(sum(1 for a in agents if not a.active)),
            "master/slaves_connected": float(sum(1 for a in agents if a.active)),
            "master/slaves_disconnected": float(sum(1 for a in agents if not a.active)),
            "master/slaves_unreachable": 0.0,
            "master/frameworks_active": float(len(connected_fw)),
            "master/frameworks_inactive": float(len(frameworks) - len(connected_fw)),
            "master/frameworks_connected": float(len(connected_fw)),
            "master/frameworks_disconnected": float(len(frameworks) - len(connected_fw)),
            "master/outstanding_offers": 0.0,
        }
    )
    for state_name in COUNTED:
        key = "master/tasks_" + state_name[len("TASK_") :].lower()
        out[key] = float(counts.get(state_name, 0))
    for name in ("cpus", "mem", "disk", "gpus"):
        t, u = total.get(name, 0.0), used.get(name, 0.0)
        out[f"master/{name}_total"] = t
        out[f"master/{name}_used"] = u
        out[f"master/{name}_percent"] = u / t if t else 0.0
    if ms is not None:
        for name, value in ms.counters.items():
            out[f"master/{name}"] = float(value)
    return out


def maintenance_status(ms: MasterState) -> dict[str, Any]:
    """`/master/maintenance/status`: draining machines with the frameworks' inverse offer
    responses, and down machines. `tasks` (live tasks on the machine) is a sim extension."""
    draining = []
    for machine in ms.maintenance.machines(mt.DRAINING):
        agents = [a for a in ms.agents.values() if mt.matches(machine, a.hostname, a.ip)]
        ids = {a.agent_id for a in agents}
        tasks = [t for t in ms.tasks.values() if t.agent_id in ids]
        statuses = []
        for fid in sorted({t.framework_id for t in tasks}):
            fw = ms.frameworks.get(fid)
            answers = [fw.inverse_offers[a] for a in ids if fw and a in fw.inverse_offers]
            status, ts = max(answers, key=lambda x: x[1]) if answers else ("UNKNOWN", 0.0)
            statuses.append(
                {
                    "framework_id": {"value": fid},
                    "status": status,
                    "timestamp": {"nanoseconds": int(ts * 1e9)},
                }
            )
        draining.append(
            {
                "id": mt.machine_json(machine),
                "statuses": statuses,
                "tasks": [
                    {
                        "framework_id": t.framework_id,
                        "task_id": t.task_id,
                        "agent_id": t.agent_id,
                        "state": t.state,
                    }
                    for t in tasks
                ],
            }
        )
    return {
        "draining_machines": draining,
        "down_machines": [mt.machine_json(m) for m in ms.maintenance.machines(mt.DOWN)],
    }
