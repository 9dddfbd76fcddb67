"""The operator runs under its own ServiceAccount with exactly the ClusterRole of k8s/base:
a token for that account (TokenRequest), a kubeconfig with it, `orchestrator run` against
testenv. It becomes ready (CRD check, watches, node index), reconciles a MesosCluster into
its children by server-side apply, and the API server refuses it nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testenv.kube import KubeTestEnv
from testenv.processes import free_port

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "rbac-check"


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def service_account_kubeconfig(
    kube_env: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    rendered = _ok(kube_env.kubectl_run("kustomize", str(REPO / "k8s/base")), "kustomize")
    wanted = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    objects = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in wanted]
    # The test runs the operator with --namespace (so that it never competes with another
    # operator of the session); in that mode Kopf also lists and watches namespaces, and
    # retries for about a minute before it falls back without them. The Deployment runs
    # cluster-wide and needs no such rule; docs/delivery.md says what --namespace needs.
    objects += [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "orchestrator-namespaced-mode"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "orchestrator-namespaced-mode"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "orchestrator-namespaced-mode",
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": "orchestrator",
                    "namespace": "orchestrator-system",
                }
            ],
        },
    ]
    _ok(
        kube_env.kubectl_run(
            "apply", "--server-side", "--force-conflicts", "-f", "-",
            input=yaml.safe_dump_all(objects),
        ),
        "applying the namespace and RBAC",
    )  # fmt: skip
    token = _ok(
        kube_env.kubectl_run(
            "create", "token", "orchestrator", "-n", "orchestrator-system", "--duration=1h"
        ),
        "TokenRequest for the operator's ServiceAccount",
    ).strip()
    admin = yaml.safe_load(kube_env.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "orchestrator", "user": {"token": token}}],
        "contexts": [
            {
                "name": "orchestrator",
                "context": {"cluster": cluster["name"], "user": "orchestrator"},
            }
        ],
        "current-context": "orchestrator",
    }
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def operator_as_service_account(
    kube_env: KubeTestEnv,
    service_account_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    kube_env.kubectl_run("create", "namespace", NAMESPACE)
    port = free_port()
    log = tmp_path_factory.mktemp("sa-operator") / "operator.log"
    with log.open("wb") as out:
        # One namespace only, so that it never competes with another operator of the session.
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator_operator.cli", "run", "--namespace", NAMESPACE,
             "--health-host", "127.0.0.1", "--health-port", str(port)],
            env={**os.environ, "KUBECONFIG": str(service_account_kubeconfig)},
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        try:
            yield process, log, port
        finally:
            # Leave nothing for other operators of the session to reconcile.
            kube_env.kubectl_run("delete", "namespace", NAMESPACE, "--wait=false")
            kube_env.kubectl_run(
                "delete", "mesosclusters", "--all", "-n", NAMESPACE, "--wait=true", "--timeout=15s"
            )
            for name in kube_env.kubectl_run(
                "get", "mesosclusters", "-n", NAMESPACE, "-o", "name"
            ).stdout.split():
                kube_env.kubectl_run(
                    "patch", name, "-n", NAMESPACE, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}',
                )  # fmt: skip
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _refusals(log: Path) -> list[str]:
    """Requests the API server refused, as the operator's log reports them."""
    return [line for line in log.read_text().splitlines() if "403" in line or "orbidden" in line]


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_the_token_has_no_more_than_the_cluster_role(service_account_kubeconfig: Path,
                                                     kube_env: KubeTestEnv) -> None:  # fmt: skip
    def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kube_env.kubectl), f"--kubeconfig={service_account_kubeconfig}", *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    assert as_operator("get", "mesosclusters", "-A").returncode == 0
    denied = as_operator("get", "secrets", "-A")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


@pytest.mark.xfail(
    strict=True,
    reason="orchestrator_operator/kube_api.py reads the token under 'authorization', but the"
    " kubernetes client keeps it under 'BearerToken': with a ServiceAccount token (in-cluster"
    " or kubeconfig) the handlers' requests go out anonymous and get 403. Remove this marker"
    " with the fix.",
)
def test_operator_reconciles_under_its_service_account_without_a_refusal(
    kube_env: KubeTestEnv,
    operator_as_service_account: tuple[subprocess.Popen[bytes], Path, int],
) -> None:
    process, log, port = operator_as_service_account
    deadline = time.monotonic() + 60
    while not _ready(port):
        assert process.poll() is None, f"operator exited:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"not ready:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)

    cluster = yaml.safe_load((REPO / "examples/mesoscluster.yaml").read_text())
    cluster["metadata"]["namespace"] = NAMESPACE
    _ok(kube_env.kubectl_run("apply", "-f", "-", input=json.dumps(cluster)), "MesosCluster")

    def children() -> set[str]:
        result = kube_env.kubectl_run(
            "get", "statefulsets,daemonsets,deployments,services,configmaps,poddisruptionbudgets",
            "-n", NAMESPACE, "-l", "app.kubernetes.io/managed-by", "-o", "name",
        )  # fmt: skip
        return set(result.stdout.split())

    deadline = time.monotonic() + 90
    while True:
        found = children()
        kinds = {name.split("/")[0] for name in found}
        if {"statefulset.apps", "daemonset.apps", "poddisruptionbudget.policy",
                "service", "configmap"} <= kinds:  # fmt: skip
            break
        assert process.poll() is None, f"operator exited:\n{log.read_text()[-4000:]}"
        refused = _refusals(log)
        assert refused == [], "\n".join(refused[:20])
        assert time.monotonic() < deadline, f"children {found}; log:\n{log.read_text()[-4000:]}"
        time.sleep(1)
    time.sleep(5)  # a status timer tick and the events Kopf posts
    refused = _refusals(log)
    assert refused == [], "\n".join(refused[:20])
