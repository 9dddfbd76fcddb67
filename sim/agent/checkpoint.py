"""The agent's checkpoint in its work dir: `meta/slaves/<agent id>/sim-agent.json` and a
`meta/slaves/latest` symlink, as Mesos lays out `meta/slaves/latest` (content simplified)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sim.tasks import Task


class Checkpoint:
    def __init__(self, work_dir: Path) -> None:
        self.slaves = work_dir / "meta" / "slaves"
        self.latest = self.slaves / "latest"

    def load(self) -> tuple[str | None, list[Task]]:
        path = self.latest / "sim-agent.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None, []
        return data.get("agent_id"), [Task.from_json(t) for t in data.get("tasks", [])]

    def save(self, agent_id: str, tasks: list[Task]) -> None:
        directory = self.slaves / agent_id
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "sim-agent.json.tmp"
        tmp.write_text(json.dumps({"agent_id": agent_id, "tasks": [t.to_json() for t in tasks]}))
        os.replace(tmp, directory / "sim-agent.json")
        if not self.latest.is_symlink() or os.readlink(self.latest) != agent_id:
            link = self.slaves / "latest.tmp"
            link.unlink(missing_ok=True)
            link.symlink_to(agent_id)
            os.replace(link, self.latest)

    def wipe(self) -> None:
        if self.slaves.exists():
            shutil.rmtree(self.slaves)
