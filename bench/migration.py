"""Benchmark: a ZkMigration carrying 10,000 extra znodes, beside a stop-the-world baseline.

    .venv/bin/python -m bench.migration [--znodes 10000] [--tasks 200]

Set up as tests/e2e/test_zkmigration.py does: testenv (3 KWOK nodes, the CRDs), the
operator and the sync controller as subprocesses, two real 3-server ZooKeeper ensembles
(A, B), SimPodRunner (one sim process per master, agent and Marathon pod), a MesosCluster
on A and Marathon running ``--tasks`` tasks. Then ``--znodes`` extra persistent znodes
(about 100 bytes each) are written on A under ``/marathon/state/bench/<bucket>/<id>``, so
the migration carries them besides the cluster's own.

1. **Operator**: a ZkMigration A -> B (Automatic approval) until ``Succeeded``. Twice a
   second: the number of masters reporting ``master/elected`` (leaderless gaps, leader
   changes), the running tasks in Marathon, ``status.sync`` and the sync controller's lag
   histogram. Recorded: total time, per-phase durations, cutover (phase 2 start to phase 6
   end), the sync bootstrap (znodes, seconds), replication lag over the migration, tasks
   before/after.
2. **Baseline**, in the same run, on the same two ensembles: the stop-the-world move a team
   would make without the operator, back from B to A (A's ``/mesos`` and ``/marathon``
   deleted first, so A is as clean as B was): stop every master, agent and Marathon
   process (the SimPodRunner stops; sessions close), the naive copy of bench/zk_sync.py
   (one synchronous get, getACL, getChildren and create per znode) of ``/mesos`` and
   ``/marathon`` B -> A, re-point the MesosCluster's spec to A and wait for the rollout of
   its pods, then start the processes again and wait for an elected master, every agent
   registered, and every task running in Marathon. Its downtime is from the stop to the
   elected master with all agents registered (and, separately, to all tasks running).

Also in the same run, before the migration: bench/zk_sync.py's raw one-process copy
ceiling over the same znodes (pipelined reads of A, multi creates on B under /raw), so the
bootstrap is reported as a fraction of it and as a multiple of the naive copy.

Prints a table and one JSON line. ``--znodes 200 --tasks 20`` is a smoke run of a few
minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import random
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from kazoo.client import KazooClient

from bench.zk_sync import client, naive_copy, raw_read, raw_read_bulk, raw_write
from sim.logaudit import LogAuditor
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.simpods import SimPodRunner, component_of
from testenv.sync_controller import SyncControllerProcess
from testenv.zookeeper import ZkEnsemble

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "bench-migration"
CLUSTER = "demo"
MIGRATION = "move"
PATHS = ("/mesos", "/marathon")
BENCH_ROOT = "/marathon/state/bench"
DATA_BYTES = 100
MASTERS, AGENTS = 3, 3  # 3 KWOK nodes: one agent each
LAG_METRIC = "orchestrator_zk_sync_replication_lag_seconds"


# --------------------------------------------------------------------------- helpers
def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """The first truthy value of ``check()`` (exceptions count as false) within ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # a component may be (re)starting
            last_error = exc
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} ({last_error!r})")


def apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    if result.returncode != 0:
        raise RuntimeError(result.stderr)


def migration_status(env: KubeTestEnv) -> dict[str, Any]:
    path = f"/apis/orchestrator.dev/v1alpha1/namespaces/{NAMESPACE}/zkmigrations/{MIGRATION}"
    status: dict[str, Any] = env.api("GET", path).get("status") or {}
    return status


def running_tasks(http: httpx.Client, pods: SimPodRunner) -> set[str]:
    tasks = http.get(pods.marathon_url() + "/v2/tasks", timeout=5).json()["tasks"]
    return {t["id"] for t in tasks if t["state"] == "TASK_RUNNING"}


def leader_snapshot(http: httpx.Client, pods: SimPodRunner) -> tuple[str | None, dict[str, Any]]:
    """(url, /metrics/snapshot) of the master that says it leads, else (None, {})."""
    for url in pods.master_urls():
        with contextlib.suppress(httpx.HTTPError, ValueError):
            snapshot: dict[str, Any] = http.get(url + "/metrics/snapshot", timeout=1).json()
            if snapshot.get("master/elected"):
                return url, snapshot
    return None, {}


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def span(start: str | None, end: str | None) -> float | None:
    a, b = parse_time(start), parse_time(end)
    return round((b - a).total_seconds(), 1) if a and b else None


def all_paths(
    c: KazooClient, roots: tuple[str, ...], skip: str | None = None
) -> list[tuple[str, bool]]:
    """Every znode under ``roots`` (parents first, not below ``skip``) and whether it is
    ephemeral; pipelined."""
    found: list[tuple[str, bool]] = []
    level = [r for r in roots if c.exists(r)]
    while level:
        pending = [(p, c.get_children_async(p, include_data=True)) for p in level]
        level = []
        for path, result in pending:
            kids, stat = result.get(timeout=60)
            found.append((path, bool(stat.ephemeralOwner)))
            if path != skip:
                level.extend(f"{path.rstrip('/')}/{k}" for k in kids)
    return found


def delete_trees(c: KazooClient, roots: tuple[str, ...]) -> int:
    """Delete ``roots`` and everything under them, deepest first, in 500-op multis."""
    paths = [p for p, _ in all_paths(c, roots)]
    paths.sort(key=lambda p: p.count("/"), reverse=True)
    for start in range(0, len(paths), 500):
        txn = c.transaction()
        for path in paths[start : start + 500]:
            txn.delete(path)
        bad = [o for o in txn.commit() if isinstance(o, Exception)]
        if bad:
            raise RuntimeError(f"delete failed: {bad[0]!r}")
    return len(paths)


def add_znodes(c: KazooClient, n: int) -> int:
    """``n`` persistent znodes under BENCH_ROOT: the root, buckets, and leaves of
    ``DATA_BYTES`` bytes; written in 500-op multis, 8 in flight."""
    buckets = max(1, n // 100)
    leaves = max(0, n - buckets - 1)
    c.ensure_path(BENCH_ROOT.rsplit("/", 1)[0])
    rng = random.Random(n)
    paths = [(BENCH_ROOT, b"")] + [(f"{BENCH_ROOT}/{b:02x}", b"") for b in range(buckets)]
    paths += [
        (f"{BENCH_ROOT}/{i % buckets:02x}/{i:08d}", rng.randbytes(DATA_BYTES))
        for i in range(leaves)
    ]
    inflight: list[Any] = []

    def check(outcomes: list[Any]) -> None:
        bad = [o for o in outcomes if isinstance(o, Exception)]
        if bad:
            raise RuntimeError(f"multi failed: {bad[0]!r}")

    # the root and buckets first (their children need them)
    txn = c.transaction()
    for path, data in paths[: buckets + 1]:
        txn.create(path, data)
    check(txn.commit())
    rest = paths[buckets + 1 :]
    for start in range(0, len(rest), 500):
        txn = c.transaction()
        for path, data in rest[start : start + 500]:
            txn.create(path, data)
        inflight.append(txn.commit_async())
        if len(inflight) >= 8:
            check(inflight.pop(0).get(timeout=120))
    for res in inflight:
        check(res.get(timeout=120))
    return len(paths)


def histogram(body: str) -> dict[float, float]:
    """The sync controller's lag histogram, cumulative count per upper bound, both
    directions summed (``+Inf`` as ``inf``)."""
    buckets: dict[float, float] = {}
    for line in body.splitlines():
        if not line.startswith(LAG_METRIC + "_bucket{"):
            continue
        match = re.search(r'le="([^"]+)"', line)
        if match:
            le = float(match.group(1))
            buckets[le] = buckets.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_summary(buckets: dict[float, float]) -> dict[str, Any]:
    """p50/p99/max as the upper bound of the bucket that holds them (seconds)."""
    bounds = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return {"count": 0, "p50_le_s": None, "p99_le_s": None, "max_le_s": None}

    def quantile(q: float) -> float:
        return next(b for b in bounds if buckets[b] >= q * total)

    return {
        "count": int(total),
        "p50_le_s": quantile(0.5),
        "p99_le_s": quantile(0.99),
        "max_le_s": quantile(1.0),
    }


def lag_sum(body: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith(LAG_METRIC + "_sum{")
    )


# --------------------------------------------------------------------------- sampling
@dataclass
class Sampler:
    """Twice a second: masters reporting `master/elected` (one thread); the migration's
    status, the controller's /metrics and Marathon's running tasks (another)."""

    env: KubeTestEnv
    pods: SimPodRunner
    sync: SyncControllerProcess
    leaders: list[tuple[float, int, str | None]] = field(default_factory=list)
    tasks: list[tuple[float, int | None]] = field(default_factory=list)
    lag_p99: list[float] = field(default_factory=list)
    last_sync: dict[str, Any] = field(default_factory=dict)
    last_metrics: str = ""
    load_1m: list[float] = field(default_factory=list)
    unsafe: int = 0  # samples of a master reporting sim/log/quorum_intersection_unsafe
    auditor: LogAuditor = field(default_factory=LogAuditor)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _leader_loop(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            for tick in itertools.count():
                if self._stop.wait(0.5):
                    break
                elected, leader = 0, None
                urls = self.pods.master_urls()
                for url in urls:
                    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                        snap = http.get(url + "/metrics/snapshot").json()
                        if snap["master/elected"]:
                            elected, leader = elected + 1, url
                        if snap.get("sim/log/quorum_intersection_unsafe"):
                            self.unsafe += 1
                self.leaders.append((time.monotonic(), elected, leader))
                if tick % 4 == 0:  # the masters' log audits, every 2 s (sim/logaudit.py)
                    with contextlib.suppress(Exception):
                        self.auditor.sample(urls, timeout=1.0)

    def _status_loop(self) -> None:
        with httpx.Client(timeout=2.0) as http:
            while not self._stop.wait(0.5):
                with contextlib.suppress(Exception):
                    sync = migration_status(self.env).get("sync") or {}
                    if sync:
                        self.last_sync = sync
                        if sync.get("lagP99Seconds") is not None:
                            self.lag_p99.append(float(sync["lagP99Seconds"]))
                with contextlib.suppress(Exception):
                    code, body = self.sync.get("/metrics")
                    if code == 200 and LAG_METRIC + "_bucket{" in body:
                        self.last_metrics = body  # the engine's series go when it stops
                count: int | None = None
                with contextlib.suppress(Exception):
                    count = len(running_tasks(http, self.pods))
                self.tasks.append((time.monotonic(), count))
                self.load_1m.append(os.getloadavg()[0])

    def __enter__(self) -> Sampler:
        for target in (self._leader_loop, self._status_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def longest_gap(self) -> float:
        longest, since = 0.0, None
        for when, elected, _ in self.leaders:
            if elected == 0 and since is None:
                since = when
            elif elected and since is not None:
                longest, since = max(longest, when - since), None
        if since is not None and self.leaders:
            longest = max(longest, self.leaders[-1][0] - since)
        return longest

    def leader_changes(self) -> int:
        seen = [leader for _, elected, leader in self.leaders if elected == 1]
        return sum(1 for a, b in itertools.pairwise(seen) if a != b)


# --------------------------------------------------------------------------- set-up
def cluster_manifest(connect: str) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": CLUSTER, "namespace": NAMESPACE},
        "spec": {
            "zookeeper": {"external": {"connectString": connect}},
            "masters": {"replicas": MASTERS},
            "marathon": {"replicas": 1},
        },
    }


def start_cluster(env: KubeTestEnv, pods: SimPodRunner, a: ZkEnsemble, tasks: int) -> None:
    apply(env, cluster_manifest(a.connect_string))
    pods.wait_for(lambda: pods.leader_url() is not None, 120, "an elected master")
    pods.wait_for(
        lambda: httpx.get(pods.marathon_url() + "/v2/leader", timeout=3).status_code == 200,
        90,
        "a leading Marathon",
    )
    app = {"id": "/web", "instances": tasks, "cpus": 0.01, "mem": 1, "cmd": "sleep 1000"}
    created = httpx.post(pods.marathon_url() + "/v2/apps", json=app, timeout=10)
    if created.status_code != 201:
        raise RuntimeError(created.text)
    with httpx.Client(timeout=5) as http:
        pods.wait_for(lambda: len(running_tasks(http, pods)) == tasks, 180, "running tasks")


def count_znodes(hosts: str) -> tuple[int, int]:
    """(persistent, ephemeral) znodes under PATHS."""
    with client(hosts) as c:
        nodes = all_paths(c, PATHS)
    ephemeral = sum(1 for _, e in nodes if e)
    return len(nodes) - ephemeral, ephemeral


def copy_ceiling(a: ZkEnsemble, b: ZkEnsemble) -> dict[str, float]:
    """bench/zk_sync.py's raw ceiling over the same znodes: reads of A's paths, the best of
    pipelined get+getACL+getChildren (two windows) and the engine's bulk reads (multiRead,
    getACL over raw sessions), and 500-op multi creates of as many znodes on B
    (under /raw500, deleted again); one process copies at most 1 / (1/read + 1/write)."""
    with client(a.connect_string) as ca, client(b.connect_string) as cb:
        paths = [p for p, ephemeral in all_paths(ca, PATHS) if not ephemeral]
        kazoo_reads = max(raw_read(ca, paths, window) for window in (500, 2000))
        read = max(kazoo_reads, raw_read_bulk(ca, paths))  # the engine's bulk reads too
        write = raw_write(cb, "", [(p, False) for p in paths], 500)
        delete_trees(cb, ("/raw500",))
    return {
        "read_znodes_per_s": round(read, 1),
        "write_znodes_per_s": round(write, 1),
        "copy_znodes_per_s": round(1 / (1 / read + 1 / write), 1),
    }


# --------------------------------------------------------------------------- operator run
def run_operator_migration(
    env: KubeTestEnv, pods: SimPodRunner, sync: SyncControllerProcess, b: ZkEnsemble, tasks: int
) -> dict[str, Any]:
    http = httpx.Client(timeout=5)
    before = running_tasks(http, pods)
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "ZkMigration",
        "metadata": {"name": MIGRATION, "namespace": NAMESPACE},
        "spec": {
            "clusterRef": CLUSTER,
            "target": {"external": {"connectString": b.connect_string}},
        },
    }
    started = time.monotonic()
    with Sampler(env, pods, sync) as sampler:
        apply(env, manifest)
        status = wait_until(
            lambda: (s := migration_status(env)).get("phase") in ("Succeeded", "Failed") and s,
            1800,
            "the migration to finish",
            every=0.5,
        )
    took = time.monotonic() - started
    sampler.auditor.sample(pods.master_urls())
    if status.get("phase") != "Succeeded":
        raise RuntimeError(f"migration {status.get('phase')}: {status.get('checks')}")
    after = running_tasks(http, pods)
    _, snap = leader_snapshot(http, pods)
    http.close()
    phases = [
        {
            "number": p.get("number"),
            "name": p.get("name"),
            "seconds": span(p.get("startedAt"), p.get("finishedAt")),
        }
        for p in status.get("phases", [])
    ]
    by_number = {p.get("number"): p for p in status.get("phases", [])}
    cutover = span(by_number[2].get("startedAt"), by_number[6].get("finishedAt"))
    in_phases = span(by_number[1].get("startedAt"), by_number[6].get("finishedAt"))
    sync_status = sampler.last_sync
    boot_n, boot_s = sync_status.get("bootstrapZnodes"), sync_status.get("bootstrapSeconds")
    lag_hist = histogram(sampler.last_metrics)
    lag = histogram_summary(lag_hist)
    lag_mean = lag_sum(sampler.last_metrics) / lag["count"] if lag["count"] else None
    counts = [n for _, n in sampler.tasks if n is not None]
    return {
        "total_seconds": round(took, 1),
        "phases_1_to_6_seconds": in_phases,
        "phases": phases,
        "cutover_seconds": cutover,
        "bootstrap_znodes": boot_n,
        "bootstrap_seconds": boot_s,
        "bootstrap_znodes_per_s": round(boot_n / boot_s, 1) if boot_n and boot_s else None,
        "digests_equal_last": sync_status.get("digestsEqual"),
        "lag_histogram": lag,
        "lag_mean_ms": round(1000 * lag_mean, 2) if lag_mean is not None else None,
        "lag_p99_status_samples": len(sampler.lag_p99),
        "lag_p99_status_p50_s": _quantile(sampler.lag_p99, 0.5),
        "lag_p99_status_max_s": max(sampler.lag_p99) if sampler.lag_p99 else None,
        "leader_samples": len(sampler.leaders),
        "max_simultaneous_leaders": max((e for _, e, _ in sampler.leaders), default=0),
        "leader_changes": sampler.leader_changes(),
        "log_unsafe_samples": sampler.unsafe,
        "log_masters_audited": len(sampler.auditor.audits),
        "log_commits_audited": sum(
            len(a.get("commits", [])) for a in sampler.auditor.audits.values()
        ),
        "log_lost_committed_writes": [str(w) for w in sampler.auditor.lost_committed_writes()],
        "log_interleaved_writers": sampler.auditor.interleaved_writers(),
        "log_max_leaders_at_once": sampler.auditor.max_leaders_at_once,
        "longest_leaderless_s": round(sampler.longest_gap(), 1),
        "operator_reported_leader_changes": (status.get("leader") or {}).get("changes"),
        "tasks_before": len(before),
        "tasks_after": len(after),
        "same_task_ids": before == after,
        "min_running_tasks_sampled": min(counts) if counts else None,
        "marathon_unanswered_samples": sum(1 for _, n in sampler.tasks if n is None),
        "task_samples": len(sampler.tasks),
        "tasks_failed_lost_killed_on_leader": sum(
            int(snap.get(f"master/tasks_{s}", 0)) for s in ("failed", "lost", "killed")
        ),
        "loadavg_1m_min_max_during": [
            round(min(sampler.load_1m), 2),
            round(max(sampler.load_1m), 2),
        ]
        if sampler.load_1m
        else None,
        "report": status.get("report", ""),
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- baseline
def pods_on(env: KubeTestEnv, connect: str) -> bool:
    """Every master, agent and Marathon pod (none terminating) runs with ``connect``, and
    there are as many as the cluster wants."""
    pods = env.api("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    counts = {"master": 0, "agent": 0, "marathon": 0}
    for pod in pods:
        containers = pod["spec"]["containers"]
        component = next(
            (c for c in map(component_of, (x.get("image", "") for x in containers)) if c), None
        )
        if component is None:
            continue
        if pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") != "Running":
            return False
        args = " ".join(" ".join(c.get("args") or []) for c in containers)
        if connect not in args:
            return False
        counts[component] += 1
    return counts == {"master": MASTERS, "agent": AGENTS, "marathon": 1}


def run_baseline(
    env: KubeTestEnv,
    pods: SimPodRunner,
    source: ZkEnsemble,
    target: ZkEnsemble,
    simpods_dir: Path,
    tasks: int,
) -> tuple[dict[str, Any], SimPodRunner]:
    """Stop the world, naive copy ``source`` -> ``target``, re-point, restart. Returns the
    figures and the SimPodRunner now running (the caller stops it)."""
    http = httpx.Client(timeout=5)
    with client(target.connect_string) as ct:
        cleaned = delete_trees(ct, PATHS)
    before = running_tasks(http, pods)
    print(f"  cleaned target: {cleaned} znodes deleted; {len(before)} tasks running", flush=True)

    t0 = time.monotonic()
    pods.stop()  # every master, agent and Marathon: SIGTERM, sessions closed
    stopped = time.monotonic()
    with client(source.connect_string) as cs:
        wait_until(
            lambda: not any(e for _, e in all_paths(cs, PATHS, skip=BENCH_ROOT)),
            60,
            "no ephemeral znodes left",
        )
    quiet = time.monotonic()
    with client(source.connect_string) as cs, client(target.connect_string) as ct:
        copied = 0
        for root in PATHS:
            n, _ = naive_copy(cs, ct, root, dest_prefix="")
            copied += n
    copied_at = time.monotonic()
    patch = {"spec": {"zookeeper": {"external": {"connectString": target.connect_string}}}}
    result = env.kubectl_run(
        "patch", "mesoscluster", CLUSTER, "-n", NAMESPACE, "--type=merge", "-p", json.dumps(patch)
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    wait_until(lambda: pods_on(env, target.connect_string), 300, "the pods rolled out to A")
    rolled = time.monotonic()
    new_pods = SimPodRunner(env, NAMESPACE, base_dir=simpods_dir)
    new_pods.start()
    try:
        return _restart(http, new_pods, t0, stopped, quiet, copied_at, rolled, cleaned,
                        copied, before, tasks), new_pods  # fmt: skip
    except BaseException:
        new_pods.stop()
        raise
    finally:
        http.close()


def _restart(
    http: httpx.Client,
    new_pods: SimPodRunner,
    t0: float,
    stopped: float,
    quiet: float,
    copied_at: float,
    rolled: float,
    cleaned: int,
    copied: int,
    before: set[str],
    tasks: int,
) -> dict[str, Any]:
    started = time.monotonic()
    elected_at = registered_at = tasks_at = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and tasks_at is None:
        url, snap = leader_snapshot(http, new_pods)
        now = time.monotonic()
        if url and elected_at is None:
            elected_at = now
        if url and registered_at is None and snap.get("master/slaves_active", 0) >= AGENTS:
            registered_at = now
        if registered_at is not None:
            with contextlib.suppress(Exception):
                if len(running_tasks(http, new_pods)) >= tasks:
                    tasks_at = now
        time.sleep(0.2)
    time.sleep(2)  # a relaunch would show as more (new) task ids
    after: set[str] = set()
    with contextlib.suppress(Exception):
        after = running_tasks(http, new_pods)

    def since(t: float | None, ref: float = t0) -> float | None:
        return round(t - ref, 1) if t is not None else None

    return {
        "direction": "B -> A (A cleaned first)",
        "target_znodes_deleted_before": cleaned,
        "stop_seconds": since(stopped),
        "sessions_gone_seconds": since(quiet, stopped),
        "naive_copy_znodes": copied,
        "naive_copy_seconds": since(copied_at, quiet),
        "naive_copy_znodes_per_s": round(copied / (copied_at - quiet), 1),
        "repoint_rollout_seconds": since(rolled, copied_at),
        "process_start_to_leader_seconds": since(elected_at, started),
        "process_start_to_agents_registered_seconds": since(registered_at, started),
        "process_start_to_tasks_running_seconds": since(tasks_at, started),
        "downtime_to_leader_and_agents_seconds": since(registered_at),
        "downtime_to_tasks_running_seconds": since(tasks_at),
        "tasks_before": len(before),
        "tasks_after": len(after),
        "same_task_ids": before == after,
        "task_ids_kept": len(before & after),
        "task_ids_new": len(after - before),
    }


# --------------------------------------------------------------------------- output
def print_table(result: dict[str, Any]) -> None:
    op, base = result["operator"], result["baseline"]
    lag = op["lag_histogram"]

    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"<= {1000 * v:g} ms"

    rows = [
        ("load average (1 min): start / during the migration (min-max) / end",
         f"{result['loadavg_at_start'][0]} / {op['loadavg_1m_min_max_during']} / "
         f"{result['loadavg_at_end'][0]}"),
        ("extra znodes / carried (persistent under /mesos, /marathon)",
         f"{result['extra_znodes']:,} / {result['znodes_on_source']:,}"),
        ("operator: total (apply -> Succeeded)", f"{op['total_seconds']} s"),
        *((f"  phase {p['number']} {p['name']}", f"{p['seconds']} s") for p in op["phases"]),
        ("operator: cutover (phase 2 start -> phase 6 end)", f"{op['cutover_seconds']} s"),
        ("sync bootstrap", f"{op['bootstrap_znodes']} znodes in {op['bootstrap_seconds']} s "
                           f"= {op['bootstrap_znodes_per_s']} znodes/s"),
        ("  vs one-process copy ceiling / vs naive copy (same run)",
         f"{result['bootstrap_fraction_of_ceiling']:.0%} of "
         f"{result['ceiling']['copy_znodes_per_s']:,.0f} znodes/s / "
         f"{result['bootstrap_multiple_of_naive']:.1f}x"),
        ("replication lag over the migration (histogram, both directions)",
         f"{lag['count']} changes: p50 {ms(lag['p50_le_s'])}, p99 {ms(lag['p99_le_s'])}, "
         f"max {ms(lag['max_le_s'])}, mean {op['lag_mean_ms']} ms"),
        ("status.sync.lagP99Seconds samples: median / max",
         f"{op['lag_p99_status_p50_s']} / {op['lag_p99_status_max_s']} s"),
        ("leader changes / longest leaderless gap / max simultaneous leaders",
         f"{op['leader_changes']} / {op['longest_leaderless_s']} s / "
         f"{op['max_simultaneous_leaders']}"),
        ("log: unsafe samples / masters audited / commits / lost / two writers",
         f"{op['log_unsafe_samples']} / {op['log_masters_audited']} / "
         f"{op['log_commits_audited']} / {len(op['log_lost_committed_writes'])} / "
         f"{len(op['log_interleaved_writers'])}"),
        ("tasks before / after / same ids / min seen / failed+lost+killed",
         f"{op['tasks_before']} / {op['tasks_after']} / {op['same_task_ids']} / "
         f"{op['min_running_tasks_sampled']} / {op['tasks_failed_lost_killed_on_leader']}"),
        ("baseline: stop all processes", f"{base['stop_seconds']} s "
                                         f"(+{base['sessions_gone_seconds']} s sessions gone)"),
        ("baseline: naive copy", f"{base['naive_copy_znodes']:,} znodes in "
                                 f"{base['naive_copy_seconds']} s = "
                                 f"{base['naive_copy_znodes_per_s']} znodes/s"),
        ("baseline: re-point spec, pods rolled out", f"{base['repoint_rollout_seconds']} s"),
        ("baseline: start -> leader / agents registered / tasks running",
         f"{base['process_start_to_leader_seconds']} / "
         f"{base['process_start_to_agents_registered_seconds']} / "
         f"{base['process_start_to_tasks_running_seconds']} s"),
        ("baseline DOWNTIME to leader + agents / to all tasks running",
         f"{base['downtime_to_leader_and_agents_seconds']} / "
         f"{base['downtime_to_tasks_running_seconds']} s"),
        ("baseline: tasks before / after / ids kept / new ids",
         f"{base['tasks_before']} / {base['tasks_after']} / {base['task_ids_kept']} / "
         f"{base['task_ids_new']}"),
    ]  # fmt: skip
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=f"ZkMigration, {result['tasks']} tasks, +{result['extra_znodes']} znodes"
        )
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, value in rows:
            table.add_row(key, value)
        Console(width=140).print(table)
    except ImportError:
        for key, value in rows:
            print(f"{key:<70} {value}")


# --------------------------------------------------------------------------- main
@contextlib.contextmanager
def platform(tmp: Path) -> Iterator[tuple[KubeTestEnv, ZkEnsemble, ZkEnsemble, OperatorProcess]]:
    with (
        ZkEnsemble(3, base_dir=tmp / "zk-a") as a,
        ZkEnsemble(3, base_dir=tmp / "zk-b") as b,
        KubeTestEnv(nodes=3, base_dir=tmp / "testenv") as env,
    ):
        env.install_crds(REPO / "crds")
        operator = OperatorProcess(env, tmp / "operator.log")
        try:
            operator.wait_ready()
            yield env, a, b, operator
        finally:
            operator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--znodes", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kazoo").setLevel(logging.ERROR)

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwind: every component is stopped on the way out

    signal.signal(signal.SIGTERM, on_term)
    result: dict[str, Any] = {
        "bench": "migration",
        "tasks": args.tasks,
        "extra_znodes": args.znodes,
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-migration-"))
    print(f"work dir {tmp}", flush=True)
    try:
        with platform(tmp) as (env, a, b, _operator):
            env.kubectl_run("create", "namespace", NAMESPACE)
            sync = SyncControllerProcess(
                env, tmp / "sync-controller.log", "--state-dir", str(tmp / "sync-state"),
                "--namespace", NAMESPACE,
            )  # fmt: skip
            pods = SimPodRunner(env, NAMESPACE, base_dir=tmp / "simpods")
            try:
                sync.wait_ready()
                pods.start()
                t = time.monotonic()
                start_cluster(env, pods, a, args.tasks)
                print(f"cluster on A with {args.tasks} tasks in {time.monotonic() - t:.0f}s",
                      flush=True)  # fmt: skip
                with client(a.connect_string) as ca:
                    t = time.perf_counter()
                    added = add_znodes(ca, args.znodes)
                print(f"added {added} znodes on A in {time.perf_counter() - t:.1f}s", flush=True)
                persistent, ephemeral = count_znodes(a.connect_string)
                result["ceiling"] = copy_ceiling(a, b)
                c = result["ceiling"]
                print(f"ceiling: reads {c['read_znodes_per_s']:,.0f}/s, multi creates "
                      f"{c['write_znodes_per_s']:,.0f}/s, copy {c['copy_znodes_per_s']:,.0f}/s",
                      flush=True)  # fmt: skip
                result["znodes_on_source"] = persistent
                result["ephemeral_on_source"] = ephemeral
                print(f"A: {persistent} persistent + {ephemeral} ephemeral znodes under "
                      f"{', '.join(PATHS)}; migrating (operator)...", flush=True)  # fmt: skip
                result["operator"] = run_operator_migration(env, pods, sync, b, args.tasks)
                op = result["operator"]
                print(f"  Succeeded in {op['total_seconds']} s, cutover "
                      f"{op['cutover_seconds']} s", flush=True)  # fmt: skip
                result["loadavg_after_operator"] = [round(x, 2) for x in os.getloadavg()]
                print("baseline: stop the world, naive copy B -> A, restart...", flush=True)
                result["baseline"], pods = run_baseline(
                    env, pods, b, a, tmp / "simpods", args.tasks
                )
            finally:
                pods.stop()
                sync.stop()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    rate = result["operator"]["bootstrap_znodes_per_s"] or 0.0
    result["bootstrap_fraction_of_ceiling"] = round(
        rate / result["ceiling"]["copy_znodes_per_s"], 3
    )
    result["bootstrap_multiple_of_naive"] = round(
        rate / result["baseline"]["naive_copy_znodes_per_s"], 2
    )
    report = result["operator"].pop("report")
    print(report)
    print_table(result)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
