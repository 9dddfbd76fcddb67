"""Conformance (pure): a log replica's answers, and the audit checker over synthetic audits.

src/log/replica.cpp: only a VOTING replica answers promise and write requests; a promise
is granted only above the promised proposal (persisted), a write only at or above it.
docs/replicated-log-internals.md ("Non-voting replicas"): a replica with no persisted state
(a new work dir) is EMPTY.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.logaudit import interleaved_writers, lost_committed_writes
from sim.master.replica import EMPTY, VOTING, Replica


def test_only_a_voting_replica_answers_and_promises_only_upwards(tmp_path: Path) -> None:
    replica = Replica.open(tmp_path)
    assert replica.status == EMPTY
    assert replica.promise(1) is None
    assert replica.write(1, 1, {"version": 1}) is None
    replica.set_status(VOTING)
    assert replica.promise(5) == {"okay": True, "proposal": 5, "highest": None}
    assert replica.promise(5) == {"okay": False, "proposal": 5}
    assert replica.write(4, 1, {"version": 1}) == {"okay": False, "proposal": 5}
    assert replica.write(5, 1, {"version": 1}) == {"okay": True, "proposal": 5}
    granted = replica.promise(6)
    assert granted is not None and granted["highest"]["position"] == 1
    assert granted["highest"]["value"] == {"version": 1}


def test_a_replica_survives_a_restart_only_with_its_work_dir(tmp_path: Path) -> None:
    replica = Replica.open(tmp_path / "kept")
    replica.set_status(VOTING)
    replica.promise(3)
    replica.write(3, 1, {"version": 7})
    again = Replica.open(tmp_path / "kept")
    assert (again.status, again.promised, again.position) == (VOTING, 3, 1)
    assert again.value == {"version": 7}
    assert Replica.open(tmp_path / "new").status == EMPTY
    assert Replica.open(None).status == EMPTY


def _audit(
    master: str, commits: list[dict[str, Any]], recoveries: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"master": master, "address": master, "commits": commits, "recoveries": recoveries}


def test_the_checker_reports_a_write_a_later_leader_did_not_recover() -> None:
    commit = {"master": "a", "at": 10.0, "position": 4, "digest": "d4", "acceptors": ["a", "b"]}
    behind = {"master": "d", "at": 20.0, "position": 3, "entries": [], "from": ["d", "e"]}
    other = {
        "master": "e",
        "at": 30.0,
        "position": 5,
        "entries": [{"position": 4, "digest": "x4", "proposal": 9}],
        "from": ["e", "f"],
    }
    caught = {"master": "c", "at": 25.0, "position": 4, "entries": [], "from": ["b", "c"]}
    earlier = {"master": "z", "at": 5.0, "position": 0, "entries": [], "from": ["z", "y"]}
    audits = [
        _audit("a", [commit], []),
        _audit("d", [], [behind]),
        _audit("e", [], [other]),
        _audit("c", [], [caught]),
        _audit("z", [], [earlier]),
    ]
    lost = lost_committed_writes(audits)
    assert [(w.position, w.recovered_by) for w in lost] == [(4, "d"), (4, "e")]
    assert lost[0].acceptors == ("a", "b") and lost[0].recovered_from == ("d", "e")
    assert lost_committed_writes([_audit("a", [commit], []), _audit("c", [], [caught])]) == []


def test_the_checker_reports_two_writers_in_the_same_period() -> None:
    def c(master: str, at: float) -> dict[str, Any]:
        return {"master": master, "at": at, "position": int(at), "digest": "d"}

    one_after_other = [_audit("a", [c("a", 1), c("a", 2)], []), _audit("b", [c("b", 3)], [])]
    assert interleaved_writers(one_after_other) == []
    both = [_audit("a", [c("a", 1), c("a", 4)], []), _audit("b", [c("b", 2), c("b", 3)], [])]
    assert interleaved_writers(both) == [("a", "b")]


def test_an_elected_coordinator_learns_the_chosen_value_over_its_own_stale_one(
    tmp_path: Path,
) -> None:
    """Mesos src/log/coordinator.cpp (elected: "fill in any unlearned and/or missing
    positions" up to the end, log::catchup/log::fill: the highest-proposal value a quorum
    accepted). Found by the chaos test (tests/chaos/test_mesos_chaos.py): a leader frozen by
    SIGSTOP mid-write wakes up deposed; its own replica accepts the write at position 2 under
    its old proposal 3 while the new leader (proposal 4) chose another value there on the
    other two replicas and wrote on. When the frozen master is later elected again, its
    replica kept the stale entry and a hole, and the log audit reported the chosen write lost."""
    a, b, c = (Replica.open(tmp_path / name) for name in "abc")
    for replica in (a, b, c):
        replica.set_status(VOTING)
        replica.promise(3)
        replica.write(3, 1, {"version": 1})
    for replica in (b, c):  # the new leader's promise and writes, a frozen
        replica.promise(4)
        replica.write(4, 2, {"version": 2})
        replica.write(4, 3, {"version": 3})
    a.write(3, 2, {"version": 99})  # a wakes up: its own replica takes its pending write
    assert b.write(3, 2, {"version": 99}) == {"okay": False, "proposal": 4}
    chosen = b.entries[1]
    assert [e.position for e in a.entries] == [1, 2] and a.entries[1].digest != chosen.digest

    a.learn([list(b.entries), list(c.entries)], end=3)

    assert [(e.position, e.proposal, e.digest) for e in a.entries] == [
        (e.position, e.proposal, e.digest) for e in b.entries
    ]
    again = Replica.open(tmp_path / "a")  # persisted
    assert [e.digest for e in again.entries] == [e.digest for e in b.entries]
