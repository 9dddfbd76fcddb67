"""Compare the synced subtrees of two ensembles: digests per root and every difference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.sync.digest import Difference, count_under, diff_trees, subtree_digest
from orchestrator_operator.zk.connection import SyncError, close, connect
from orchestrator_operator.zk.model import Side, TreeSnapshot, is_under, normalize_root
from orchestrator_operator.zk.reader import read_tree


@dataclass
class RootDigest:
    root: str
    source: str
    target: str
    source_znodes: int
    target_znodes: int

    @property
    def equal(self) -> bool:
        return self.source == self.target


@dataclass
class VerifyReport:
    roots: list[RootDigest] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    unreadable: dict[Side, dict[str, str]] = field(default_factory=dict)
    missing_on_source: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.differences
            and not any(self.unreadable.values())
            and not self.missing_on_source
            and all(r.equal for r in self.roots)
        )

    def format(self, limit: int = 200) -> str:
        lines = []
        for r in self.roots:
            mark = "equal" if r.equal else "DIFFERENT"
            lines.append(
                f"{r.root}: {mark}  source {r.source[:16]} ({r.source_znodes} znodes)  "
                f"target {r.target[:16]} ({r.target_znodes} znodes)"
            )
        for path in self.missing_on_source:
            lines.append(f"error: source path {path} does not exist on the source ensemble")
        for side, bad in self.unreadable.items():
            name = "source" if side is Side.A else "target"
            for path, why in sorted(bad.items()):
                lines.append(f"error: cannot read {path} on {name}: {why}")
        for d in self.differences[:limit]:
            lines.append(d.describe())
        if len(self.differences) > limit:
            lines.append(f"... and {len(self.differences) - limit} more differences")
        lines.append(
            "in sync" if self.ok else f"NOT in sync: {len(self.differences)} difference(s)"
        )
        return "\n".join(lines)


def compare(a: TreeSnapshot, b: TreeSnapshot, roots: list[str]) -> VerifyReport:
    """Differences between two snapshots, leaving out subtrees unreadable on either side."""
    bad = [*a.unreadable, *b.unreadable]

    def readable(nodes: dict[str, Any]) -> dict[str, Any]:
        return {p: n for p, n in nodes.items() if not any(is_under(p, x) for x in bad)}

    na, nb = readable(a.nodes), readable(b.nodes)
    report = VerifyReport(
        differences=diff_trees(na, nb, roots),
        unreadable={Side.A: dict(a.unreadable), Side.B: dict(b.unreadable)},
        missing_on_source=list(a.missing_roots),
    )
    for root in roots:
        report.roots.append(
            RootDigest(
                root,
                subtree_digest(na, root),
                subtree_digest(nb, root),
                count_under(na, root),
                count_under(nb, root),
            )
        )
    return report


def verify_clients(client_a: Any, client_b: Any, paths: list[str]) -> VerifyReport:
    roots = [normalize_root(p) for p in paths]
    a = read_tree(client_a, roots, leaf_children=False)
    b = read_tree(client_b, roots, leaf_children=False)
    return compare(a, b, roots)


def verify(
    source: str,
    target: str,
    paths: list[str],
    *,
    connect_timeout: float = 15.0,
    source_auth: Sequence[tuple[str, str]] = (),
    target_auth: Sequence[tuple[str, str]] = (),
    source_tls: ReloadingTls | None = None,
    target_tls: ReloadingTls | None = None,
) -> VerifyReport:
    """Both sides read and compared; `*_auth` as for the engine (redacted ACLs unreadable)."""
    if not paths:
        raise SyncError("at least one --path is required")
    try:
        roots = [normalize_root(p) for p in paths]
    except ValueError as exc:
        raise SyncError(str(exc)) from exc
    ca = connect(
        source,
        "source",
        timeout=connect_timeout,
        session_timeout=10.0,
        auth=source_auth,
        tls=source_tls,
    )
    try:
        cb = connect(
            target,
            "target",
            timeout=connect_timeout,
            session_timeout=10.0,
            auth=target_auth,
            tls=target_tls,
        )
        try:
            return verify_clients(ca, cb, roots)
        finally:
            close(cb)
    finally:
        close(ca)
