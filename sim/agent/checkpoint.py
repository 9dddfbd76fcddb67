"""The agent's checkpoint in its work dir: `meta/slaves/<agent id>/sim-agent.json` and a
`meta/slaves/latest` symlink, as Mesos lays out `meta/slaves/latest` (content simplified:
the agent id, its tasks, and for each task the container to find again on recovery: pid or
docker container name, sandbox, cgroups; `src/slave/paths.cpp`, docs/agent-recovery.md)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.agent.containers import Run
from sim.tasks import Task


@dataclass
class State:
    agent_id: str | None = None
    tasks: list[Task] = field(default_factory=list)
    runs: dict[tuple[str, str], Run] = field(default_factory=dict)


class Checkpoint:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.slaves = work_dir / "meta" / "slaves"
        self.latest = self.slaves / "latest"

    def load(self) -> tuple[str | None, list[Task]]:
        state = self.load_state()
        return state.agent_id, state.tasks

    def load_state(self) -> State:
        path = self.latest / "sim-agent.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return State()
        runs: dict[tuple[str, str], Run] = {}
        for key, raw in (data.get("runs") or {}).items():
            framework_id, _, task_id = str(key).partition("/")
            runs[(framework_id, task_id)] = Run.from_json(raw)
        return State(data.get("agent_id"), [Task.from_json(t) for t in data.get("tasks", [])], runs)

    def save(
        self,
        agent_id: str,
        tasks: list[Task],
        runs: dict[tuple[str, str], Run] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        directory = self.slaves / agent_id
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "sim-agent.json.tmp"
        body: dict[str, Any] = {
            "agent_id": agent_id,
            "tasks": [t.to_json() for t in tasks],
            "runs": {f"{fw}/{task}": run.to_json() for (fw, task), run in (runs or {}).items()},
            **(extra or {}),
        }
        tmp.write_text(json.dumps(body))
        os.replace(tmp, directory / "sim-agent.json")
        if not self.latest.is_symlink() or os.readlink(self.latest) != agent_id:
            link = self.slaves / "latest.tmp"
            link.unlink(missing_ok=True)
            link.symlink_to(agent_id)
            os.replace(link, self.latest)

    def sandbox(self, agent_id: str, framework_id: str, task_id: str, container_id: str) -> Path:
        """`<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>`
        (src/slave/paths.cpp); the sim's executor id is the task id."""
        return (
            self.work_dir
            / "slaves"
            / agent_id
            / "frameworks"
            / framework_id
            / "executors"
            / task_id
            / "runs"
            / container_id
        )

    def wipe(self) -> None:
        if self.slaves.exists():
            shutil.rmtree(self.slaves)
