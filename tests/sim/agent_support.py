"""Helpers of the agent conformance tests: extra agent processes and a bare framework that
launches tasks through the master's internal API (sim/README.md, "Internal protocol")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from sim.cluster import SimCluster
from sim.procs import SimProcess, free_ports


def agent(
    cluster: SimCluster, name: str, *flags: str, hostname: str | None = None
) -> tuple[SimProcess, str]:
    """An agent process on the cluster's masters (not started) and its URL."""
    port = free_ports(1)[0]
    argv = [
        "agent",
        f"--zk={cluster.mesos_zk}",
        f"--port={port}",
        f"--hostname={hostname or name}",
        f"--work_dir={cluster.base_dir / name}",
        "--resources=cpus:4;mem:4096;disk:1024",
        "--registration_backoff_factor=100ms",
        *flags,
    ]
    log = Path(cluster.base_dir) / "logs" / f"{name}.log"
    return SimProcess(name, argv, log), f"http://127.0.0.1:{port}"


def log_text(proc: SimProcess) -> str:
    try:
        return proc.log_path.read_text("utf-8", "replace")
    except OSError:
        return ""


class Framework:
    """A framework registered with the leading master; launches and kills tasks."""

    def __init__(self, cluster: SimCluster, name: str = "conformance") -> None:
        self.cluster = cluster
        response = httpx.post(
            cluster.leader_url() + "/sim/v1/frameworks/register",
            json={"framework_info": {"name": name, "checkpoint": True}},
        )
        response.raise_for_status()
        self.id = str(response.json()["framework_id"])

    def _url(self, call: str) -> str:
        return f"{self.cluster.leader_url()}/sim/v1/frameworks/{self.id}/{call}"

    def launch(self, task_id: str, command: str, **extra: Any) -> dict[str, Any]:
        spec = {
            "task_id": task_id,
            "name": task_id,
            "resources": {"cpus": extra.pop("cpus", 0.5), "mem": extra.pop("mem", 64)},
            "command": command,
            **extra,
        }
        response = httpx.post(self._url("launch"), json={"tasks": [spec]})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert body["launched"], body["errors"]
        launched: dict[str, Any] = body["launched"][0]
        return launched

    def kill(self, task_id: str) -> None:
        httpx.post(self._url("kill"), json={"task_id": task_id}).raise_for_status()


def agent_tasks(url: str) -> dict[str, dict[str, Any]]:
    """The agent's own `/state`: task id -> task, with its executor's sandbox `directory`."""
    state = httpx.get(url + "/state").json()
    found: dict[str, dict[str, Any]] = {}
    for framework in state["frameworks"]:
        for executor in framework["executors"] + framework["completed_executors"]:
            for task in executor["tasks"] + executor["completed_tasks"]:
                found[task["id"]] = {**task, "directory": executor.get("directory", "")}
    return found


def pids_in(directory: str) -> list[int]:
    """Live processes whose working directory is `directory` (a task's sandbox)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == directory:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if stat[0] not in ("Z", "X"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
