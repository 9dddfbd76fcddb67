"""Platform routes and pages against the real testenv control plane.

A MesosCluster and a ZkMigration are created in a namespace of this test and their status is
written with ``kubectl patch --subresource=status``; a real app process
(``orchestrator app``, KUBECONFIG = testenv's) then serves them on
``/api/platform/...``, and (``test_platform_pages_in_chromium``) the UI's platform pages show
them in headless Chromium (``ui/e2e/platform.mjs``, playwright-core and Debian's chromium,
1280x800), with screenshots in docs/screenshots/platform-*.png (docs/ui.md shows them).

The session's operator watches every namespace and writes the status of what it finds (the
MesosCluster's observer, the ZkMigration's pre-migration checks), comparing with what is
stored, so it would rewrite the patched statuses every tick. The namespace fixture therefore
holds the operator stopped (SIGSTOP) while the test runs. A thread still re-patches a status
that someone else changed, and the checks wait for the patched values rather than read once.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testenv.kube import KubeTestEnv
from testenv.monitor_app import MonitorAppProcess, UiNotBuilt, build_ui
from testenv.operator import OperatorProcess
from testenv.screenshots import shrink_all

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "platform-e2e-token"
_COUNTER = itertools.count()

CLUSTER_STATUS: dict[str, Any] = {
    "phase": "Invalid",
    "observedGeneration": 1,
    "leadingMaster": "demo-master-1.demo-master.ui-platform:5050",
    "zookeeperConnectString": "demo-zookeeper-client:2181",
    "zookeeper": {"ready": 3, "desired": 3},
    "masters": {"ready": 2, "desired": 3},
    "agents": {"ready": 3, "desired": 3},
    "marathon": {"ready": 2, "desired": 2},
    "mesos": {"agentsActive": 3, "frameworksActive": 1, "tasksRunning": 5},
    "maintenance": [{"node": "kwok-node-2", "state": "Draining", "tasks": 2}],
    "conditions": [
        {
            "type": "MastersReady",
            "status": "False",
            "reason": "QuorumAtRisk",
            "message": "2 of 3 masters ready; demo-master-2 has not registered in ZooKeeper "
            "since its pod restarted, so one more failure loses the quorum",
            "lastTransitionTime": "2026-11-27T10:00:00Z",
        },
        {
            "type": "MarathonReady",
            "status": "False",
            "reason": "NotElected",
            "message": "no Marathon instance is elected leader in ZooKeeper",
            "lastTransitionTime": "2026-11-27T10:01:00Z",
        },
        {
            "type": "AgentsReady",
            "status": "True",
            "reason": "AllReady",
            "message": "3 of 3 agents ready",
            "lastTransitionTime": "2026-11-27T09:58:00Z",
        },
    ],
}
MIGRATION_STATUS: dict[str, Any] = {
    "phase": "Running",
    "currentPhase": 2,
    "observedGeneration": 1,
    "phases": [
        {
            "number": 1,
            "name": "SyncTarget",
            "state": "Succeeded",
            "startedAt": "2026-11-27T10:00:00Z",
            "finishedAt": "2026-11-27T10:04:00Z",
            "message": "bootstrap done",
        },
        {
            "number": 2,
            "name": "MastersOnTarget",
            "state": "Running",
            "startedAt": "2026-11-27T10:04:00Z",
            "message": "",
        },
    ],
    "sync": {
        "state": "Running",
        "message": "replicating /mesos and /marathon from A to B",
        "lagP99Seconds": 0.036,
        "digestsEqual": False,
        "differences": 2,
        "conflicts": 1,
    },
    "conditions": [
        {
            "type": "Progressing",
            "status": "True",
            "reason": "Running",
            "message": "phase 2: masters on ensemble B are joining the Mesos cluster",
            "lastTransitionTime": "2026-11-27T10:04:00Z",
        }
    ],
}
_PHASE_NAMES = [
    "SyncTarget",
    "MastersOnTarget",
    "RetireSourceMasters",
    "AgentsOnTarget",
    "DrainSource",
    "RetireSource",
]
DONE_STATUS: dict[str, Any] = {
    "phase": "Succeeded",
    "currentPhase": 6,
    "observedGeneration": 1,
    "phases": [
        {
            "number": k + 1,
            "name": name,
            "state": "Succeeded",
            "startedAt": f"2026-11-27T11:0{k}:00Z",
            "finishedAt": f"2026-11-27T11:0{k}:50Z",
            "message": "",
        }
        for k, name in enumerate(_PHASE_NAMES)
    ],
    "sync": {"state": "Stopped", "message": "the migration is over", "lagP99Seconds": 0.012},
    "conditions": [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "Succeeded",
            "message": "phase 6: exit checks pass",
            "lastTransitionTime": "2026-11-27T11:05:50Z",
        },
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "the cluster runs on ensemble B",
            "lastTransitionTime": "2026-11-27T11:05:50Z",
        },
    ],
}


def _kubectl(env: KubeTestEnv, *args: str, input: str | None = None) -> str:
    r = env.kubectl_run(*args, input=input)
    assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
    return r.stdout


def _status_holds(env: KubeTestEnv, ns: str, kind: str, name: str, status: dict[str, Any]) -> bool:
    obj = json.loads(_kubectl(env, "get", kind, name, "-n", ns, "-o", "json"))
    got = obj.get("status") or {}
    return all(got.get(k) == v for k, v in status.items())


def _patch_status(env: KubeTestEnv, ns: str, kind: str, name: str, status: dict[str, Any]) -> None:
    """Patch until the status holds for 2 s (an operator's create handler may write once)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _patch(env, ns, kind, name, status)
        time.sleep(2)
        if _status_holds(env, ns, kind, name, status):
            return
    raise AssertionError(f"the status of {kind}/{name} did not hold")


def _patch(env: KubeTestEnv, ns: str, kind: str, name: str, status: dict[str, Any]) -> None:
    _kubectl(
        env,
        "patch",
        kind,
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


class _StatusHolder(threading.Thread):
    """Re-patches the statuses whenever someone else (the session's operator) changed them."""

    def __init__(self, env: KubeTestEnv, ns: str, objects: list[tuple[str, str, dict[str, Any]]]):
        super().__init__(daemon=True, name="status-holder")
        self.env, self.ns, self.objects = env, ns, objects
        self.stopped = threading.Event()
        self.repatches = 0

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            for kind, name, status in self.objects:
                path = f"/apis/orchestrator.dev/v1alpha1/namespaces/{self.ns}/{kind}/{name}"
                try:
                    got = self.env.api("GET", path).get("status") or {}
                    if any(got.get(k) != v for k, v in status.items()):
                        _patch(self.env, self.ns, kind, name, status)
                        self.repatches += 1
                except Exception:  # an API hiccup: try again next second
                    continue


@pytest.fixture
def namespace(kube_env: KubeTestEnv, operator: OperatorProcess) -> Iterator[str]:
    """A namespace of this test holding a MesosCluster and a ZkMigration with a status; the
    session's operator is stopped meanwhile (see the module's docstring)."""
    with operator.paused():
        yield from _namespace(kube_env)


def _namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    ns = f"ui-platform-{os.getpid()}-{next(_COUNTER)}"
    _kubectl(kube_env, "create", "namespace", ns)
    try:
        objects = [
            {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "MesosCluster",
                "metadata": {"name": "demo", "namespace": ns},
                "spec": {},
            },
            {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "ZkMigration",
                "metadata": {"name": "move-zk", "namespace": ns},
                "spec": {
                    "clusterRef": "demo",
                    "target": {"external": {"connectString": "zk-b.example:2181"}},
                },
            },
            {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "ZkMigration",
                "metadata": {"name": "done-zk", "namespace": ns},
                "spec": {
                    "clusterRef": "demo",
                    "target": {"external": {"connectString": "zk-c.example:2181"}},
                },
            },
        ]
        _kubectl(
            kube_env,
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
        )
        _patch_status(kube_env, ns, "mesosclusters", "demo", CLUSTER_STATUS)
        _patch_status(kube_env, ns, "zkmigrations", "move-zk", MIGRATION_STATUS)
        _patch_status(kube_env, ns, "zkmigrations", "done-zk", DONE_STATUS)
        holder = _StatusHolder(
            kube_env,
            ns,
            [
                ("mesosclusters", "demo", CLUSTER_STATUS),
                ("zkmigrations", "move-zk", MIGRATION_STATUS),
                ("zkmigrations", "done-zk", DONE_STATUS),
            ],
        )
        holder.start()
        try:
            yield ns
        finally:
            holder.stopped.set()
            holder.join(30)
    finally:
        kube_env.kubectl_run("delete", "namespace", ns, "--wait=false")


def _unreachable_kubeconfig(directory: Path) -> Path:
    kubeconfig = directory / "kubeconfig-unreachable"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [
                    {
                        "name": "x",
                        "cluster": {
                            "server": "https://127.0.0.1:9",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                "users": [{"name": "x", "user": {"token": "nope"}}],
            }
        )
    )
    return kubeconfig


def _get(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.mark.kube
def test_platform_routes_read_the_real_api(
    kube_env: KubeTestEnv, namespace: str, tmp_path: Path
) -> None:
    with MonitorAppProcess(tmp_path, TOKEN, kubeconfig=kube_env.kubeconfig) as app:
        url = app.url
        assert _get(f"{url}/api/platform/mesosclusters", token=None)[0] == 401
        deadline = time.monotonic() + 30
        while True:  # until the patched status is read (the operator may have changed it)
            status, body = _get(f"{url}/api/platform/mesosclusters")
            assert status == 200, body
            [demo] = [i for i in body["items"] if i["namespace"] == namespace]
            if demo["phase"] == "Invalid" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert demo["phase"] == "Invalid"
        assert demo["leadingMaster"] == CLUSTER_STATUS["leadingMaster"]
        assert demo["components"]["masters"] == {"ready": 2, "desired": 3}
        assert demo["maintenance"][0]["node"] == "kwok-node-2"
        assert {c["reason"] for c in demo["conditions"]} == {
            "QuorumAtRisk",
            "AllReady",
            "NotElected",
        }

        deadline = time.monotonic() + 30
        while True:
            status, body = _get(f"{url}/api/platform/zkmigrations")
            assert status == 200, body
            [mig] = [
                i for i in body["items"] if i["namespace"] == namespace and i["name"] == "move-zk"
            ]
            if mig["currentPhase"] == 2 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert mig["currentPhase"] == 2 and mig["clusterRef"] == "demo"
        assert [p["state"] for p in mig["phases"]] == ["Succeeded", "Running"] + ["Pending"] * 4
        assert mig["sync"]["conflicts"] == 1 and mig["sync"]["lagP99Seconds"] == 0.036

        status, one = _get(f"{url}/api/platform/mesosclusters/{namespace}/demo")
        assert status == 200 and one["spec"]["masters"]["replicas"] == 3  # CRD defaults
        status, _ = _get(f"{url}/api/platform/zkmigrations/{namespace}/nope")
        assert status == 404


def test_platform_routes_503_when_the_api_is_unreachable(tmp_path: Path) -> None:
    with MonitorAppProcess(tmp_path, TOKEN, kubeconfig=_unreachable_kubeconfig(tmp_path)) as app:
        url = app.url
        status, body = _get(f"{url}/api/platform/mesosclusters")
        assert status == 503 and body["reason"] == "unreachable", body


@pytest.mark.kube
def test_platform_pages_in_chromium(kube_env: KubeTestEnv, namespace: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium", pytrace=False)
    try:
        dist = build_ui(tmp_path / "dist")
    except UiNotBuilt as e:
        pytest.fail(str(e), pytrace=False)
    with (
        MonitorAppProcess(tmp_path, TOKEN, ui_dist=dist, kubeconfig=kube_env.kubeconfig) as app,
        MonitorAppProcess(
            tmp_path, TOKEN, ui_dist=dist, kubeconfig=_unreachable_kubeconfig(tmp_path)
        ) as broken,
    ):
        r = subprocess.run(
            ["node", "e2e/platform.mjs", "--url", app.url, "--token", TOKEN,
             "--namespace", namespace, "--phase", "Invalid", "--artifacts", str(SCREENSHOTS),
             "--broken-url", broken.url, "--done", "done-zk"],
            cwd=UI, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
    shots = (
        "platform-mesosclusters.png",
        "platform-zkmigrations.png",
        "platform-zkmigration-succeeded.png",
        "platform-error.png",
    )
    shrink_all([SCREENSHOTS / name for name in shots])
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from platform.mjs (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    result = json.loads(lines[-1])
    assert r.returncode == 0 and result["ok"], f"{result}\n{r.stderr[-4000:]}"
    cluster = result["cluster"]
    assert result["listPhase"] == "Invalid" and cluster["phase"] == "Invalid"
    assert cluster["leadingMaster"] == CLUSTER_STATUS["leadingMaster"]
    assert any("QuorumAtRisk" in c and "2 of 3 masters ready" in c for c in cluster["conditions"])
    assert any(c.startswith("AgentsReady True AllReady") for c in cluster["conditions"])
    assert "2 / 3" in cluster["masters"] and "kwok-node-2" in cluster["maintenance"]
    # a component is green only when its condition is: agents 3/3 with AgentsReady True;
    # Marathon 2/2 but MarathonReady False is red and says why; ZooKeeper 3/3 with no
    # ZookeeperReady condition is grey; masters 2/3 with MastersReady False red
    components = cluster["components"]
    assert components["agents"]["health"] == "ok" and "h-ok" in components["agents"]["badge"]
    assert components["marathon"]["health"] == "bad" and "h-bad" in components["marathon"]["badge"]
    assert "2 / 2" in components["marathon"]["text"]
    assert "no Marathon instance is elected" in components["marathon"]["text"]
    assert components["zookeeper"]["health"] == "unknown"
    assert "h-ok" not in components["zookeeper"]["badge"]
    assert components["masters"]["health"] == "bad"
    assert "h-bad" in cluster["conditionBadges"]["MastersReady"]
    assert "h-ok" in cluster["conditionBadges"]["AgentsReady"]
    # condition tables wrap between words: no cell may break a word anywhere, and no word
    # (of up to 40 characters) is split over two lines
    for where in (cluster["wrapping"], result["migration"]["wrapping"]):
        assert where["cells"] > 0 and where["words"] > 0
        assert where["breakAll"] == [] and where["broken"] == [], where
    migration = result["migration"]
    assert migration["phases"] == ["Succeeded", "Running"] + ["Pending"] * 4
    assert migration["current"] == "2"
    assert migration["lag"].startswith("36 ms") and migration["conflicts"] == "1"
    assert migration["differences"] == "2"
    # the sync engine's state and message beside the lag
    assert migration["syncState"].startswith("Running")
    assert "replicating /mesos and /marathon" in migration["syncState"]
    assert "h-ok" in migration["syncStateBadge"]
    assert "h-warn" in migration["conditionBadges"]["Progressing"]
    # a migration that succeeded shows no red badge: Progressing False (Succeeded) is not a
    # failure, Completed True is green
    done = result["done"]
    assert done["phase"] == "Succeeded" and "h-ok" in done["phaseBadge"]
    assert any(c.startswith("Progressing False Succeeded") for c in done["conditions"])
    assert "h-bad" not in done["conditionBadges"]["Progressing"]
    assert "h-ok" in done["conditionBadges"]["Completed"]
    assert done["redBadges"] == []
    assert done["syncState"].startswith("Stopped") and done["lag"].startswith("12 ms")
    assert result["reloads"] == 0
    assert "cannot be reached" in result["errorShown"] and "503" in result["errorShown"]
    for name in shots:
        assert (SCREENSHOTS / name).stat().st_size > 0
