"""Ensemble A's data, kept in ConfigMaps for the rollback retention window.

Pure (the operator's handler reads A's tree): the persistent znodes under the migrated
paths (data and ACLs; ephemerals are sessions, not data) as gzipped JSON lines, cut into
ConfigMap-sized parts; and back: the parts joined, the znodes parsed, and the plan that
writes them onto an ensemble (`zk-migrate restore`).
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.zk.model import NodeState, Put, TreeSnapshot, depth, parent_of

PART_BYTES = 900_000  # a ConfigMap holds at most 1 MiB
ARCHIVE_KEY = "znodes.jsonl.gz"
EXPIRES_ANNOTATION = "orchestrator.dev/archive-expires-at"
PART_ANNOTATION = "orchestrator.dev/archive-part"  # "<index from 1>/<count>"


def archive_lines(snapshot: TreeSnapshot) -> bytes:
    lines = [
        json.dumps(
            {
                "path": node.path,
                "data": base64.b64encode(node.data).decode(),
                "acl": [list(entry) for entry in node.acl],
            }
        )
        for path, node in sorted(snapshot.nodes.items())
        if not node.ephemeral
    ]
    return gzip.compress("\n".join(lines).encode(), mtime=0)


def archive_configmaps(
    name: str, namespace: str, owner_ref: dict[str, Any], blob: bytes, expires: datetime
) -> list[Manifest]:
    parts = [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [b""]
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"{name}-archive-{index}",
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "orchestrator",
                    "orchestrator.dev/zkmigration": name,
                },
                "annotations": {
                    EXPIRES_ANNOTATION: expires.isoformat(),
                    PART_ANNOTATION: f"{index + 1}/{len(parts)}",
                },
                "ownerReferences": [owner_ref],
            },
            "binaryData": {ARCHIVE_KEY: base64.b64encode(part).decode()},
        }
        for index, part in enumerate(parts)
    ]


def parse_retention(value: str) -> float:
    """`72h`, `90m`, `1h30m`, `45s` -> seconds."""
    seconds, number = 0.0, ""
    for char in value:
        if char.isdigit():
            number += char
        else:
            seconds += int(number or 0) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
    return seconds


# ---------------------------------------------------------------- restore


class ArchiveError(ValueError):
    """An archive that cannot be read back, in words for the user."""


def joined_parts(configmaps: list[dict[str, Any]]) -> bytes:
    """The archive's bytes from its ConfigMaps (any order); every part must be there."""
    parts: dict[int, bytes] = {}
    totals: set[int] = set()
    for cm in configmaps:
        name = cm.get("metadata", {}).get("name", "?")
        label = (cm.get("metadata", {}).get("annotations") or {}).get(PART_ANNOTATION, "")
        try:
            index_text, total_text = label.split("/")
            index, total = int(index_text), int(total_text)
            data = base64.b64decode((cm.get("binaryData") or {})[ARCHIVE_KEY], validate=True)
        except (ValueError, KeyError):
            raise ArchiveError(f"ConfigMap {name} is not an archive part") from None
        parts[index] = data
        totals.add(total)
    if len(totals) != 1:
        raise ArchiveError(f"archive parts disagree on their count: {sorted(totals)}")
    total = totals.pop()
    missing = [i for i in range(1, total + 1) if i not in parts]
    if missing:
        raise ArchiveError(f"archive parts missing: {missing} of {total}")
    return b"".join(parts[i] for i in range(1, total + 1))


def archived_nodes(blob: bytes) -> list[NodeState]:
    """The persistent znodes of an archive, parents before children."""
    try:
        text = gzip.decompress(blob).decode()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise ArchiveError(f"the archive is not gzipped JSON lines: {error}") from None
    nodes: list[NodeState] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line:
            continue
        try:
            entry = json.loads(line)
            acl = tuple(sorted((int(p), str(s), str(i)) for p, s, i in entry["acl"]))
            nodes.append(NodeState(entry["path"], base64.b64decode(entry["data"]), acl))
        except (ValueError, KeyError, TypeError) as error:
            raise ArchiveError(f"archive line {number} cannot be read: {error}") from None
    return sorted(nodes, key=lambda n: (depth(n.path), n.path))


def archive_roots(archived: list[NodeState]) -> list[str]:
    """The archived znodes whose parent is not archived: the migrated paths."""
    paths = {n.path for n in archived}
    return sorted(p for p in paths if parent_of(p) not in paths)


@dataclass
class RestorePlan:
    puts: list[Put] = field(default_factory=list)  # created, or overwritten
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)  # differ from the archive, left as they are

    @property
    def creates(self) -> int:
        return sum(1 for p in self.puts if p.existing is None)


def restore_plan(archived: list[NodeState], current: TreeSnapshot, overwrite: bool) -> RestorePlan:
    """What writing ``archived`` back onto an ensemble holding ``current`` takes. Nothing is
    ever deleted; a znode that differs is overwritten only with ``overwrite``, and an
    ephemeral one (a live session's) never."""
    plan = RestorePlan()
    for node in archived:
        existing = current.nodes.get(node.path)
        if existing is None:
            plan.puts.append(Put(node.path, node, None))
        elif (existing.data, existing.acl, existing.ephemeral) == (node.data, node.acl, False):
            plan.unchanged += 1
        elif overwrite and not existing.ephemeral:
            plan.puts.append(Put(node.path, node, existing))
        else:
            plan.kept.append(node.path)
    return plan
