"""The agent's `/state` and `/metrics/snapshot`, shaped like Mesos' (pure)."""

from __future__ import annotations

from typing import Any

from sim import VERSION
from sim import resources as res
from sim.agent.containers import Run, Usage
from sim.tasks import COUNTED, LIVE, Task, count_states


def state(
    *,
    agent_id: str | None,
    ip: str,
    port: int,
    hostname: str,
    resources: res.Resources,
    master: dict[str, Any] | None,
    start_time: float,
    flags: dict[str, str],
    tasks: list[Task],
    completed: list[Task],
    runs: dict[tuple[str, str], Run] | None = None,
) -> dict[str, Any]:
    frameworks: dict[str, dict[str, Any]] = {}
    for task in tasks + completed:
        fw = frameworks.setdefault(
            task.framework_id,
            {"id": task.framework_id, "name": "", "executors": [], "completed_executors": []},
        )
        executor = {
            "id": task.task_id,
            "name": f"Command Executor (Task: {task.task_id})",
            "source": task.task_id,
            "tasks": [task.to_json()] if task.state in LIVE else [],
            "queued_tasks": [],
            "completed_tasks": [] if task.state in LIVE else [task.to_json()],
        }
        run = (runs or {}).get((task.framework_id, task.task_id))
        if run is not None:
            executor["container"] = run.container_id
            executor["directory"] = run.sandbox
        fw["executors" if task.state in LIVE else "completed_executors"].append(executor)
    return {
        "version": VERSION,
        "id": agent_id or "",
        "pid": f"slave(1)@{ip}:{port}",
        "hostname": hostname,
        "resources": res.render(resources),
        "attributes": {},
        "master_hostname": (master or {}).get("hostname", ""),
        "start_time": start_time,
        "flags": flags,
        "frameworks": list(frameworks.values()),
        "completed_frameworks": [],
    }


def metrics(
    *,
    registered: bool,
    uptime: float,
    resources: res.Resources,
    tasks: list[Task],
    completed: list[Task],
) -> dict[str, float]:
    counts = count_states(tasks + completed)
    out: dict[str, float] = {
        "slave/registered": 1.0 if registered else 0.0,
        "slave/uptime_secs": round(uptime, 3),
        "slave/recovery_errors": 0.0,
        "slave/frameworks_active": float(len({t.framework_id for t in tasks if t.live})),
        "slave/executors_running": float(sum(1 for t in tasks if t.live)),
    }
    for name in COUNTED:
        out["slave/tasks_" + name[len("TASK_") :].lower()] = float(counts.get(name, 0))
    used: res.Resources = {}
    for task in tasks:
        if task.live:
            used = res.add(used, task.resources)
    for name in ("cpus", "mem", "disk", "gpus"):
        total = resources.get(name, 0.0)
        out[f"slave/{name}_total"] = total
        out[f"slave/{name}_used"] = used.get(name, 0.0)
        out[f"slave/{name}_percent"] = used.get(name, 0.0) / total if total else 0.0
    return out


EXECUTOR_CPUS = 0.1  # src/slave/constants.hpp DEFAULT_EXECUTOR_CPUS
EXECUTOR_MEM_MB = 32  # DEFAULT_EXECUTOR_MEM


def statistics(tasks: list[Task], usages: dict[str, Usage], now: float) -> list[dict[str, Any]]:
    """`GET /monitor/statistics` (src/slave/http.cpp `_statistics`): one entry per executor
    with statistics. The sim's command tasks have no executor process, but their limits carry
    the command executor's allowance as Mesos' do (slave.cpp `getExecutorInfo`: + 0.1 cpus and
    32 MB)."""
    out: list[dict[str, Any]] = []
    for task in tasks:
        used = usages.get(task.task_id)
        if used is None:
            continue
        cpus = task.resources.get("cpus", 0.0) + EXECUTOR_CPUS
        mem_mb = task.resources.get("mem", 0.0) + EXECUTOR_MEM_MB
        out.append(
            {
                "framework_id": task.framework_id,
                "executor_id": task.task_id,
                "executor_name": f"Command Executor (Task: {task.task_id})",
                "source": task.task_id,
                "statistics": {
                    "timestamp": round(now, 3),
                    "cpus_user_time_secs": used.user_secs,
                    "cpus_system_time_secs": used.system_secs,
                    "cpus_limit": round(cpus, 6),
                    "mem_rss_bytes": used.rss_bytes,
                    "mem_limit_bytes": int(mem_mb * 1024 * 1024),
                },
            }
        )
    return out
