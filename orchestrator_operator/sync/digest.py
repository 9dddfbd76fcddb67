"""Subtree digests and differences between two sides (pure functions, no I/O).

A digest covers, for every znode of a subtree: its path, data, ACL and whether it is
ephemeral. Versions, timestamps and ephemeral owners differ legitimately between two
ensembles and are left out.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator_operator.zk.model import NodeState, is_under


class DiffKind(enum.Enum):
    MISSING_ON_B = "missing_on_target"
    MISSING_ON_A = "missing_on_source"
    DATA = "data"
    ACL = "acl"
    EPHEMERAL = "ephemeral"


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    kind: DiffKind
    detail: str = ""

    def describe(self) -> str:
        text = f"{self.kind.value:18} {self.path}"
        return f"{text}  ({self.detail})" if self.detail else text


def _entries(nodes: Mapping[str, NodeState], root: str) -> Iterable[NodeState]:
    for path in sorted(nodes):
        if is_under(path, root):
            yield nodes[path]


def subtree_digest(nodes: Mapping[str, NodeState], root: str) -> str:
    """SHA-256 over (path, data, ACL, ephemeral) of every znode under ``root``, in path order."""
    h = hashlib.sha256()
    for node in _entries(nodes, root):
        path = node.path.encode()
        h.update(len(path).to_bytes(4, "big") + path)
        h.update(len(node.data).to_bytes(8, "big") + node.data)
        h.update(repr(node.acl).encode() + b"\x00")
        h.update(b"E" if node.ephemeral else b"P")
    return h.hexdigest()


def count_under(nodes: Mapping[str, NodeState], root: str) -> int:
    return sum(1 for path in nodes if is_under(path, root))


def _preview(data: bytes, limit: int = 40) -> str:
    text = repr(data[:limit])
    return text + ("..." if len(data) > limit else "")


def diff_trees(
    a: Mapping[str, NodeState],
    b: Mapping[str, NodeState],
    roots: Iterable[str] = ("/",),
) -> list[Difference]:
    """Every difference between side A and side B under ``roots``, in path order."""
    root_list = list(roots)

    def wanted(path: str) -> bool:
        return any(is_under(path, r) for r in root_list)

    out: list[Difference] = []
    for path in sorted(p for p in set(a) | set(b) if wanted(p)):
        na, nb = a.get(path), b.get(path)
        if na is None:
            out.append(Difference(path, DiffKind.MISSING_ON_A))
        elif nb is None:
            out.append(Difference(path, DiffKind.MISSING_ON_B))
        else:
            if na.data != nb.data:
                out.append(
                    Difference(
                        path,
                        DiffKind.DATA,
                        f"source {_preview(na.data)} target {_preview(nb.data)}",
                    )
                )
            if na.acl != nb.acl:
                out.append(Difference(path, DiffKind.ACL, f"source {na.acl} target {nb.acl}"))
            if na.ephemeral != nb.ephemeral:
                out.append(
                    Difference(
                        path,
                        DiffKind.EPHEMERAL,
                        f"source {'ephemeral' if na.ephemeral else 'persistent'}, "
                        f"target {'ephemeral' if nb.ephemeral else 'persistent'}",
                    )
                )
    return out
