"""The engine's durable memory (optional JSON file), so a restarted engine resumes exactly.

- ``base``: per path, the content hash both sides last agreed on (bidirectional merge).
- ``sessions``: the engine's recent session ids per side: ephemerals they own are the
  engine's own (dying) mirrors, not clients' nodes.
- ``resume``: per side, the id and password of the engine's last session, so an engine
  killed and started again within the session timeout carries on the same session and the
  mirrors it owns never vanish (a master contending on the other side would otherwise find
  the leader's mirror gone and lead too). The password lets whoever reads it act as that
  session: the file is written readable by its owner only.
- ``conflicts``: conflicts left for a person (manual strategy, sequential names issued on
  both sides), each with both sides' data.
"""

from __future__ import annotations

import base64
import binascii
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
    resume: dict[str, tuple[int, bytes]] = field(default_factory=dict)

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
            "resume": {
                side: [session_id, base64.b64encode(password).decode("ascii")]
                for side, (session_id, password) in self.resume.items()
            },
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EngineState:
        if raw.get("version") != 1:
            raise ValueError(f"unsupported state file version {raw.get('version')!r}")
        return cls(
            base={str(k): str(v) for k, v in raw.get("base", {}).items()},
            sessions={str(k): [int(i) for i in v] for k, v in raw.get("sessions", {}).items()},
            conflicts={str(p): ConflictRecord(**c) for p, c in raw.get("conflicts", {}).items()},
            resume=_resume(raw.get("resume") or {}),
        )


def _resume(raw: Any) -> dict[str, tuple[int, bytes]]:
    """The saved sessions; one that cannot be read is dropped (a new session is made)."""
    out: dict[str, tuple[int, bytes]] = {}
    for side, value in dict(raw).items():
        try:
            session_id, password = value
            out[str(side)] = (int(session_id), base64.b64decode(str(password), validate=True))
        except (TypeError, ValueError, binascii.Error):
            continue
    return out


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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a tmp file left by an older version kept its mode
        handle.write(json.dumps(state.to_json(), separators=(",", ":")))
    os.replace(tmp, path)
