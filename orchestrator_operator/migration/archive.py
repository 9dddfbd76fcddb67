"""Ensemble A's data, kept in ConfigMaps for the rollback retention window.

Pure except `read_archive`: the persistent znodes under the migrated paths (data and ACLs;
ephemerals are sessions, not data) as gzipped JSON lines, cut into ConfigMap-sized parts.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime
from typing import Any

from ..builders.meta import Manifest
from ..zk.model import TreeSnapshot
from ..zk.reader import read_tree

PART_BYTES = 900_000  # a ConfigMap holds at most 1 MiB
ARCHIVE_KEY = "znodes.jsonl.gz"
EXPIRES_ANNOTATION = "orchestrator.dev/archive-expires-at"


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
                    "orchestrator.dev/archive-part": f"{index + 1}/{len(parts)}",
                },
                "ownerReferences": [owner_ref],
            },
            "binaryData": {ARCHIVE_KEY: base64.b64encode(part).decode()},
        }
        for index, part in enumerate(parts)
    ]


def read_archive(client: Any, paths: list[str]) -> bytes:
    return archive_lines(read_tree(client, paths, leaf_children=True))


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
