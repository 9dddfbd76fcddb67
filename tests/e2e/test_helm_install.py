"""The Helm chart installed into testenv with `helm install` (helm built from its Go module),
namespace-scoped, and the operator and the sync controller running from it.

testenv's kubelets (KWOK) run no containers, so the chart's pod cannot run the image. What
the chart decides about the operator is its identity, its rights and its command line;
this test runs the programs with exactly those: the container arguments read back from the
installed Deployments (only the health address moved to loopback), each under a
TokenRequest token of its Deployment's ServiceAccount (the operator's, the sync
controller's), so every request goes through the chart's Roles, RoleBindings and
ClusterRole on the real API server. The operator then reconciles the
example MesosCluster in the served namespace (every child applied, status written) without
a single refused request, and the sync controller becomes ready (it lists ZkMigrations in
the served namespace). Outside the served namespace the ServiceAccount can do nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.kube import KubeTestEnv
from testenv.processes import free_port
from tests.e2e.support import eventually, get_json

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "orchestrator"
RELEASE = "orchestrator"
# Not the kustomize install's names: other tests of the session apply k8s/base's
# ClusterRole "orchestrator" and namespace orchestrator-system.
NAME = "orchestrator-helm"
SYNC = f"{NAME}-sync-controller"  # the sync controller's Deployment and ServiceAccount
RELEASE_NAMESPACE = "helm-orchestrator"
SERVED = "helm-served"
CLUSTER = "demo"
CHILDREN = [
    ("configmap", "demo-zookeeper"),
    ("service", "demo-zookeeper-client"),
    ("poddisruptionbudget", "demo-zookeeper"),
    ("statefulset", "demo-zookeeper"),
    ("service", "demo-master"),
    ("statefulset", "demo-master"),
    ("daemonset", "demo-agent"),
    ("deployment", "demo-marathon"),
]


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what}: {result.stdout}{result.stderr}"
    return result.stdout


def _helm_binary() -> Path:
    built = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-helm.sh")], capture_output=True, text=True
    )
    assert built.returncode == 0, f"scripts/build-helm.sh: {built.stderr[-4000:]}"
    return Path(built.stdout.strip().splitlines()[-1])


def _helm(env: KubeTestEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_helm_binary()), f"--kubeconfig={env.kubeconfig}", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HELM_CACHE_HOME": str(env.kubeconfig.parent / "helm-cache"),
             "HELM_CONFIG_HOME": str(env.kubeconfig.parent / "helm-config"),
             "HELM_DATA_HOME": str(env.kubeconfig.parent / "helm-data")},
    )  # fmt: skip


@pytest.fixture(scope="module")
def release(kube_env: KubeTestEnv) -> Iterator[str]:
    """The chart installed namespace-scoped: release namespace labelled restricted as the
    docs say, the served namespace created by its owner."""
    for namespace in (RELEASE_NAMESPACE, SERVED):
        kube_env.kubectl_run("create", "namespace", namespace)
    _ok(
        kube_env.kubectl_run(
            "label", "--overwrite", "namespace", RELEASE_NAMESPACE,
            "pod-security.kubernetes.io/enforce=restricted",
        ),
        "labelling the release namespace",
    )  # fmt: skip
    # The CRDs are installed already (the session's fixture applied crds/): the release
    # takes them over, as it would adopt CRDs applied by hand before a first helm install.
    installed = _helm(
        kube_env, "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
        "--take-ownership", "--set", f"name={NAME}", "--set", f"watchNamespaces={{{SERVED}}}",
        "--set", "operator.verbose=true",
    )  # fmt: skip
    _ok(installed, "helm install")
    try:
        yield RELEASE
    finally:
        _ok(_helm(kube_env, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE),
            "helm uninstall")  # fmt: skip
        for namespace in (RELEASE_NAMESPACE, SERVED):
            kube_env.kubectl_run("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def service_account_kubeconfig(
    kube_env: KubeTestEnv, release: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    directory = tmp_path_factory.mktemp("helm-sa")
    return kube_env.service_account_kubeconfig(NAME, RELEASE_NAMESPACE, directory / "kubeconfig")


@pytest.fixture(scope="module")
def sync_service_account_kubeconfig(
    kube_env: KubeTestEnv, release: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    directory = tmp_path_factory.mktemp("helm-sync-sa")
    return kube_env.service_account_kubeconfig(SYNC, RELEASE_NAMESPACE, directory / "kubeconfig")


# container name -> the Deployment (and ServiceAccount) that runs it
DEPLOYMENTS = {"operator": NAME, "sync-controller": SYNC}


def _container(kube_env: KubeTestEnv, name: str) -> dict[str, Any]:
    deployment = get_json(kube_env, "deployment", DEPLOYMENTS[name], "-n", RELEASE_NAMESPACE)
    assert deployment, f"the chart's Deployment {DEPLOYMENTS[name]} is not installed"
    spec = deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == DEPLOYMENTS[name]
    return next(c for c in spec["containers"] if c["name"] == name)


def _on_loopback(args: list[str], port: int) -> list[str]:
    """The container's arguments with the health server moved to 127.0.0.1:port."""
    moved = list(args)
    for flag, value in (("--health-host", "127.0.0.1"), ("--health-port", str(port))):
        moved[moved.index(flag) + 1] = value
    return moved


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def programs(
    kube_env: KubeTestEnv,
    service_account_kubeconfig: Path,
    sync_service_account_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[int, Path]]]:
    """The operator and the sync controller, each as the chart's container runs it."""
    logs = tmp_path_factory.mktemp("helm-programs")
    running: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for container in ("operator", "sync-controller"):
            spec = _container(kube_env, container)
            port = free_port()
            env = {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}
            env.pop("TMPDIR", None)  # the container's emptyDir; the host's default here
            if container == "sync-controller":
                state = logs / "sync-state"
                state.mkdir()
                args = [str(state) if a == "/var/lib/zk-sync" else a for a in spec["args"]]
            else:
                args = spec["args"]
            kubeconfig = (
                sync_service_account_kubeconfig
                if container == "sync-controller"
                else service_account_kubeconfig
            )
            log = logs / f"{container}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "orchestrator_operator.cli", *_on_loopback(args, port)],
                    env={**os.environ, **env, "KUBECONFIG": str(kubeconfig)},
                    stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                )  # fmt: skip
            running[container] = (process, port, log)
        for container, (process, port, log) in running.items():
            eventually(
                lambda p=process, n=port: p.poll() is not None or _ready(n),  # type: ignore[misc]
                120, f"the {container} ready on /readyz",
            )  # fmt: skip
            assert process.poll() is None, f"{container} exited:\n{log.read_text()[-4000:]}"
        yield {name: (port, log) for name, (_, port, log) in running.items()}
    finally:
        for process, _, _ in running.values():
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# How a refusal shows: httpx's response line, the kubernetes client's ApiException, Kopf's
# error, the API server's Status message.
REFUSED = re.compile(r"403 Forbidden|\(403\)|APIForbiddenError|is forbidden: User")


def _refused(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if REFUSED.search(line)]


def test_helm_install_renders_the_namespace_scoped_rights(
    kube_env: KubeTestEnv, release: str
) -> None:
    listed = json.loads(
        _ok(_helm(kube_env, "list", "-n", RELEASE_NAMESPACE, "-o", "json"), "helm list")
    )
    assert [(r["name"], r["status"]) for r in listed] == [(RELEASE, "deployed")]
    role = get_json(kube_env, "role", NAME, "-n", SERVED)
    assert role, f"no Role {NAME} in the served namespace {SERVED}"
    operator = _container(kube_env, "operator")
    assert operator["args"][-2:] == ["--namespace", SERVED]
    assert _container(kube_env, "sync-controller")["args"][-2:] == ["--namespace", SERVED]
    subject = f"system:serviceaccount:{RELEASE_NAMESPACE}:{NAME}"

    def can(*args: str) -> str:
        return kube_env.kubectl_run("auth", "can-i", *args, "--as", subject).stdout.strip()

    assert can("patch", "mesosclusters.orchestrator.dev/status", "-n", SERVED) == "yes"
    assert can("create", "statefulsets.apps", "-n", SERVED) == "yes"
    # Namespace-scoped: nothing in other namespaces, no cluster-wide workloads or RBAC.
    assert can("list", "mesosclusters.orchestrator.dev", "-n", "default") == "no"
    assert can("create", "statefulsets.apps", "-n", "default") == "no"
    assert can("list", "pods", "--all-namespaces") == "no"
    assert can("create", "clusterroles.rbac.authorization.k8s.io") == "no"
    assert can("list", "secrets", "-n", SERVED) == "no"


def test_the_operator_run_as_the_chart_says_reconciles_a_mesoscluster(
    kube_env: KubeTestEnv, programs: dict[str, tuple[int, Path]]
) -> None:
    manifest = yaml.safe_load((REPO / "examples" / "mesoscluster.yaml").read_text())
    manifest["metadata"]["namespace"] = SERVED
    _ok(kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest)), "apply")
    _, log = programs["operator"]
    try:
        for kind, name in CHILDREN:
            eventually(
                lambda k=kind, n=name: get_json(kube_env, k, n, "-n", SERVED),  # type: ignore[misc]
                90, f"{kind}/{name} in {SERVED}",
            )  # fmt: skip

        def accepted() -> dict[str, Any] | None:
            obj = get_json(kube_env, "mesoscluster", CLUSTER, "-n", SERVED) or {}
            status = obj.get("status", {})
            if status.get("observedGeneration") != obj["metadata"]["generation"]:
                return None
            return next((c for c in status.get("conditions", []) if c["type"] == "Accepted"), None)

        condition = eventually(accepted, 90, "the cluster's Accepted condition")
        assert condition["status"] == "True", condition
        # This operator (not another one of the test session) handled the cluster: its own
        # log names it, and no request of it was refused by the API server.
        text = log.read_text(errors="replace")
        about = [line for line in text.splitlines() if SERVED in line and CLUSTER in line]
        assert about, text[-4000:]
        assert _refused(log) == [], _refused(log)
        _, sync_log = programs["sync-controller"]
        assert _refused(sync_log) == [], _refused(sync_log)
    finally:
        # Deleted while this operator still runs, so that its finalizer goes.
        kube_env.kubectl_run(
            "delete", "mesoscluster", CLUSTER, "-n", SERVED, "--wait=true", "--timeout=60s"
        )
