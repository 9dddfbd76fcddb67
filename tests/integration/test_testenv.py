"""The local control plane is real: nodes are Ready through KWOK, the scheduler binds pods,
the controller manager runs Deployments, and stopping it leaves nothing running."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from testenv.kube import KubeTestEnv

pytestmark = pytest.mark.kube


def test_kwok_nodes_are_ready(kube_env: KubeTestEnv) -> None:
    nodes = json.loads(kube_env.kubectl_run("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 3
    assert kube_env.ready_node_count() == 3


def test_a_deployment_gets_running_pods_on_kwok_nodes(kube_env: KubeTestEnv) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(deployment))
    assert applied.returncode == 0, applied.stderr
    waited = kube_env.kubectl_run("rollout", "status", "deployment/web", "--timeout=90s")
    assert waited.returncode == 0, waited.stderr + waited.stdout
    pods = json.loads(kube_env.kubectl_run("get", "pods", "-l", "app=web", "-o", "json").stdout)
    assert [p["status"]["phase"] for p in pods["items"]] == ["Running", "Running"]
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods["items"])


def test_stop_leaves_nothing_running() -> None:
    env = KubeTestEnv(nodes=1)
    env.start()
    pids = [p.pid for p in env.processes if p.pid is not None]
    assert len(pids) == 5  # etcd, apiserver, controller-manager, scheduler, kwok
    base_dir = env.base_dir
    env.stop()
    time.sleep(0.5)
    assert [pid for pid in pids if psutil.pid_exists(pid)] == []
    assert not base_dir.exists()


def test_a_killed_owner_leaves_no_component_running(tmp_path: Path) -> None:
    """SIGKILL of the process that started testenv (no atexit) still stops every component."""
    owner = subprocess.Popen(
        [sys.executable, "-m", "testenv", "up", "--nodes", "1", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ready").exists():
            assert owner.poll() is None and time.monotonic() < deadline, "testenv did not start"
            time.sleep(0.5)
        children = psutil.Process(owner.pid).children(recursive=True)
        assert len(children) >= 5
    finally:
        owner.kill()
        owner.wait()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], f"left running: {[p.pid for p in alive]}"
