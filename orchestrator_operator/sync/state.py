"""The engine's durable memory (optional JSON file), so a restarted engine resumes exactly.

- ``base``: per path, the content hash both sides last agreed on (bidirectional merge).
- ``sessions``: the engine's recent session ids per side: ephemerals they own are the
  engine's own (dying) mirrors, not clients' nodes.
- ``conflicts``: conflicts left for a person (manual strategy, sequential names issued on
  both sides), each with both sides' data.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_SESSIONS = 16


@dataclass
class ConflictRecord:
    path: str
    reason: str
    source: str  # short description of side A's state
    target: str
    detected_at: float
    # both values in full (base64; None: absent on that side), so neither is lost
    source_data: str | None = None
    target_data: str | None = None


@dataclass
class EngineState:
    base: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, list[int]] = field(default_factory=lambda: {"a": [], "b": []})
    conflicts: dict[str, ConflictRecord] = field(default_factory=dict)

    def remember_session(self, side: str, session_id: int) -> None:
        ids = self.sessions.setdefault(side, [])
        if session_id and session_id not in ids:
            ids.append(session_id)
            del ids[:-MAX_SESSIONS]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "base": self.base,
            "sessions": self.sessions,
            "conflicts": {p: asdict(c) for p, c in self.conflicts.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EngineState:
        if raw.get("version") != 1:
            raise ValueError(f"unsupported state file version {raw.get('version')!r}")
        return cls(
            base={str(k): str(v) for k, v in raw.get("base", {}).items()},
            sessions={str(k): [int(i) for i in v] for k, v in raw.get("sessions", {}).items()},
            conflicts={str(p): ConflictRecord(**c) for p, c in raw.get("conflicts", {}).items()},
        )


def load_state(path: Path | None) -> EngineState:
    if path is None or not path.exists():
        return EngineState()
    try:
        return EngineState.from_json(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot read sync state file {path}: {exc}") from exc


def save_state(path: Path, state: EngineState) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state.to_json(), separators=(",", ":")), "utf-8")
    os.replace(tmp, path)
