"""The probe's Kubernetes collector against the real local control plane: pods on the probe's
node (KWOK node kwok-node-0) with their namespace, name, labels, phase, node and IP; pods on
other nodes left out; a deleted pod gone on the next collection."""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from orchestrator_operator.monitor.probe.agent import Probe
from orchestrator_operator.monitor.probe.main import add_probe_parser, probe_config
from orchestrator_operator.monitor.report import Pod
from testenv.kube import KubeTestEnv

pytestmark = pytest.mark.kube

NODE = "kwok-node-0"


def _pod(namespace: str, name: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "nodeName": node,  # bound directly, as the scheduler would
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}],
        },
    }


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    name = f"probe-k8s-{secrets.token_hex(3)}"
    created = kube_env.kubectl_run("create", "namespace", name)
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        kube_env.kubectl_run("delete", "namespace", name, "--wait=true", "--timeout=120s")


def _probe(kube_env: KubeTestEnv) -> Probe:
    """The probe as `orchestrator probe --kubernetes` would run it on kwok-node-0 (the host
    collectors off: only the pod collector and host facts)."""
    parser = argparse.ArgumentParser()
    add_probe_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["probe", "--app", "http://127.0.0.1:1", "--kubernetes",
         "--kubeconfig", str(kube_env.kubeconfig), "--hostname", NODE,
         "--no-docker", "--no-processes", "--no-connections"]
    )  # fmt: skip
    return Probe(probe_config(args, "unused"))


def _ours(probe: Probe, namespace: str) -> dict[str, Pod]:
    report = probe.collect()
    assert probe.k8s is not None
    assert probe.k8s.last_error == "", probe.k8s.last_error
    return {p.name: p for p in report.pods if p.namespace == namespace}


def _running(probe: Probe, namespace: str, names: set[str], timeout: float = 90) -> dict[str, Pod]:
    """Collect until every named pod is Running with an IP (KWOK sets both shortly after)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = _ours(probe, namespace)
        if all(n in pods and pods[n].phase == "Running" and pods[n].ip for n in names):
            return pods
        assert time.monotonic() < deadline, f"not Running with an IP: {pods}"
        time.sleep(0.5)


def test_pod_collector_sees_this_nodes_pods_only(kube_env: KubeTestEnv, namespace: str) -> None:
    manifests = [
        _pod(namespace, "web-0", NODE, {"app": "web", "tier": "front"}),
        _pod(namespace, "web-1", NODE, {"app": "web", "tier": "front"}),
        _pod(namespace, "db-0", NODE, {"app": "db"}),
        _pod(namespace, "elsewhere-1", "kwok-node-1", {"app": "web"}),
        _pod(namespace, "elsewhere-2", "kwok-node-2", {"app": "web"}),
    ]
    applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    assert applied.returncode == 0, applied.stderr
    probe = _probe(kube_env)

    pods = _running(probe, namespace, {"web-0", "web-1", "db-0"})
    assert set(pods) == {"web-0", "web-1", "db-0"}  # nothing from kwok-node-1 or -2
    listed = json.loads(kube_env.kubectl_run("get", "pods", "-n", namespace, "-o", "json").stdout)[
        "items"
    ]
    truth = {p["metadata"]["name"]: p for p in listed}
    for name, pod in pods.items():
        assert pod.namespace == namespace
        assert pod.node == NODE
        assert pod.phase == "Running"
        assert pod.uid == truth[name]["metadata"]["uid"]
        assert pod.ip and pod.ip == truth[name]["status"]["podIP"]
        assert pod.labels == truth[name]["metadata"]["labels"]
    assert pods["web-0"].labels == {"app": "web", "tier": "front"}
    assert pods["db-0"].labels == {"app": "db"}
    # The other nodes' pods exist and run: they are left out by the node filter, not missing.
    assert {truth[n]["spec"]["nodeName"] for n in ("elsewhere-1", "elsewhere-2")} == {
        "kwok-node-1",
        "kwok-node-2",
    }
    # The report is what the probe would send: no processes or connections (switched off).
    report = probe.collect()
    assert report.processes == () and report.connections == ()
    assert report.host.hostname == NODE

    deleted = kube_env.kubectl_run(
        "delete", "pod", "web-1", "-n", namespace, "--wait=true", "--timeout=60s"
    )
    assert deleted.returncode == 0, deleted.stderr
    after = _ours(probe, namespace)
    assert set(after) == {"web-0", "db-0"}
    assert after["web-0"].uid == pods["web-0"].uid
