"""Platform routes and pages against the real testenv control plane.

A MesosCluster and a ZkMigration are created in a namespace of this test and their status is
written with ``kubectl patch --subresource=status``; a real app process
(``tests.e2e.ui_server --platform``, KUBECONFIG = testenv's) then serves them on
``/api/platform/...``, and (second test) the UI's platform pages show them in headless Chromium.

The session's operator may be running (other tests start it): it watches every namespace and
its 1 s observer rewrites a MesosCluster's status unless the phase is ``Invalid``, so the
cluster's patched phase is ``Invalid``, and the patch is repeated until it holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testenv.kube import KubeTestEnv

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "platform-e2e-token"
NAMESPACE = f"ui-platform-{os.getpid()}"

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
            "message": "2 of 3 masters ready",
            "lastTransitionTime": "2026-11-27T10:00:00Z",
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
    "sync": {"lagP99Seconds": 0.036, "digestsEqual": False, "differences": 2, "conflicts": 1},
}


def _kubectl(env: KubeTestEnv, *args: str, input: str | None = None) -> str:
    r = env.kubectl_run(*args, input=input)
    assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
    return r.stdout


def _status_holds(env: KubeTestEnv, kind: str, name: str, status: dict[str, Any]) -> bool:
    obj = json.loads(_kubectl(env, "get", kind, name, "-n", NAMESPACE, "-o", "json"))
    got = obj.get("status") or {}
    return all(got.get(k) == v for k, v in status.items())


def _patch_status(env: KubeTestEnv, kind: str, name: str, status: dict[str, Any]) -> None:
    """Patch until the status holds for 2 s (an operator's create handler may write once)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _kubectl(env, "patch", kind, name, "-n", NAMESPACE, "--subresource=status",
                 "--type=merge", "-p", json.dumps({"status": status}))
        time.sleep(2)
        if _status_holds(env, kind, name, status):
            return
    raise AssertionError(f"the status of {kind}/{name} did not hold")


@pytest.fixture
def platform_objects(kube_env: KubeTestEnv) -> Iterator[None]:
    _kubectl(kube_env, "create", "namespace", NAMESPACE)
    try:
        objects = [
            {"apiVersion": "orchestrator.dev/v1alpha1", "kind": "MesosCluster",
             "metadata": {"name": "demo", "namespace": NAMESPACE}, "spec": {}},
            {"apiVersion": "orchestrator.dev/v1alpha1", "kind": "ZkMigration",
             "metadata": {"name": "move-zk", "namespace": NAMESPACE},
             "spec": {"clusterRef": "demo",
                      "target": {"external": {"connectString": "zk-b.example:2181"}}}},
        ]
        _kubectl(kube_env, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1",
                 "kind": "List", "items": objects}))
        _patch_status(kube_env, "mesosclusters", "demo", CLUSTER_STATUS)
        _patch_status(kube_env, "zkmigrations", "move-zk", MIGRATION_STATUS)
        yield
    finally:
        kube_env.kubectl_run("delete", "namespace", NAMESPACE, "--wait=false")


def _start_app(env: KubeTestEnv, dist: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.ui_server", "--port", "0", "--token", TOKEN,
         "--platform", "--dist", str(dist)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(env.kubeconfig)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening "):
        proc.kill()
        pytest.fail(f"the app did not start: {line!r}", pytrace=False)
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


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
    kube_env: KubeTestEnv, platform_objects: None, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    proc, url = _start_app(kube_env, tmp_path)
    try:
        assert _get(f"{url}/api/platform/mesosclusters", token=None)[0] == 401
        status, body = _get(f"{url}/api/platform/mesosclusters")
        assert status == 200, body
        [demo] = [i for i in body["items"] if i["namespace"] == NAMESPACE]
        assert demo["phase"] == "Invalid"
        assert demo["leadingMaster"] == CLUSTER_STATUS["leadingMaster"]
        assert demo["components"]["masters"] == {"ready": 2, "desired": 3}
        assert demo["maintenance"][0]["node"] == "kwok-node-2"
        assert {c["reason"] for c in demo["conditions"]} == {"QuorumAtRisk", "AllReady"}

        status, body = _get(f"{url}/api/platform/zkmigrations")
        assert status == 200, body
        [mig] = [i for i in body["items"] if i["namespace"] == NAMESPACE]
        assert mig["currentPhase"] == 2 and mig["clusterRef"] == "demo"
        assert [p["state"] for p in mig["phases"]] == ["Succeeded", "Running"] + ["Pending"] * 4
        assert mig["sync"]["conflicts"] == 1 and mig["sync"]["lagP99Seconds"] == 0.036

        status, one = _get(f"{url}/api/platform/mesosclusters/{NAMESPACE}/demo")
        assert status == 200 and one["spec"]["masters"]["replicas"] == 3  # CRD defaults
        status, _ = _get(f"{url}/api/platform/zkmigrations/{NAMESPACE}/nope")
        assert status == 404
    finally:
        _stop(proc)


def test_platform_routes_503_when_the_api_is_unreachable(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:9",
                                                "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
        "users": [{"name": "x", "user": {"token": "nope"}}],
    }))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.ui_server", "--port", "0", "--token", TOKEN,
         "--platform", "--dist", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{int(proc.stdout.readline().split()[1])}"
        status, body = _get(f"{url}/api/platform/mesosclusters")
        assert status == 503 and body["reason"] == "unreachable", body
    finally:
        _stop(proc)
