"""Scenarios with the operator itself under faults, against the real Kubernetes API (testenv:
etcd, kube-apiserver, controller-manager, scheduler, KWOK nodes) and sim processes behind
the master, agent and Marathon pods (testenv/simpods.py), on real ZooKeeper (issue 20):

- *rolling restart*: the operator rolls the masters (a version change, the StatefulSet's
  OnDelete strategy, its roll_plan: one member at a time, followers first) again and again
  while the operator is SIGKILLed, crash-looped (killed again as soon as it is back),
  SIGSTOPped, the kube-apiserver restarted, ZooKeeper's leader and the leading master
  SIGKILLed.
- *ZkMigration phases*: a migration from ensemble A to B with automatic approval, each of
  its six phases driven by the operator, while the operator and the sync controller are
  SIGKILLed, crash-looped and SIGSTOPped and the kube-apiserver restarted.

The operator and the sync controller run as real processes, restarted when they exit as a
kubelet restarts a container (the chaos `Supervisor`). Invariants, sampled every half
second: never two elected masters in two samples in a row and never two masters committing
registry writes in the same period (sim/logaudit.py); never fewer ready master pods than
the quorum (2 of 3); the operator and the sync controller never crash-loop (more than five
exits of their own in a minute) and do not exit at all once the faults stop; a migration
never goes back a phase. After each fault, recovery is timed until the cluster works again
*and* the MesosCluster's status tells the truth (its ready masters are the StatefulSet's,
its leading master the elected one); the bound is 120 s. At the end: the roll finishes, the
migration succeeds with all six phases Succeeded and B holds what was written to A (the
chaos walker, plain reads), the same Marathon tasks run.

They need several minutes each on the shared machine, so CI's subset (`.ci/run`) leaves
them out (`-m "not control_plane"`); `make chaos` and the soak run them."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from kazoo.client import KazooClient

from sim.logaudit import LogAuditor
from sim.procs import SimProcess
from testenv import faults
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess, ServedProcess
from testenv.simpods import SimPodRunner
from testenv.sync_controller import SyncControllerProcess
from testenv.zookeeper import ZkEnsemble
from tests.chaos.harness import (
    FaultKind,
    Record,
    Sampler,
    assert_clean,
    run_faults,
    seed,
    time_box,
    tree_difference,
    worker,
    zk_tree,
)
from tests.chaos.world import Supervisor, crash_loops, exits_since, wait_until

pytestmark = [pytest.mark.control_plane, pytest.mark.timeout(2400)]
REPO = Path(__file__).resolve().parents[2]
QUORUM = 2


def share() -> float:
    """The module's time box (CHAOS_SECONDS, or its share of a soak) split between its three
    scenarios; 0 (CI's way: each fault kind once) stays 0."""
    return time_box(180) / 3


APP_ROOT = "/chaos-app"  # data an application keeps in ZooKeeper: the migration moves it too


class Restartable:
    """A ServedProcess (the operator, the sync controller) seen as the chaos Supervisor sees
    a SimProcess: `popen`, `running`, `returncode`, `start()` (a new process, same port)."""

    def __init__(self, name: str, served: ServedProcess) -> None:
        self.name = name
        self.served = served

    @property
    def popen(self) -> Any:
        return self.served.process

    @property
    def running(self) -> bool:
        return self.served.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.served.process.returncode

    @property
    def pid(self) -> int:
        return int(self.served.process.pid)

    def start(self) -> None:
        self.served.respawn()  # type: ignore[attr-defined]

    def ready(self) -> bool:
        try:
            return self.running and self.served.get("/readyz")[0] == 200
        except OSError:
            return False


class ChaosOperator(OperatorProcess):
    def respawn(self) -> None:
        self._log.write(b"\n=== restarted by the chaos supervisor ===\n")
        self._log.flush()
        self.process = self._spawn()


class ChaosSyncController(SyncControllerProcess):
    def respawn(self) -> None:
        self._log.write(b"\n=== restarted by the chaos supervisor ===\n")
        self._log.flush()
        self.process = self._spawn()


def apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    done = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())


def get(env: KubeTestEnv, path: str) -> dict[str, Any]:
    return cast(dict[str, Any], env.api("GET", path))


def cluster(name: str, namespace: str, zk: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "zookeeper": {"external": {"connectString": zk}},
            "masters": {"replicas": 3, "version": version},
            "marathon": {"replicas": 1},
        },
    }


class ControlPlane:
    """testenv, the supervised operator, ZooKeeper ensembles and the sim pods of a namespace."""

    def __init__(self, env: KubeTestEnv, base: Path) -> None:
        self.env, self.base = env, base
        self.supervisor = Supervisor()
        self.operator = Restartable("operator", ChaosOperator(env, base / "operator.log"))
        self.operator.served.wait_ready(120)
        self.supervisor.watch(cast(SimProcess, self.operator))
        self.supervisor.start()
        self.apiserver = next(p for p in env.processes if p.name == "kube-apiserver")
        # The kube-scheduler exits by design when its cache finds a pod bound to another node
        # than it had recorded (Kubernetes pkg/scheduler/backend/cache/cache.go, UpdatePod:
        # "Scheduler cache is corrupted", klog.FlushAndExit), which an API server restart can
        # bring about; in a cluster the kubelet starts it again as the static pod it is. So
        # here: the scheduler and controller-manager are restarted when they exit (a thread
        # that lives as long as the plane: children die with the thread that started them).
        self.static_pods = [
            p for p in env.processes if p.name in ("kube-scheduler", "kube-controller-manager")
        ]
        self.static_pod_restarts: dict[str, int] = {p.name: 0 for p in self.static_pods}
        self._stopping = threading.Event()
        self._kubelet = threading.Thread(target=self._restart_static_pods, daemon=True)
        self._kubelet.start()

    def _restart_static_pods(self) -> None:
        while not self._stopping.wait(1.0):
            for process in self.static_pods:
                if not process.running():
                    self.static_pod_restarts[process.name] += 1
                    process.start()

    def stop(self) -> None:
        self._stopping.set()
        self._kubelet.join(timeout=10)
        self.supervisor.stop()
        with contextlib.suppress(Exception):
            self.operator.served.process.send_signal(signal.SIGCONT)
        self.operator.served.stop()

    # -- faults ---------------------------------------------------------------------------
    def killed(self, proc: Restartable) -> Callable[[], Any]:
        @contextlib.contextmanager
        def fault() -> Iterator[None]:
            self.supervisor.killed_by_fault(proc.name)
            faults.kill(proc.pid)
            yield

        return fault

    def crash_looped(self, proc: Restartable, kills: int = 4) -> Callable[[], Any]:
        """Killed again as soon as the supervisor has started it again, `kills` times: a
        container crash-looping from outside (OOM, a node's trouble), not by its own exit."""

        @contextlib.contextmanager
        def fault() -> Iterator[None]:
            for _ in range(kills):
                pid = proc.pid
                self.supervisor.killed_by_fault(proc.name)
                faults.kill(pid)

                def restarted(old: int = pid) -> bool:
                    return proc.running and proc.pid != old

                wait_until(restarted, 60, f"{proc.name} restarted")
                time.sleep(1.0)  # it starts, reads its state, then dies again
            yield

        return fault

    def stopped(self, proc: Restartable, seconds: float) -> Callable[[], Any]:
        return lambda: faults.stopped(proc.pid, seconds + 60)

    def apiserver_restarted(self, down: float) -> Callable[[], Any]:
        @contextlib.contextmanager
        def fault() -> Iterator[None]:
            faults.restart_process(self.apiserver, down_seconds=down)
            wait_until(
                lambda: self.env.kubectl_run("get", "--raw", "/readyz").returncode == 0,
                120,
                "the kube-apiserver ready again",
            )
            yield

        return fault

    def operator_healthy(self) -> str | None:
        return None if self.operator.ready() else "the operator is not ready"


class MasterSampler:
    """Every half second, all masters at once: how many say they are elected; every 2 s the
    log audits (kept per master, so replaced masters are audited too)."""

    def __init__(self, pods: SimPodRunner) -> None:
        self.pods = pods
        self.samples: list[int] = []
        self.auditor = LogAuditor()
        self.lock = threading.Lock()
        self._http = httpx.Client(timeout=1.0)
        self._pool = ThreadPoolExecutor(max_workers=6)
        self._tick = itertools.count()

    def _elected(self, url: str) -> int:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            return int(self._http.get(url + "/metrics/snapshot").json().get("master/elected", 0))
        return 0

    def two_leaders(self) -> str | None:
        urls = self.pods.master_urls()
        elected = sum(self._pool.map(self._elected, urls))
        with self.lock:
            self.samples.append(elected)
            two_in_a_row = len(self.samples) >= 2 and min(self.samples[-2:]) > 1
        if next(self._tick) % 4 == 0:
            self.auditor.sample(urls, timeout=1.0)
        if two_in_a_row:
            return f"{elected} masters elected in two samples in a row ({urls})"
        pairs = self.auditor.interleaved_writers()
        return None if not pairs else f"masters committing in the same period: {pairs}"

    def lost_write(self) -> str | None:
        lost = self.auditor.lost_committed_writes()
        return None if not lost else "; ".join(str(w) for w in lost[:3])

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()


def ready_master_pods(env: KubeTestEnv, namespace: str, name: str) -> int:
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=master"
    pods = get(env, f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")["items"]
    return sum(
        1
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    )


def status_truth(env: KubeTestEnv, pods: SimPodRunner, namespace: str, name: str) -> str | None:
    """None when the MesosCluster's status says what is so: its ready masters are the
    StatefulSet's ready replicas and its leading master is the elected one."""
    mc = get(env, f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/mesosclusters/{name}")
    status = mc.get("status", {})
    sts = get(env, f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}-master")
    ready = sts.get("status", {}).get("readyReplicas", 0)
    said = (status.get("masters") or {}).get("ready")
    if said != ready:
        return f"status says {said} masters ready, the StatefulSet {ready}"
    leader = pods.leader_url()
    if leader is None:
        return "no elected master"
    port = leader.rsplit(":", 1)[1]
    named = status.get("leadingMaster") or ""
    if not named.endswith(f":{port}"):
        return f"status names {named!r} leading, the elected master is {leader}"
    return None


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    base = tmp_path_factory.mktemp("control-plane")
    env = KubeTestEnv(nodes=3, base_dir=base / "testenv")
    with env:
        env.install_crds(REPO / "crds")
        control = ControlPlane(env, base)
        try:
            yield control
        finally:
            control.stop()


@pytest.fixture
def namespace(plane: ControlPlane) -> Iterator[str]:
    name = f"chaos-{int(time.time()) % 100000}"
    assert plane.env.kubectl_run("create", "namespace", name).returncode == 0
    yield name
    plane.env.kubectl_run(
        "delete", "zkmigrations,mesosclusters", "--all", "-n", name, "--timeout=60s"
    )
    plane.env.kubectl_run("delete", "namespace", name, "--wait=false")


@pytest.fixture
def ensembles(tmp_path: Path) -> Iterator[tuple[ZkEnsemble, ZkEnsemble]]:
    a, b = ZkEnsemble(3, tmp_path / "a"), ZkEnsemble(3, tmp_path / "b")
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def running_tasks(pods: SimPodRunner) -> set[str]:
    tasks = httpx.get(pods.marathon_url() + "/v2/tasks", timeout=5).json()["tasks"]
    return {t["id"] for t in tasks if t["state"] == "TASK_RUNNING"}


def start_cluster(
    plane: ControlPlane, pods: SimPodRunner, namespace: str, zk: str, tasks: int
) -> set[str]:
    apply(plane.env, cluster("demo", namespace, zk, "1.11.0"))
    pods.wait_for(lambda: pods.leader_url() is not None, 120, "an elected master")
    pods.wait_for(
        lambda: httpx.get(pods.marathon_url() + "/v2/leader", timeout=3).status_code == 200,
        90,
        "a leading Marathon",
    )
    app = {"id": "/web", "instances": tasks, "cpus": 0.01, "mem": 1, "cmd": "sleep 100000"}
    pods.wait_for(
        lambda: (
            httpx.post(pods.marathon_url() + "/v2/apps", json=app, timeout=10).status_code
            in (201, 409)
        ),
        60,
        "the app created",
    )
    pods.wait_for(lambda: len(running_tasks(pods)) == tasks, 120, f"{tasks} running tasks")
    return running_tasks(pods)


def operator_kinds(plane: ControlPlane) -> list[FaultKind]:
    op = plane.operator
    return [
        FaultKind("SIGKILL operator", lambda rng: ("operator", plane.killed(op), 1.0)),
        FaultKind(
            "operator crash loop (4 kills in a row)",
            lambda rng: ("operator", plane.crash_looped(op), 1.0),
        ),
        FaultKind("SIGSTOP operator 10 s", lambda rng: ("operator", plane.stopped(op, 10), 10.0)),
        FaultKind(
            "kube-apiserver restart (5 s down)",
            lambda rng: ("kube-apiserver", plane.apiserver_restarted(5.0), 1.0),
        ),
    ]


def test_rolling_restart_of_masters_under_operator_and_api_server_faults(
    plane: ControlPlane, namespace: str, ensembles: tuple[ZkEnsemble, ZkEnsemble], tmp_path: Path
) -> None:
    scenario = "rolling restart of masters (operator, API server)"
    env, (zk, _) = plane.env, ensembles
    rng = random.Random(seed())
    record = Record(scenario, seed())
    with SimPodRunner(env, namespace, base_dir=tmp_path / "simpods") as pods:
        tasks = start_cluster(plane, pods, namespace, zk.connect_string, 4)
        masters = MasterSampler(pods)
        versions = itertools.cycle(["1.11.1", "1.11.0"])
        target = ["1.11.0"]
        rolls: list[str] = []
        finishing = threading.Event()

        def rolled() -> bool:
            sts = get(env, f"/apis/apps/v1/namespaces/{namespace}/statefulsets/demo-master")
            status = sts.get("status", {})
            image = sts["spec"]["template"]["spec"]["containers"][0]["image"]
            return bool(
                image.endswith(f":{target[0]}")
                and status.get("observedGeneration") == sts["metadata"]["generation"]
                and status.get("updatedReplicas") == 3
                and status.get("readyReplicas") == 3
            )

        def roll_state() -> str:
            """What a user would look at when a roll does not finish."""
            sts = get(env, f"/apis/apps/v1/namespaces/{namespace}/statefulsets/demo-master")
            mc = get(
                env, f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/mesosclusters/demo"
            )
            selector = "app.kubernetes.io/instance=demo,app.kubernetes.io/component=master"
            listed = get(env, f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
            revisions = {
                p["metadata"]["name"]: p["metadata"]
                .get("labels", {})
                .get("controller-revision-hash")
                for p in listed["items"]
            }
            status = mc.get("status", {})
            conditions = [
                (c.get("type"), c.get("status"), c.get("message"))
                for c in status.get("conditions", [])
            ]
            return (
                f"StatefulSet generation {sts['metadata']['generation']} image "
                f"{sts['spec']['template']['spec']['containers'][0]['image']} status "
                f"{sts.get('status')}; pods {revisions}; MesosCluster spec version "
                f"{mc['spec'].get('masters', {}).get('version')}, status.rollout "
                f"{status.get('rollout')}, conditions "
                f"{conditions}"
            )

        def roll(stop: threading.Event) -> None:
            """The user's part: once a roll is done, ask for the next version."""
            if not finishing.is_set() and rolled():
                if len(rolls) or target[0] != "1.11.0":
                    rolls.append(target[0])
                target[0] = next(versions)
            mc = get(
                env, f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/mesosclusters/demo"
            )
            if mc["spec"].get("masters", {}).get("version") != target[0]:
                # again until it lands: an apply while the API server restarts fails
                apply(env, cluster("demo", namespace, zk.connect_string, target[0]))
            stop.wait(2.0)

        def quorum() -> str | None:
            ready = ready_master_pods(env, namespace, "demo")
            return None if ready >= QUORUM else f"{ready} master pods ready, quorum {QUORUM}"

        def healthy() -> str | None:
            for problem in (
                plane.operator_healthy(),
                None if len(zk_serving(zk)) == 3 else "ZooKeeper not all serving",
                status_truth(env, pods, namespace, "demo"),
            ):
                if problem:
                    return problem
            return None

        kinds = [
            *operator_kinds(plane),
            FaultKind("SIGKILL ZooKeeper leader", lambda rng: zk_leader_killed(zk)),
            FaultKind("SIGKILL leading master", lambda rng: leading_master_killed(pods)),
        ]
        checks = {
            "never two leading masters": masters.two_leaders,
            "no committed registry write lost": masters.lost_write,
            "never below quorum (ready master pods)": quorum,
            "operator never crash-loops": lambda: crash_loops(plane.supervisor),
        }
        try:
            with Sampler(record, checks) as sampler, worker("roll", roll) as errors:
                sampler.pids = {"operator": lambda: plane.operator.pid}
                run_faults(record, kinds, healthy, share(), rng, recovery_bound=120)
                quiet = time.monotonic()
                finishing.set()  # no fault and no new version now: the roll under way finishes
                try:
                    wait_until(rolled, 240, f"the roll to {target[0]} finished")
                    rolls.append(target[0])
                except TimeoutError as exc:
                    record.violate("the roll finishes once faults stop", f"{exc}: {roll_state()}")
                sampler.check_now()
            if exits_since(plane.supervisor, quiet):
                record.violate(
                    "operator never crash-loops",
                    f"exits after the faults: {exits_since(plane.supervisor, quiet)}",
                )
            masters.auditor.sample(pods.master_urls())
            if masters.lost_write():
                record.violate("no committed registry write lost", str(masters.lost_write()))
            try:
                pods.wait_for(lambda: running_tasks(pods) == tasks, 120, "the same tasks")
            except TimeoutError:
                record.violate("no task failed or lost", f"running {sorted(running_tasks(pods))}")
            record.samples["rolls completed"] = len(rolls)
            record.samples["operator restarts"] = plane.supervisor.restarts.get("operator", 0)
            record.samples["kube-scheduler restarts (kubelet stand-in)"] = (
                plane.static_pod_restarts["kube-scheduler"]
            )
            assert_clean(record)
            assert rolls, f"no roll finished: {errors[-3:]}"
        finally:
            masters.close()


def zk_serving(zk: ZkEnsemble) -> list[int]:
    return [i for i in range(zk.size) if zk.server_state(i) in ("leader", "follower")]


def zk_leader_killed(zk: ZkEnsemble) -> tuple[str, Callable[[], Any], float]:
    index = zk.leader_index()
    i = index if index is not None else 0

    @contextlib.contextmanager
    def fault() -> Iterator[None]:
        zk.kill_server(i)
        try:
            yield
        finally:
            zk.start_server(i, timeout=120)

    return f"zk{i + 1}", fault, 2.0


def leading_master_killed(pods: SimPodRunner) -> tuple[str, Callable[[], Any], float]:
    """SIGKILL of the elected master's process; its pod stays, so the runner restarts it
    (the kubelet's restart of the container)."""
    leader = pods.leader_url()
    info = next(
        (p for p in pods.processes().values() if p.alive and leader and p.url == leader), None
    )

    @contextlib.contextmanager
    def fault() -> Iterator[None]:
        if info is not None and info.pid:
            faults.kill(info.pid)
        yield

    return (info.pod if info else "none"), fault, 1.0


def test_zkmigration_phases_resume_after_operator_and_sync_controller_faults(
    plane: ControlPlane, namespace: str, ensembles: tuple[ZkEnsemble, ZkEnsemble], tmp_path: Path
) -> None:
    scenario = "ZkMigration phases (operator, sync controller, API server)"
    env, (a, b) = plane.env, ensembles
    rng = random.Random(seed())
    record = Record(scenario, seed())
    sync = Restartable(
        "sync-controller",
        ChaosSyncController(
            env, tmp_path / "sync.log", "--namespace", namespace,
            "--state-dir", str(tmp_path / "sync-state"),
        ),
    )  # fmt: skip
    sync.served.wait_ready(120)
    plane.supervisor.watch(cast(SimProcess, sync))
    client = KazooClient(hosts=a.connect_string, timeout=10.0)
    client.start(timeout=30)
    try:
        for i in range(60):  # what an application keeps in ZooKeeper: moved to B
            client.create(f"{APP_ROOT}/n{i:03}/leaf", b"v%d" % i, makepath=True)
        written = zk_tree(client, APP_ROOT)
        with SimPodRunner(env, namespace, base_dir=tmp_path / "simpods") as pods:
            tasks = start_cluster(plane, pods, namespace, a.connect_string, 8)
            masters = MasterSampler(pods)
            migration = {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "ZkMigration",
                "metadata": {"name": "move", "namespace": namespace},
                "spec": {
                    "clusterRef": "demo",
                    "target": {"external": {"connectString": b.connect_string}},
                    "paths": ["/mesos", "/marathon", APP_ROOT],
                },
            }
            path = f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/zkmigrations/move"
            seen: list[tuple[int, list[str]]] = []

            def migration_status() -> dict[str, Any]:
                return cast(dict[str, Any], get(env, path).get("status", {}))

            def never_back() -> str | None:
                """A migration resumes where it stopped: its current phase never goes back
                and a phase once Succeeded stays so."""
                status = migration_status()
                now = (
                    int(status.get("currentPhase") or 0),
                    [p.get("state", "") for p in status.get("phases", [])],
                )
                with masters.lock:
                    before = seen[-1] if seen else None
                    seen.append(now)
                if before is None:
                    return None
                went_back = now[0] < before[0]
                undone = [
                    i + 1
                    for i, (x, y) in enumerate(zip(before[1], now[1], strict=False))
                    if x == "Succeeded" and y != "Succeeded"
                ]
                if went_back or undone:
                    return f"phase {before[0]} -> {now[0]}, phases undone {undone}"
                return None

            def succeeded() -> bool:
                return migration_status().get("phase") == "Succeeded"

            def healthy() -> str | None:
                if not plane.operator.ready():
                    return "the operator is not ready"
                if not sync.ready() and not succeeded():
                    return "the sync controller is not ready"
                if pods.leader_url() is None:
                    return "no elected master"
                status = migration_status()
                if status.get("phase") not in ("Running", "Succeeded", "AwaitingApproval"):
                    return f"migration {status.get('phase')}: {status.get('checks')}"
                return None

            kinds = [
                *operator_kinds(plane),
                FaultKind("SIGKILL sync controller",
                          lambda rng: ("sync-controller", plane.killed(sync), 1.0)),
                FaultKind("sync controller crash loop (4 kills in a row)",
                          lambda rng: ("sync-controller", plane.crash_looped(sync), 1.0)),
                FaultKind("SIGSTOP sync controller 10 s",
                          lambda rng: ("sync-controller", plane.stopped(sync, 10), 10.0)),
            ]  # fmt: skip
            checks = {
                "never two leading masters": masters.two_leaders,
                "no committed registry write lost": masters.lost_write,
                "the migration never goes back a phase": never_back,
                "operator and sync controller never crash-loop": lambda: crash_loops(
                    plane.supervisor
                ),
            }
            try:
                with Sampler(record, checks) as sampler:
                    sampler.pids = {
                        "operator": lambda: plane.operator.pid,
                        "sync controller": lambda: sync.pid,
                    }
                    apply(env, migration)
                    wait_until(lambda: bool(migration_status().get("currentPhase")), 120, "started")
                    run_faults(record, kinds, healthy, share(), rng, recovery_bound=120)
                    quiet = time.monotonic()
                    try:
                        wait_until(succeeded, 600, "the migration Succeeded")
                    except TimeoutError as exc:
                        status = migration_status()
                        record.violate(
                            "the migration finishes once faults stop",
                            f"{exc}: phase {status.get('currentPhase')} {status.get('phase')} "
                            f"{status.get('checks')}",
                        )
                    sampler.check_now()
                if exits_since(plane.supervisor, quiet):
                    record.violate(
                        "operator and sync controller never crash-loop",
                        f"exits after the faults: {exits_since(plane.supervisor, quiet)}",
                    )
                states = [p.get("state") for p in migration_status().get("phases", [])]
                if states != ["Succeeded"] * 6:
                    record.violate("every phase Succeeded", f"phases {states}")
                on_b = KazooClient(hosts=b.connect_string, timeout=10.0)
                on_b.start(timeout=30)
                try:
                    difference = tree_difference(written, zk_tree(on_b, APP_ROOT))
                finally:
                    on_b.stop()
                    on_b.close()
                if difference:
                    record.violate("trees equal at the end (A as written, B)", difference)
                masters.auditor.sample(pods.master_urls())
                if masters.lost_write():
                    record.violate("no committed registry write lost", str(masters.lost_write()))
                try:
                    pods.wait_for(lambda: running_tasks(pods) == tasks, 120, "the same tasks")
                except TimeoutError:
                    record.violate(
                        "no task failed or lost", f"running {sorted(running_tasks(pods))}"
                    )
                record.samples["operator restarts"] = plane.supervisor.restarts.get("operator", 0)
                record.samples["kube-scheduler restarts (kubelet stand-in)"] = (
                    plane.static_pod_restarts["kube-scheduler"]
                )
                record.samples["sync controller restarts"] = plane.supervisor.restarts.get(
                    "sync-controller", 0
                )
                record.samples["phases seen"] = len({s[0] for s in seen})
                assert_clean(record)
            finally:
                masters.close()
    finally:
        with plane.supervisor.lock:
            plane.supervisor.watched.pop("sync-controller", None)
        with contextlib.suppress(Exception):
            sync.served.process.send_signal(signal.SIGCONT)
        sync.served.stop()
        client.stop()
        client.close()


def test_marathonapp_canary_under_operator_api_server_and_marathon_faults(
    plane: ControlPlane, namespace: str, ensembles: tuple[ZkEnsemble, ZkEnsemble], tmp_path: Path
) -> None:
    """A MarathonApp canary (weights 25 %, 50 % with timed pauses, then the promotion: the
    stable app takes the new revision, the canary goes) run by the operator, a new version
    as soon as the last one is promoted, while the operator, the kube-apiserver, Marathon and
    the master are killed. Invariants: no task of the app failed or lost and never fewer
    running than its instances (what the rollout plan allows: a canary starts beside the
    stable app, the stable app is replaced by Marathon's rolling upgrade, new tasks first);
    never traffic on an app with no running task (two samples in a row); after each fault,
    status.rollout's weights are the traffic ConfigMap's within the bound; at the end the
    last version is promoted and status says so."""
    scenario = "MarathonApp canary (operator, API server, Marathon)"
    env, (zk, _) = plane.env, ensembles
    rng = random.Random(seed())
    record = Record(scenario, seed())
    instances = 2
    mapp = f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/marathonapps/shop"
    traffic_cm = f"/api/v1/namespaces/{namespace}/configmaps/shop-traffic"
    strategy = {
        "type": "canary",
        "canary": {
            "steps": [
                {"setWeight": 25},
                {"pause": {"durationSeconds": 3}},
                {"setWeight": 50},
                {"pause": {"durationSeconds": 3}},
            ]
        },
    }

    def manifest(version: int) -> dict[str, Any]:
        app = {"id": "/shop", "cmd": f"sleep 100000 # v{version}", "instances": instances,
               "cpus": 0.05, "mem": 16}  # fmt: skip
        return {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MarathonApp",
            "metadata": {"name": "shop", "namespace": namespace},
            "spec": {"cluster": "demo", "app": app, "strategy": strategy},
        }

    with SimPodRunner(env, namespace, base_dir=tmp_path / "simpods") as pods:
        apply(env, cluster("demo", namespace, zk.connect_string, "1.11.0"))
        pods.wait_for(lambda: pods.leader_url() is not None, 120, "an elected master")

        def registered() -> bool:
            info = httpx.get(pods.marathon_urls()[0] + "/v2/info", timeout=2).json()
            return bool(info.get("elected") and info.get("frameworkId"))

        pods.wait_for(registered, 120, "Marathon elected and registered")
        version = [1]
        apply(env, manifest(1))

        def rollout() -> dict[str, Any]:
            return cast(dict[str, Any], (get(env, mapp).get("status") or {}).get("rollout") or {})

        def weights() -> dict[str, int]:
            data = (get(env, traffic_cm).get("data") or {}).get("weights.json")
            return dict(json.loads(data)["weights"]) if data else {}

        def marathon_apps() -> dict[str, str]:
            apps = httpx.get(pods.marathon_url() + "/v2/apps", timeout=5).json()["apps"]
            return {a["id"]: a["cmd"] for a in apps}

        def promoted() -> bool:
            now = rollout()
            return bool(
                now.get("stage") == "Idle"
                and now.get("phase") in ("Promoted", "Idle")
                and marathon_apps() == {"/shop": f"sleep 100000 # v{version[0]}"}
            )

        pods.wait_for(promoted, 120, "the first version running")
        releases: list[int] = []
        finishing = threading.Event()

        def release(stop: threading.Event) -> None:
            """The user's part: a new version once the last one is promoted."""
            if not finishing.is_set() and promoted():
                if version[0] > 1:
                    releases.append(version[0])
                version[0] += 1
            spec = get(env, mapp).get("spec", {})
            if spec.get("app", {}).get("cmd") != manifest(version[0])["spec"]["app"]["cmd"]:
                # again until it lands: an apply while the API server restarts fails
                apply(env, manifest(version[0]))
            stop.wait(2.0)

        def master_state() -> dict[str, Any] | None:
            """The leader's state once the agent has re-registered (before, it does not
            know the agent's tasks): None while it cannot count."""
            url = pods.leader_url()
            if url is None:
                return None
            state = cast(dict[str, Any], httpx.get(url + "/master/state", timeout=3).json())
            active = [a for a in state.get("slaves", []) if a.get("active")]
            return state if len(active) >= 3 else None

        def capacity() -> str | None:
            state = master_state()
            if state is None:
                return None
            frameworks = state.get("frameworks", [])
            bad = [
                f"{t['id']} {t['state']}"
                for fw in frameworks
                for t in fw.get("completed_tasks", [])
                if t["id"].startswith("shop") and t["state"] not in ("TASK_KILLED", "TASK_FINISHED")
            ]
            if bad:
                return f"tasks ended badly: {bad}"
            running = [
                t["id"]
                for fw in frameworks
                for t in fw.get("tasks", [])
                if t["id"].startswith("shop") and t["state"] == "TASK_RUNNING"
            ]
            return None if len(running) >= instances else f"{len(running)} running: {running}"

        empty_traffic: list[bool] = []

        def traffic_on_running_apps() -> str | None:
            now = weights()
            tasks = httpx.get(pods.marathon_url() + "/v2/tasks", timeout=5).json()["tasks"]
            running = {t["appId"] for t in tasks if t["state"] == "TASK_RUNNING"}
            empty = sorted(a for a, w in now.items() if w > 0 and a not in running)
            empty_traffic.append(bool(empty))
            if len(empty_traffic) >= 2 and all(empty_traffic[-2:]):
                return f"weights {now} on apps with no running task: {empty}"
            return None

        def status_tells_the_truth() -> str | None:
            # an app at weight 0 gets no traffic whether it is listed or not
            said = {a: w for a, w in (rollout().get("weights") or {}).items() if w}
            written = {a: w for a, w in weights().items() if w}
            if said != written:
                return f"status.rollout.weights {said}, the traffic ConfigMap {written}"
            if rollout().get("phase") in ("RolledBack", "Aborted", "Failed"):
                return f"the rollout {rollout().get('phase')}: {rollout().get('message')}"
            return None

        def healthy() -> str | None:
            if not plane.operator.ready():
                return "the operator is not ready"
            if not registered():
                return "Marathon not elected and registered"
            return status_tells_the_truth()

        def marathon_killed(rng: random.Random) -> tuple[str, Callable[[], Any], float]:
            info = next(
                (p for p in pods.processes().values() if p.component == "marathon" and p.alive),
                None,
            )

            @contextlib.contextmanager
            def fault() -> Iterator[None]:
                if info is not None and info.pid:
                    faults.kill(info.pid)
                yield

            return (info.pod if info else "none"), fault, 1.0

        kinds = [
            *operator_kinds(plane),
            FaultKind("SIGKILL Marathon", marathon_killed),
            FaultKind("SIGKILL leading master", lambda rng: leading_master_killed(pods)),
        ]
        checks = {
            "no task failed or lost, capacity held": capacity,
            "no traffic on an app with no running task": traffic_on_running_apps,
            "operator never crash-loops": lambda: crash_loops(plane.supervisor),
        }
        with Sampler(record, checks) as sampler, worker("release", release) as errors:
            sampler.pids = {"operator": lambda: plane.operator.pid}
            run_faults(record, kinds, healthy, share(), rng, recovery_bound=120)
            quiet = time.monotonic()
            finishing.set()  # no fault and no new version now: the last one is promoted
            try:
                wait_until(promoted, 240, "the last version promoted")
                releases.append(version[0])
            except TimeoutError as exc:
                record.violate("the canary finishes once faults stop", f"{exc}: {rollout()}")
            sampler.check_now()
        if exits_since(plane.supervisor, quiet):
            record.violate(
                "operator never crash-loops",
                f"exits after the faults: {exits_since(plane.supervisor, quiet)}",
            )
        problem = status_tells_the_truth()
        if problem:
            record.violate("status tells the truth at the end", problem)
        record.samples["versions promoted"] = len(releases)
        state = master_state() or {}
        record.samples["tasks killed (by the rollouts' plan)"] = sum(
            1
            for fw in state.get("frameworks", [])
            for t in fw.get("completed_tasks", [])
            if t["id"].startswith("shop") and t["state"] == "TASK_KILLED"
        )
        assert_clean(record)
        assert releases, f"no version promoted: {errors[-3:]}"
