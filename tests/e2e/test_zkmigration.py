"""ZkMigration end to end: the operator and the sync controller against testenv, two real
3-server ZooKeeper ensembles, and sim processes behind every master, agent and Marathon pod
(SimPodRunner), with Marathon running 200 tasks."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator_operator.models.routing import ROUTING_ANNOTATION
from sim.logaudit import LogAuditor
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.simpods import SimPodRunner
from testenv.zookeeper import ZkEnsemble
from tests.e2e.support import get_json, temporary_namespace
from tests.fixtures.sync_controller import SyncControllerFactory
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper]
TASKS = 200
UNSAFE = "sim/log/quorum_intersection_unsafe"


def _apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr


@dataclass
class LeaderSampler:
    """Twice a second, on every master: the masters that say they lead (`master/elected`)
    and any that reports its log's replica set unsafe (`sim/log/quorum_intersection_unsafe`:
    more than 2*quorum-1 replicas, so two quorums need not intersect); every 2 s, the
    masters' log audits (`GET /sim/v1/log`, sim/logaudit.py), kept per master so that the
    masters removed during the moves are audited too."""

    pods: SimPodRunner
    samples: list[tuple[float, int]] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)  # "<url> at <seconds>"
    auditor: LogAuditor = field(default_factory=LogAuditor)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        started = time.monotonic()
        with httpx.Client(timeout=1.0) as http, ThreadPoolExecutor(max_workers=8) as pool:

            def snapshot(url: str) -> dict[str, Any] | None:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    answer = http.get(url + "/metrics/snapshot").json()
                    return answer if isinstance(answer, dict) else None
                return None

            for tick in itertools.count():
                if self._stop.wait(0.5):
                    break
                urls = self.pods.master_urls()
                # All masters at once: asked one after the other under load, a leader and
                # its successor could both be caught saying elected seconds apart.
                snapshots = list(pool.map(snapshot, urls))
                elected = 0
                for url, answer in zip(urls, snapshots, strict=True):
                    if answer is None:
                        continue  # a master may be going
                    elected += int(answer.get("master/elected", 0))
                    if answer.get(UNSAFE):
                        self.unsafe.append(f"{url} at {time.monotonic() - started:.1f}s")
                self.samples.append((time.monotonic(), elected))
                if tick % 4 == 0:
                    self.auditor.sample(urls, timeout=1.0)

    def two_leaders(self) -> list[float]:
        """When two or more masters said they lead in two samples in a row. A master learns
        that another leads from its ZooKeeper watch (Mesos: Master::detected, then it commits
        suicide), so one sample may catch the old leader in that instant; a second one in a
        row would be two leaders at once. The log audit checks that they never both wrote."""
        return [
            when
            for (_, before), (when, now) in itertools.pairwise(self.samples)
            if before > 1 and now > 1
        ]

    def final_audit(self) -> None:
        """Every live master's audit once more (the last writes)."""
        self.auditor.sample(self.pods.master_urls())

    def __enter__(self) -> LeaderSampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def longest_gap(self) -> float:
        """The longest stretch of samples with no leader, in seconds."""
        longest, since = 0.0, None
        for when, elected in self.samples:
            if elected == 0 and since is None:
                since = when
            elif elected and since is not None:
                longest, since = max(longest, when - since), None
        return longest


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    yield from temporary_namespace(kube_env, "mig", "zkmigrations,mesosclusters")


def _migration(name: str, namespace: str, target: ZkEnsemble, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "ZkMigration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "clusterRef": "demo",
            "target": {"external": {"connectString": target.connect_string}},
            **spec,
        },
    }


def _status(env: KubeTestEnv, namespace: str, name: str) -> dict[str, Any]:
    obj = get_json(env, "zkmigration", name, "-n", namespace) or {}
    status: dict[str, Any] = obj.get("status", {})
    return status


def _running_tasks(pods: SimPodRunner) -> set[str]:
    tasks = httpx.get(pods.marathon_url() + "/v2/tasks", timeout=5).json()["tasks"]
    return {t["id"] for t in tasks if t["state"] == "TASK_RUNNING"}


def _wait_same_tasks(pods: SimPodRunner, before: set[str]) -> None:
    # A Marathon leader abdicates when the leading Mesos master changes (Marathon 1.11
    # MarathonScheduler.disconnected): after master moves it may be restarting.
    pods.wait_for(lambda: _running_tasks(pods) == before, 90, "the same tasks running")


@pytest.fixture
def platform(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
    tmp_path: Path,
) -> Iterator[tuple[SimPodRunner, ZkEnsemble, ZkEnsemble]]:
    """A MesosCluster on ensemble A with Marathon running TASKS tasks, and the sync
    controller for the namespace (the operator's second container)."""
    sync_controller_factory("--namespace", namespace)
    source, target = zk_ensemble_factory(3), zk_ensemble_factory(3)
    cluster = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {
            "zookeeper": {"external": {"connectString": source.connect_string}},
            "masters": {"replicas": 3},
            "marathon": {"replicas": 1},
        },
    }
    with SimPodRunner(kube_env, namespace, base_dir=tmp_path / "simpods") as pods:
        _apply(kube_env, cluster)
        pods.wait_for(lambda: pods.leader_url() is not None, 90, "an elected master")
        pods.wait_for(
            lambda: httpx.get(pods.marathon_url() + "/v2/leader", timeout=3).status_code == 200,
            60,
            "a leading Marathon",
        )
        app = {"id": "/web", "instances": TASKS, "cpus": 0.01, "mem": 1, "cmd": "sleep 1000"}
        created = httpx.post(pods.marathon_url() + "/v2/apps", json=app, timeout=10)
        assert created.status_code == 201, created.text
        pods.wait_for(lambda: len(_running_tasks(pods)) == TASKS, 120, f"{TASKS} running tasks")
        yield pods, source, target


def _wait_for(
    env: KubeTestEnv,
    pods: SimPodRunner,
    namespace: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float,
    what: str,
) -> dict[str, Any]:
    """The migration's status once `check(status)` holds; else a failure that says what the
    migration was waiting for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(env, namespace, "move")
        if check(status):
            return status
        time.sleep(1)
    raise AssertionError(
        f"{what}: phase {status.get('currentPhase')} {status.get('phase')}: "
        f"{status.get('checks')}\nsync: {status.get('sync')}\n{pods.logs(10)}"
    )


def _start_approved_through(
    env: KubeTestEnv, pods: SimPodRunner, namespace: str, target: ZkEnsemble, phase: int
) -> dict[str, Any]:
    """Start a manually approved migration; return its spec's approval once it has done
    phases 1..`phase` and waits for approval of the next."""
    manual: dict[str, Any] = {"approval": {"mode": "Manual", "approvedThroughPhase": phase}}
    _apply(env, _migration("move", namespace, target, **manual))
    _wait_for(
        env, pods, namespace,
        lambda s: s.get("phase") == "AwaitingApproval" and s.get("currentPhase") == phase + 1,
        120 + 60 * phase, f"phases 1-{phase} done, phase {phase + 1} awaiting approval",
    )  # fmt: skip
    return manual


def _on_a(env: KubeTestEnv, namespace: str, source: ZkEnsemble) -> None:
    """Every part of the cluster registers in ensemble A, with no second masters set."""
    assert get_json(env, "statefulset", "demo-master-b", "-n", namespace) is None
    masters = get_json(env, "statefulset", "demo-master", "-n", namespace) or {}
    assert masters["spec"]["replicas"] == 3
    for kind, name in (("statefulset", "demo-master"), ("daemonset", "demo-agent")):
        body = get_json(env, kind, name, "-n", namespace) or {}
        args = " ".join(body["spec"]["template"]["spec"]["containers"][0]["args"])
        assert f"zk://{source.connect_string}/mesos" in args, (kind, args)


def _event_time(event: dict[str, Any]) -> str:
    return str(event.get("eventTime") or event.get("lastTimestamp") or "")  # eventTime: in µs


def test_migration_moves_the_cluster_to_b_with_no_task_failures(
    kube_env: KubeTestEnv,
    platform: tuple[SimPodRunner, ZkEnsemble, ZkEnsemble],
    namespace: str,
) -> None:
    pods, _, target = platform
    before = _running_tasks(pods)
    started = time.monotonic()
    with LeaderSampler(pods) as sampler:
        _apply(kube_env, _migration("move", namespace, target))
        status = _wait_for(
            kube_env, pods, namespace, lambda s: s.get("phase") == "Succeeded", 420, "Succeeded"
        )
    took = time.monotonic() - started
    print(f"\nmigration of {TASKS} tasks: {took:.1f} s\n{status['report']}")

    sampler.final_audit()

    _wait_same_tasks(pods, before)  # the same task ids, still running
    assert sampler.two_leaders() == [], sampler.samples  # never two leaders
    assert sampler.longest_gap() < 15, sampler.samples
    # The masters moved one for one: never more log replicas than quorum 2 is sized for,
    # and every registry write a leader committed is in the log the last leader recovered.
    auditor = sampler.auditor
    assert sampler.unsafe == [] and auditor.unsafe_seen == set(), sampler.unsafe
    assert len(auditor.audits) >= 6, sorted(auditor.audits)  # 3 masters on A, 3 on B
    assert auditor.max_leaders_at_once == 1
    assert [str(lost) for lost in auditor.lost_committed_writes()] == []
    assert auditor.interleaved_writers() == []
    assert sum(len(a.get("commits", [])) for a in auditor.audits.values()) > 0  # writes seen
    assert [p["state"] for p in status["phases"]] == ["Succeeded"] * 6
    cluster = get_json(kube_env, "mesoscluster", "demo", "-n", namespace) or {}
    assert cluster["spec"]["zookeeper"]["external"]["connectString"] == target.connect_string
    routing = json.loads(cluster["metadata"]["annotations"][ROUTING_ANNOTATION])
    assert routing == {"mastersComponent": "master-b"}
    assert get_json(kube_env, "statefulset", "demo-master", "-n", namespace) is None
    # Every master now registers in B.
    masters = [p for p in pods.processes().values() if p.component == "master" and p.alive]
    assert len(masters) == 3
    assert all(target.connect_string in " ".join(p.args) for p in masters)
    assert status["archive"], "A's data archived"
    assert "cutover" in status["report"]
    # The audit trail: each phase's start and end as Events on the migration, as
    # `kubectl describe zkmigration move` shows them.
    events = get_json(
        kube_env, "events", "-n", namespace,
        "--field-selector", "involvedObject.kind=ZkMigration,involvedObject.name=move",
    ) or {}  # fmt: skip
    reasons = [e["reason"] for e in sorted(events.get("items", []), key=_event_time)]
    assert reasons.count("PhaseStarted") == 6 and reasons.count("PhaseSucceeded") == 6, reasons
    assert reasons[-1] == "Succeeded", reasons


def test_a_lost_b_server_holds_phase_two_and_an_operator_crash_in_phase_three_resumes(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    platform: tuple[SimPodRunner, ZkEnsemble, ZkEnsemble],
    namespace: str,
) -> None:
    pods, _, target = platform
    before = _running_tasks(pods)
    manual = _start_approved_through(kube_env, pods, namespace, target, 1)

    target.kill_server(0)
    manual["approval"]["approvedThroughPhase"] = 2
    _apply(kube_env, _migration("move", namespace, target, **manual))
    held = _wait_for(
        kube_env, pods, namespace,
        lambda s: any("2 of 3 servers answer" in c for c in s.get("checks", [])),
        60, "phase 2 held by the lost B server",
    )  # fmt: skip
    progressing = next(c for c in held["conditions"] if c["type"] == "Progressing")
    assert "2 of 3 servers answer" in progressing["message"]
    time.sleep(10)
    still = _status(kube_env, namespace, "move")
    assert still["currentPhase"] == 2 and still["phases"][1]["state"] == "Running"
    target.start_server(0)

    manual["approval"]["approvedThroughPhase"] = 6
    _apply(kube_env, _migration("move", namespace, target, **manual))

    def removing_a_masters(status: dict[str, Any]) -> bool:
        cluster = get_json(kube_env, "mesoscluster", "demo", "-n", namespace) or {}
        routing = json.loads(
            cluster["metadata"].get("annotations", {}).get(ROUTING_ANNOTATION, "{}")
        )
        return status.get("currentPhase") == 3 and routing.get("sourceMasters", 3) < 3

    _wait_for(kube_env, pods, namespace, removing_a_masters, 240, "phase 3 under way")
    operator.crash_and_restart()
    status = _wait_for(
        kube_env, pods, namespace, lambda s: s.get("phase") == "Succeeded", 420, "Succeeded"
    )
    assert [p["state"] for p in status["phases"]] == ["Succeeded"] * 6
    _wait_same_tasks(pods, before)


def test_rollback_from_phase_four_returns_the_cluster_to_a(
    kube_env: KubeTestEnv,
    platform: tuple[SimPodRunner, ZkEnsemble, ZkEnsemble],
    namespace: str,
) -> None:
    pods, source, target = platform
    before = _running_tasks(pods)
    with LeaderSampler(pods) as sampler:
        manual = _start_approved_through(kube_env, pods, namespace, target, 4)
        agents = get_json(kube_env, "daemonset", "demo-agent", "-n", namespace) or {}
        assert f"zk://{target.connect_string}/mesos" in " ".join(
            agents["spec"]["template"]["spec"]["containers"][0]["args"]
        )

        _apply(kube_env, _migration("move", namespace, target, rollbackToPhase=0, **manual))
        status = _wait_for(
            kube_env, pods, namespace, lambda s: s.get("phase") == "RolledBack", 420, "RolledBack"
        )
    sampler.final_audit()
    # Back the same safe way: never an unsafe replica set, no committed write lost.
    assert sampler.unsafe == [] and sampler.auditor.unsafe_seen == set(), sampler.unsafe
    assert [str(lost) for lost in sampler.auditor.lost_committed_writes()] == []
    assert sampler.auditor.interleaved_writers() == []
    assert sampler.two_leaders() == [], sampler.samples
    assert [p["state"] for p in status["phases"][:4]] == ["RolledBack"] * 4
    _on_a(kube_env, namespace, source)
    _wait_same_tasks(pods, before)
    assert pods.leader_url() is not None


def test_a_managed_target_is_created_owned_by_the_migration_and_reported_unreachable(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
) -> None:
    """Ensemble B made by the operator: its StatefulSet and Services appear owned by the
    migration; KWOK runs no ZooKeeper, so phase 1 holds with a condition that says so."""
    source = zk_ensemble_factory(1)
    _apply(
        kube_env,
        {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MesosCluster",
            "metadata": {"name": "demo", "namespace": namespace},
            "spec": {"zookeeper": {"external": {"connectString": source.connect_string}}},
        },
    )
    migration = _migration("move", namespace, source)
    migration["spec"]["target"] = {"managed": {"replicas": 3}}
    _apply(kube_env, migration)

    def created() -> dict[str, Any] | None:
        return get_json(kube_env, "statefulset", "move-zookeeper", "-n", namespace)

    deadline = time.monotonic() + 60
    while (ensemble := created()) is None and time.monotonic() < deadline:
        time.sleep(1)
    assert ensemble is not None, "no StatefulSet move-zookeeper"
    assert ensemble["spec"]["replicas"] == 3
    [owner] = ensemble["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ZkMigration", "move")
    for service in ("move-zookeeper-client", "move-zookeeper-headless"):
        assert get_json(kube_env, "service", service, "-n", namespace) is not None
    # B's Ingress NetworkPolicy (issue 17 point 12), accepted by the API server, owned alike
    policy = get_json(kube_env, "networkpolicy", "move-zookeeper", "-n", namespace)
    assert policy is not None, "no NetworkPolicy move-zookeeper"
    [owner] = policy["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ZkMigration", "move")
    assert (
        policy["spec"]["podSelector"]["matchLabels"] == ensemble["spec"]["selector"]["matchLabels"]
    )

    # The pre-migration checks hold the start: no master runs (KWOK pods), so the cluster is
    # not Ready, and B's servers do not answer.
    deadline = time.monotonic() + 60
    wanted = f"pre-migration check: ensemble B (move-zookeeper-client.{namespace}.svc:2181)"
    while time.monotonic() < deadline:
        status = _status(kube_env, namespace, "move")
        if any(wanted in check for check in status.get("checks", [])):
            break
        time.sleep(1)
    assert status.get("phase") == "Pending" and not status.get("currentPhase"), status
    assert any(wanted in check for check in status["checks"]), status["checks"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert wanted in progressing["message"]


def _cluster_on(namespace: str, source: ZkEnsemble, **masters: Any) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {
            "zookeeper": {"external": {"connectString": source.connect_string}},
            "masters": {"replicas": 1, **masters},
            "marathon": {"replicas": 0},
        },
    }


def _eventually_status(
    env: KubeTestEnv, namespace: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = _status(env, namespace, "move")
        if check(status):
            return status
        time.sleep(1)
    raise AssertionError(f"{what}: {status}")


def test_a_migration_does_not_start_on_a_degraded_cluster_and_says_why(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
) -> None:
    """Issue 18: KWOK's master pods are ready but no master runs, so no leader: Degraded.
    The migration stays Pending with the pre-migration check in words, asks for no sync
    and leaves the cluster's routing alone."""
    source, target = zk_ensemble_factory(1), zk_ensemble_factory(1)
    _apply(kube_env, _cluster_on(namespace, source))
    _apply(kube_env, _migration("move", namespace, target))
    wanted = "pre-migration check: MesosCluster demo is Degraded"
    status = _eventually_status(
        kube_env, namespace,
        lambda s: any(c.startswith(wanted) for c in s.get("checks", [])),
        "the pre-migration check naming the Degraded cluster",
    )  # fmt: skip
    [check] = status["checks"]
    assert "LeaderElected: no Mesos master is registered in ZooKeeper" in check, check
    assert status["phase"] == "Pending" and "syncRequest" not in status, status
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["message"]) == ("False", check)
    cluster = get_json(kube_env, "mesoscluster", "demo", "-n", namespace) or {}
    assert ROUTING_ANNOTATION not in cluster["metadata"].get("annotations", {})


def test_deleting_the_cluster_fails_the_migration_and_stops_its_sync(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
    tmp_path: Path,
) -> None:
    """Issue 18: a migration whose MesosCluster goes ends Failed with that reason and its
    sync stops (it used to wait for the cluster for ever, syncing)."""
    sync_controller_factory("--namespace", namespace)
    source, target = zk_ensemble_factory(1), zk_ensemble_factory(1)
    with SimPodRunner(kube_env, namespace, base_dir=tmp_path / "simpods") as pods:
        _apply(kube_env, _cluster_on(namespace, source))
        pods.wait_for(
            lambda: (get_json(kube_env, "mesoscluster", "demo", "-n", namespace) or {})
            .get("status", {}).get("phase") == "Ready",
            120, "the cluster Ready",
        )  # fmt: skip
        manual = {"approval": {"mode": "Manual", "approvedThroughPhase": 1}}
        # No Marathon here, so no /marathon to sync.
        _apply(kube_env, _migration("move", namespace, target, paths=["/mesos"], **manual))
        _wait_for(
            kube_env, pods, namespace,
            lambda s: (s.get("sync") or {}).get("state") == "Running", 90, "the sync running",
        )  # fmt: skip
        assert kube_env.kubectl_run("delete", "mesoscluster", "demo", "-n", namespace,
                                    "--wait=false").returncode == 0  # fmt: skip
        status = _wait_for(
            kube_env, pods, namespace,
            lambda s: (s.get("phase"), (s.get("sync") or {}).get("state")) == ("Failed", "Stopped"),
            90, "Failed, and the sync stopped",
        )  # fmt: skip
    assert status["checks"] == [
        "MesosCluster demo was deleted: the migration cannot go on; its sync is stopped"
    ]
    assert status["phases"][0]["state"] == "Failed"
    assert status["syncRequest"]["active"] is False
    completed = next(c for c in status["conditions"] if c["type"] == "Completed")
    assert (completed["status"], completed["reason"]) == ("False", "Failed")
    # Failed is final: it stays so.
    time.sleep(3)
    assert _status(kube_env, namespace, "move")["phase"] == "Failed"
