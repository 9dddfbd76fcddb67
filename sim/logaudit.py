"""Checks over the masters' replicated-log audits (`GET /sim/v1/log` of each master).

Usable from any test that knows only master URLs:

    auditor = LogAuditor()
    auditor.sample(urls)            # as often as wanted, e.g. during a migration
    assert auditor.lost_committed_writes() == []
    assert auditor.max_leaders_at_once <= 1

A master's audit lists each registry write it committed as leader (position, digest of the
registry, the replicas that accepted it) and each recovery (the promise phase when it became
leader: the highest position it recovered and the entries it then knew). A committed write
is *lost* when a later recovery by another master did not reach its position, or holds
another value at that position: Paxos guarantees neither while any two quorums intersect.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class LostWrite:
    position: int
    digest: str
    committed_by: str
    acceptors: tuple[str, ...]
    recovered_by: str
    recovered_position: int
    recovered_from: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"write at position {self.position} committed by {self.committed_by} "
            f"(accepted by {', '.join(self.acceptors)}) is missing from the log recovered by "
            f"{self.recovered_by} from {', '.join(self.recovered_from)} "
            f"(position {self.recovered_position})"
        )


def fetch_audits(urls: list[str], timeout: float = 2.0) -> list[dict[str, Any]]:
    """Each reachable master's audit (a stopped or dead master is skipped)."""
    out = []
    with httpx.Client(timeout=timeout) as http:
        for url in urls:
            with contextlib.suppress(httpx.HTTPError):
                response = http.get(url.rstrip("/") + "/sim/v1/log")
                if response.status_code == 200:
                    out.append(response.json())
    return out


def leaders_at_once(urls: list[str], timeout: float = 2.0) -> list[str]:
    """The masters that, in one sample, each consider themselves the recovered leader."""
    return [a["address"] for a in fetch_audits(urls, timeout) if a.get("leading")]


def lost_committed_writes(audits: list[dict[str, Any]]) -> list[LostWrite]:
    commits = [c for a in audits for c in a.get("commits", [])]
    recoveries = [r for a in audits for r in a.get("recoveries", [])]
    lost: dict[tuple[int, str, str], LostWrite] = {}
    for rec in recoveries:
        known = {int(e["position"]): str(e["digest"]) for e in rec.get("entries", [])}
        for com in commits:
            if com["master"] == rec["master"] or float(com["at"]) >= float(rec["at"]):
                continue
            position, value = int(com["position"]), str(com["digest"])
            missing = int(rec["position"]) < position
            differs = position in known and known[position] != value
            if missing or differs:
                lost.setdefault(
                    (position, value, rec["master"]),
                    LostWrite(
                        position=position,
                        digest=value,
                        committed_by=str(com["master"]),
                        acceptors=tuple(com.get("acceptors", [])),
                        recovered_by=str(rec["master"]),
                        recovered_position=int(rec["position"]),
                        recovered_from=tuple(rec.get("from", [])),
                    ),
                )
    return sorted(lost.values(), key=lambda w: (w.position, w.recovered_by))


def interleaved_writers(audits: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of masters whose committed writes interleave in time (A, B, A): two leaders
    writing the log in the same period."""
    commits = sorted(
        (float(c["at"]), str(c["master"])) for a in audits for c in a.get("commits", [])
    )
    spans: dict[str, tuple[float, float]] = {}
    for at, master in commits:
        first, _ = spans.get(master, (at, at))
        spans[master] = (first, at)
    pairs = []
    names = sorted(spans)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (a0, a1), (b0, b1) = spans[a], spans[b]
            if a0 < b1 and b0 < a1:
                pairs.append((a, b))
    return pairs


@dataclass
class LogAuditor:
    """Accumulates the audits of masters over time (a master that later dies keeps the
    audit it last served) and answers the checks over all of them."""

    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_leaders_at_once: int = 0
    unsafe_seen: set[str] = field(default_factory=set)

    def sample(self, urls: list[str], timeout: float = 2.0) -> list[dict[str, Any]]:
        current = fetch_audits(urls, timeout)
        for audit in current:
            self.audits[str(audit["master"])] = audit
            if audit.get("quorum_intersection_unsafe"):
                self.unsafe_seen.add(str(audit["address"]))
        leading = sum(1 for a in current if a.get("leading"))
        self.max_leaders_at_once = max(self.max_leaders_at_once, leading)
        return current

    def lost_committed_writes(self) -> list[LostWrite]:
        return lost_committed_writes(list(self.audits.values()))

    def interleaved_writers(self) -> list[tuple[str, str]]:
        return interleaved_writers(list(self.audits.values()))
