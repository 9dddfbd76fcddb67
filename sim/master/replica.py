"""A master's replica of the replicated log that holds the registry (pure, plus a JSON file).

Follows Mesos 1.11 `src/log/replica.cpp` and docs/replicated-log-internals.md:

- status EMPTY (no persisted state: a new work dir), STARTING (auto-initialization, phase
  one), RECOVERING (catching up) or VOTING. Only a VOTING replica answers promise and write
  requests; any replica answers a recover request with its status.
- A promise request (the coordinator's implicit promise, Multi-Paxos) is granted only for a
  proposal above the promised one, which is then persisted; the response carries the
  replica's highest entry (Mesos: its end position; the sim's entries each hold the whole
  registry, so the highest one is the state). A write is accepted for a proposal at least the
  promised one.
- The replica survives a restart when its file is kept (`<--work_dir>/replicated_log/`).

Each entry is the whole registry (the Mesos registrar stores the Registry as one variable
and truncates the log behind it); the replica keeps the value of its highest entry and the
position, proposal and digest of up to MAX_ENTRIES earlier ones, for the audit.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMPTY = "EMPTY"
STARTING = "STARTING"
RECOVERING = "RECOVERING"
VOTING = "VOTING"
STATUSES = (EMPTY, STARTING, RECOVERING, VOTING)
MAX_ENTRIES = 10_000


def digest(value: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Entry:
    position: int
    proposal: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "proposal": self.proposal, "digest": self.digest}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(int(data["position"]), int(data["proposal"]), str(data["digest"]))


@dataclass
class Replica:
    path: Path | None  # the replica's file; None: memory only (lost with the process)
    status: str = EMPTY
    promised: int = 0
    entries: list[Entry] = field(default_factory=list)
    value: dict[str, Any] | None = None  # the registry of the highest entry

    @classmethod
    def open(cls, work_dir: Path | None) -> Replica:
        if work_dir is None:
            return cls(None)
        path = work_dir / "replicated_log" / "replica.json"
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text())
        status = str(data.get("status", EMPTY))
        return cls(
            path,
            status=status if status in STATUSES else EMPTY,
            promised=int(data.get("promised", 0)),
            entries=[Entry.from_json(e) for e in data.get("entries", [])],
            value=data.get("value"),
        )

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json()))
        os.replace(tmp, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "promised": self.promised,
            "entries": [e.to_json() for e in self.entries],
            "value": self.value,
        }

    # ------------------------------------------------------------------ queries
    @property
    def position(self) -> int:
        return self.entries[-1].position if self.entries else 0

    def highest(self) -> dict[str, Any] | None:
        if not self.entries:
            return None
        return {**self.entries[-1].to_json(), "value": self.value}

    def set_status(self, status: str) -> None:
        self.status = status
        self.save()

    # ------------------------------------------------------------------ protocol
    def recover_response(self) -> dict[str, Any]:
        first = self.entries[0].position if self.entries else 0
        return {"status": self.status, "begin": first, "end": self.position}

    def promise(self, proposal: int) -> dict[str, Any] | None:
        """None: not VOTING, the request is ignored (replica.cpp)."""
        if self.status != VOTING:
            return None
        if proposal <= self.promised:
            return {"okay": False, "proposal": self.promised}
        self.promised = proposal
        self.save()
        return {"okay": True, "proposal": proposal, "highest": self.highest()}

    def write(self, proposal: int, position: int, value: dict[str, Any]) -> dict[str, Any] | None:
        if self.status != VOTING:
            return None
        if proposal < self.promised:
            return {"okay": False, "proposal": self.promised}
        self.promised = proposal
        self.accept(Entry(position, proposal, digest(value)), value)
        self.save()
        return {"okay": True, "proposal": proposal}

    def accept(self, entry: Entry, value: dict[str, Any]) -> None:
        """Store an entry; the value is kept when it is the highest position."""
        self.entries = [e for e in self.entries if e.position != entry.position]
        self.entries.append(entry)
        self.entries.sort(key=lambda e: e.position)
        del self.entries[:-MAX_ENTRIES]
        if self.entries[-1].position == entry.position:
            self.value = value

    def learn(self, quorum_entries: list[list[Entry]], end: int) -> None:
        """The elected coordinator's catch-up of its own replica (Mesos coordinator.cpp:
        "fill in any unlearned and/or missing positions" up to the end, log::catchup ->
        log::fill): at each position up to `end`, the entry accepted with the highest
        proposal among a quorum's replicas, which is the chosen one if any was chosen (a
        deposed leader's own replica may hold a write no quorum accepted, at a position a
        later leader chose another value for). Positions no replica holds stay missing
        (Mesos fills them with a NOP). The highest entry's value is not touched."""
        best: dict[int, Entry] = {}
        for entries in [self.entries, *quorum_entries]:
            for entry in entries:
                if entry.position > end:
                    continue
                known = best.get(entry.position)
                if known is None or entry.proposal > known.proposal:
                    best[entry.position] = entry
        above = [e for e in self.entries if e.position > end]
        self.entries = sorted([*best.values(), *above], key=lambda e: e.position)
        del self.entries[:-MAX_ENTRIES]
        self.save()

    def catch_up(self, source: dict[str, Any], promised: int) -> None:
        """Adopt what a quorum of VOTING replicas holds (the highest of their entries, and
        that replica's entry list) and vote from now on with a promise above theirs."""
        for entry in source.get("entries", []):
            known = Entry.from_json(entry)
            if not any(e.position == known.position for e in self.entries):
                self.entries.append(known)
        self.entries.sort(key=lambda e: e.position)
        del self.entries[:-MAX_ENTRIES]
        highest = source.get("highest")
        if highest and int(highest["position"]) >= self.position:
            self.accept(Entry.from_json(highest), dict(highest["value"] or {}))
        self.promised = max(self.promised, promised)
        self.status = VOTING
        self.save()
