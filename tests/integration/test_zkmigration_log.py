"""The masters' replicated log while a ZkMigration moves masters, against the simulator's log
(Mesos's quorum rules, sim/master/replog.py) on a real ZooKeeper ensemble.

Two SimClusters share one election and one `log_replicas` group: the first plays the masters
on A, the second those on B (in a migration the sync engine proxies the ephemeral znodes
between the ensembles so both sets see one group; here one ensemble holds them). The order
the operator uses now (`machine.master_moves`, one for one) never makes the log unsafe and
keeps every committed registry write; the order it used before (all of B added, then A
removed) is reported unsafe by the same detector, `sim/log/quorum_intersection_unsafe`
(two quorums of more than `2*quorum-1` replicas need not intersect: Mesos
src/log/recover.cpp sizes the log for `2*quorum-1`; docs/operational-guide.md: run only
as many masters as the quorum is sized for).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from orchestrator_operator.operator.zkmigration.machine import master_moves
from sim.cluster import SimCluster
from sim.logaudit import LogAuditor
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(300)]
QUORUM = 2
UNSAFE = "sim/log/quorum_intersection_unsafe"


@dataclass
class LogSampler:
    """Twice a second: how many masters say they lead, and whether any reports an unsafe
    replica set."""

    urls: list[str]
    unsafe: list[str] = field(default_factory=list)  # "url at t" of every unsafe sample
    most_leaders: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            while not self._stop.wait(0.5):
                elected = 0
                for url in self.urls:
                    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                        snapshot = http.get(url + "/metrics/snapshot").json()
                        elected += int(snapshot["master/elected"])
                        if snapshot[UNSAFE]:
                            self.unsafe.append(f"{url} at {time.monotonic():.1f}")
                self.most_leaders = max(self.most_leaders, elected)

    def __enter__(self) -> LogSampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


@pytest.fixture
def sides(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[tuple[SimCluster, SimCluster]]:
    """A: 3 masters (quorum 2) and an agent, running; B: 3 masters of the same cluster, not
    started."""
    namespace = f"/mig-log-{int(time.time() * 1000) % 10**8}"
    a = SimCluster(
        zk_ensemble.connect_string, masters=3, agents=1, marathons=0, quorum=QUORUM,
        namespace=namespace, base_dir=tmp_path / "a",
    )  # fmt: skip
    b = SimCluster(
        zk_ensemble.connect_string, masters=3, agents=0, marathons=0, quorum=QUORUM,
        namespace=namespace, base_dir=tmp_path / "b",
    )  # fmt: skip
    with a:
        try:
            yield a, b
        finally:
            b.stop()


def _leader(a: SimCluster, b: SimCluster) -> str | None:
    """The elected master that has recovered the registry (Mesos's registrar gauge
    `registrar/registry_size_bytes` exists only then)."""
    for url in [*(a.master_url(i) for i in range(3)), *(b.master_url(i) for i in range(3))]:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            snapshot = httpx.get(url + "/metrics/snapshot", timeout=1).json()
            if snapshot["master/elected"] and "registrar/registry_size_bytes" in snapshot:
                return url
    return None


def _write(a: SimCluster, b: SimCluster, hosts: list[str]) -> None:
    """A registry write: the maintenance schedule, which the leader commits to the log before
    it answers (Mesos src/master/http.cpp: the registrar's UpdateSchedule)."""
    deadline = time.monotonic() + 60
    schedule = {
        "windows": [
            {
                "machine_ids": [{"hostname": h, "ip": "10.0.0.1"} for h in hosts],
                "unavailability": {"start": {"nanoseconds": 4_000_000_000_000_000_000}},
            }
        ]
    }
    while time.monotonic() < deadline:
        leader = _leader(a, b)
        if leader is not None:
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.post(
                    leader + "/master/maintenance/schedule", json=schedule, timeout=10
                )
                if answer.status_code == 200:
                    return
        time.sleep(0.5)
    raise AssertionError(f"no leader committed the schedule {hosts}\n{a.logs()}\n{b.logs()}")


def _scheduled(a: SimCluster, b: SimCluster) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        leader = _leader(a, b)
        if leader is not None:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                body = httpx.get(leader + "/master/maintenance/schedule", timeout=5).json()
                return sorted(
                    m["hostname"] for w in body.get("windows", []) for m in w["machine_ids"]
                )
        time.sleep(0.5)
    raise AssertionError("no leader to read the schedule from")


def _recovered(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        snapshot = httpx.get(url + "/metrics/snapshot", timeout=1).json()
        return bool(snapshot["registrar/log/recovered"])
    return False


def _wait(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_for_one_moves_keep_the_log_safe_and_every_committed_write(
    sides: tuple[SimCluster, SimCluster],
) -> None:
    a, b = sides
    urls = [*(a.master_url(i) for i in range(3)), *(b.master_url(i) for i in range(3))]
    written = ["host-a"]
    auditor = LogAuditor()
    with LogSampler(urls) as sampler:
        _write(a, b, written)  # a first registry write, with A's 3 masters
        auditor.sample(urls)
        moves = master_moves((3, 0), (0, 3), QUORUM)
        for before, after in itertools.pairwise(moves):
            if after[0] < before[0]:
                a.stop_master(after[0])  # the highest ordinal goes, as a StatefulSet does
            else:
                b.start_master(before[1])
                url = b.master_url(before[1])
                _wait(f"{url} to recover its log replica", lambda u=url: _recovered(u))
            _wait("a leader", lambda: _leader(a, b) is not None)
            written.append(f"host-{len(written)}")
            _write(a, b, written)
            auditor.sample(urls)  # before the next move takes a master away
    auditor.sample(urls)
    assert sampler.unsafe == [] and auditor.unsafe_seen == set(), sampler.unsafe
    assert sampler.most_leaders == 1
    assert _scheduled(a, b) == sorted(written)  # every committed write survived the moves
    assert len(auditor.audits) == 6
    assert [str(lost) for lost in auditor.lost_committed_writes()] == []
    assert auditor.interleaved_writers() == []


def test_the_old_one_sided_overlap_is_reported_unsafe(
    sides: tuple[SimCluster, SimCluster],
) -> None:
    """What the operator did before: B's 3 masters added while A's 3 still run."""
    a, b = sides
    urls = [*(a.master_url(i) for i in range(3)), *(b.master_url(i) for i in range(3))]
    with LogSampler(urls) as sampler:
        for i in range(3):
            b.start_master(i)
        _wait("the detector", lambda: bool(sampler.unsafe), timeout=30)
    assert sampler.unsafe, "6 replicas with quorum 2 were not reported"


def test_the_old_one_sided_overlap_can_lose_a_committed_write(
    sides: tuple[SimCluster, SimCluster],
) -> None:
    """With 6 replicas and quorum 2, a write committed by 2 of them and a leader recovered
    from 2 others never meet: the audit reports the write lost, and the registry misses it.
    (With at most 3 replicas the same failures stop the log instead: no quorum.)"""
    a, b = sides
    masters = [(a, i) for i in range(3)] + [(b, i) for i in range(3)]
    urls = [side.master_url(i) for side, i in masters]
    auditor = LogAuditor()
    _write(a, b, ["host-a"])
    for i in range(3):
        b.start_master(i)
    for i in range(3):
        url = b.master_url(i)
        _wait(f"{url} to recover its log replica", lambda u=url: _recovered(u))
    leader = _leader(a, b)
    assert leader is not None
    keep = [leader, next(u for u in urls if u != leader)]
    for (side, i), url in zip(masters, urls, strict=True):
        if url not in keep:
            side.stop_master(i)
    _write(a, b, ["host-a", "host-w"])  # committed by the 2 replicas left
    auditor.sample(urls)
    assert _scheduled(a, b) == ["host-a", "host-w"]
    for (side, i), url in zip(masters, urls, strict=True):
        if url in keep:
            side.stop_master(i)
    for (side, i), url in zip(masters, urls, strict=True):
        if url not in keep:
            side.start_master(i)
    _wait("a new leader", lambda: _leader(a, b) is not None)
    assert _scheduled(a, b) == ["host-a"]  # the committed write is gone
    auditor.sample(urls)
    lost = auditor.lost_committed_writes()
    assert lost, "the audit did not report the lost write"
    assert all(w.recovered_by != w.committed_by for w in lost), [str(w) for w in lost]
