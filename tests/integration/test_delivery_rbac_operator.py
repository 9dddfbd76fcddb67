"""The operator's ServiceAccount with exactly the ClusterRole of k8s/base, through a real
token (TokenRequest) in a kubeconfig, against testenv:

- `orchestrator run` under it becomes ready (CRD check, watches, the node and workload
  indexes, events) and the API server refuses it nothing;
- it may get Secrets by name (ZooKeeper credentials) but never list or watch them;
- the handlers' own API client (kube_api.KubeApi) under it applies every child the builders
  make for the example MesosCluster, deletes the managed ZooKeeper's children (as after a
  move to an external ensemble), and reads and deletes a pod by name.

The second part calls KubeApi directly rather than through a MesosCluster, so that no other
operator of the test session (the e2e fixture runs one cluster-wide) can do the work first.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.kube import KubeTestEnv
from testenv.processes import free_port

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
GROUP = "/apis/orchestrator.dev/v1alpha1"
NAMESPACE = "rbac-check"


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def service_account_kubeconfig(
    kube_env: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
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
    directory = tmp_path_factory.mktemp("sa")
    yield kube_env.service_account_kubeconfig(
        "orchestrator", "orchestrator-system", directory / "kubeconfig"
    )
    # Only this module runs the operator with --namespace: the rule must not widen the
    # account for later modules of the session (tests/integration/test_rbac_pins.py).
    kube_env.kubectl_run(
        "delete", "clusterrolebinding,clusterrole", "orchestrator-namespaced-mode",
        "--ignore-not-found",
    )  # fmt: skip


@pytest.fixture(scope="module")
def sync_service_account_kubeconfig(
    kube_env: KubeTestEnv,
    service_account_kubeconfig: Path,  # applied k8s/base's accounts and rights
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    directory = tmp_path_factory.mktemp("sync-sa")
    return kube_env.service_account_kubeconfig(
        "orchestrator-sync-controller", "orchestrator-system", directory / "kubeconfig"
    )


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
    # Secrets: created (the probes' token), and got by name (ZooKeeper credentials, only from
    # a labelled Secret: common/zk_credentials.py), never listed or watched
    denied = as_operator("get", "secrets", "-A")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()

    def can_i(verb: str, resource: str) -> str:
        result = as_operator("auth", "can-i", verb, resource, "-n", "anywhere")
        return result.stdout.strip()

    assert can_i("get", "secrets") == "yes"
    assert can_i("create", "secrets") == "yes"
    for verb in ("list", "watch", "update", "patch", "delete"):
        assert can_i(verb, "secrets") == "no", verb


def _wait_ready(process: subprocess.Popen[bytes], log: Path, port: int) -> None:
    deadline = time.monotonic() + 60
    while not _ready(port):
        assert process.poll() is None, f"operator exited:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"not ready:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)


def test_operator_starts_and_watches_under_its_service_account(
    operator_as_service_account: tuple[subprocess.Popen[bytes], Path, int],
) -> None:
    process, log, port = operator_as_service_account
    _wait_ready(process, log, port)
    time.sleep(3)  # the watches and indexes settle; a refusal would be logged by now
    assert process.poll() is None, log.read_text()[-4000:]
    refused = _refusals(log)
    assert refused == [], "\n".join(refused[:20])


KUBE_API_SCRIPT = """
import json, sys, yaml
from orchestrator_operator.operator.builders.cluster import build_children
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.probefleet import (
    build_children as fleet_children, cluster_role_name, fleet_owner)
from orchestrator_operator.models.probefleet import ProbeFleetSpec

namespace, example = sys.argv[1], sys.argv[2]
spec = MesosClusterSpec.model_validate(yaml.safe_load(open(example))["spec"])
owner = Owner(name="demo", namespace=namespace, uid="00000000-0000-0000-0000-000000000001")
api = KubeApi()
done, refused = [], []
def unowned(children):
    # the made-up owner uids own nothing real: the garbage collector would delete these
    # children (a Role before its RoleBinding is applied) while the script runs
    for child in children:
        child["metadata"].pop("ownerReferences", None)
    return children
def attempt(what, call):
    try:
        call()
        done.append(what)
    except ApiError as error:
        refused.append(f"{what}: {error}"[:300])
for child in unowned(build_children(owner, spec)):
    attempt(f"apply {child['kind']}", lambda c=child: api.apply(c))
for child in zookeeper.build(owner, spec):
    attempt(f"delete {child['kind']}", lambda c=child: api.delete(
        c["apiVersion"], c["kind"], namespace, c["metadata"]["name"]))
fleet = fleet_owner("scope", namespace, "00000000-0000-0000-0000-000000000002")
# The one Secret the operator makes: a managed ensemble's super digest, created once.
attempt("create Secret", lambda: api.create(zookeeper.super_secret(owner, "p")))
attempt("create Secret again", lambda: api.create(zookeeper.super_secret(owner, "p")))
for child in unowned(fleet_children(fleet, ProbeFleetSpec())):
    attempt(f"apply {child['kind']}", lambda c=child: api.apply(c))
for kind in ("ClusterRoleBinding", "ClusterRole"):
    attempt(f"delete {kind}", lambda k=kind: api.delete(
        "rbac.authorization.k8s.io/v1", k, None, cluster_role_name(fleet)))
# The load balancer's children: its Role passes RBAC's escalation guard (the operator holds
# what it grants), and turning it off deletes them.
from orchestrator_operator.operator.builders import loadbalancer
lb_children = unowned(loadbalancer.build(owner, loadbalancer.enabled(spec)))
for child in lb_children:
    attempt(f"apply {child['kind']}", lambda c=child: api.apply(c))
for child in lb_children:
    attempt(f"delete {child['kind']}", lambda c=child: api.delete(
        c["apiVersion"], c["kind"], namespace, c["metadata"]["name"]))
# The NetworkPolicies (issue 17 point 12): the cluster's Egress policies, with a managed and
# with an external ensemble, a ProbeFleet app's with every kind of allowFrom peer; the API
# server must keep each as built; switching them off deletes them.
from orchestrator_operator.operator.builders import networkpolicy
from orchestrator_operator.operator.builders.probefleet import app_network_policy
settings = spec.network_policies.model_copy(
    update={"egress": True, "zookeeper_cidrs": ["192.0.2.0/28"], "node_cidrs": ["10.0.0.0/16"]})
egress = spec.model_copy(update={"network_policies": settings})
from orchestrator_operator.models.base import ZooKeeperEndpoint
external = egress.model_copy(update={"zookeeper": egress.zookeeper.model_copy(update={
    "external": ZooKeeperEndpoint(connect_string="zk-1.example:2181,zk-2.example:2182"),
    "replicas": None})})
wide = ProbeFleetSpec.model_validate({"app": {"networkPolicy": {"nodeCidrs": ["10.0.0.0/16"],
    "allowFrom": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}},
        {"namespaceSelector": {"matchLabels": {"team": "ops"}}, "podSelector": {
            "matchExpressions": [{"key": "role", "operator": "In", "values": ["ui"]}]}},
        {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.8/29"]}}]}}})
policies = []
for built in (networkpolicy.build_egress(owner, egress),
              networkpolicy.build_egress(owner, external), app_network_policy(fleet, wide)):
    for policy in built:
        unowned([policy])
        attempt(f"apply NetworkPolicy {policy['metadata']['name']}", lambda c=policy: api.apply(c))
        stored = api.get("networking.k8s.io/v1", "NetworkPolicy", namespace,
                         policy["metadata"]["name"])
        if stored is None or stored["spec"] != policy["spec"]:
            refused.append(f"{policy['metadata']['name']} stored as {stored and stored['spec']}")
        policies.append(policy)
for policy in policies:
    attempt(f"delete NetworkPolicy {policy['metadata']['name']}", lambda c=policy: api.delete(
        "networking.k8s.io/v1", "NetworkPolicy", namespace, c["metadata"]["name"]))
attempt("get Pod", lambda: api.get("v1", "Pod", namespace, "demo-zookeeper-0"))
attempt("delete Pod", lambda: api.delete("v1", "Pod", namespace, "demo-zookeeper-0"))
print(json.dumps({"done": done, "refused": refused}))
"""


def test_handlers_api_client_writes_children_under_its_service_account(
    kube_env: KubeTestEnv, service_account_kubeconfig: Path
) -> None:
    namespace = "rbac-apply"
    kube_env.kubectl_run("create", "namespace", namespace)
    try:
        result = subprocess.run(
            [sys.executable, "-c", KUBE_API_SCRIPT, namespace,
             str(REPO / "examples/mesoscluster.yaml")],
            env={**os.environ, "KUBECONFIG": str(service_account_kubeconfig)},
            capture_output=True, text=True, check=False, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["refused"] == []
        kinds = {what.split()[1] for what in report["done"] if what.startswith("apply")}
        assert {
            "ConfigMap",
            "Service",
            "StatefulSet",
            "DaemonSet",
            "PodDisruptionBudget",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
        } <= kinds
        assert {"delete Role", "delete RoleBinding", "delete ServiceAccount"} <= set(report["done"])
        # every NetworkPolicy the operator makes: the MesosCluster's Ingress ones, its Egress
        # ones (managed and external ensemble) and the monitoring app's, applied and deleted
        policies = {what.split()[2] for what in report["done"]
                    if what.startswith("apply NetworkPolicy ")}  # fmt: skip
        assert policies == {
            "demo-zookeeper-egress", "demo-master-egress", "demo-marathon-egress", "scope-app",
        }  # fmt: skip
        assert {f"delete NetworkPolicy {name}" for name in policies} <= set(report["done"])
        assert "NetworkPolicy" in kinds
    finally:
        kube_env.kubectl_run("delete", "namespace", namespace, "--wait=false")


def _migration_with_status(env: KubeTestEnv, name: str, status: dict[str, Any]) -> None:
    """A ZkMigration whose status says what the operator would have written."""
    env.api(
        "POST",
        f"{GROUP}/namespaces/{NAMESPACE}/zkmigrations",
        {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "ZkMigration",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"clusterRef": "demo", "target": {"external": {"connectString": "b:2181"}}},
        },
    )
    patched = env.kubectl_run(
        "patch", "zkmigration", name, "-n", NAMESPACE, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr


@contextlib.contextmanager
def _sync_controller(
    kubeconfig: Path, tmp_path: Path, *args: str, **environ: str
) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """`zk-sync controller` for NAMESPACE under `kubeconfig`'s account: (process, log, port)."""
    port = free_port()
    log = tmp_path / "sync-controller.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator_operator.cli", "zk-sync", "controller",
             "--namespace", NAMESPACE, *args,
             "--health-host", "127.0.0.1", "--health-port", str(port)],
            env={**os.environ, "KUBECONFIG": str(kubeconfig), **environ},
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
    try:
        yield process, log, port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _sync_until(
    env: KubeTestEnv,
    name: str,
    process: subprocess.Popen[bytes],
    log: Path,
    done: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """status.sync of ZkMigration `name` once `done` says so (or after 60 s, as it is)."""
    deadline = time.monotonic() + 60
    sync: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-4000:]
        obj = env.api("GET", f"{GROUP}/namespaces/{NAMESPACE}/zkmigrations/{name}")
        sync = obj["status"].get("sync") or {}
        if done(sync):
            break
        time.sleep(0.5)
    return sync


def test_sync_controller_lists_and_reports_under_its_service_account(
    kube_env: KubeTestEnv,
    sync_service_account_kubeconfig: Path,
    operator_as_service_account: tuple[subprocess.Popen[bytes], Path, int],
    tmp_path: Path,
) -> None:
    """The sync controller's Deployment (`zk-sync controller`) under its own ServiceAccount
    (k8s/base/sync-controller.yaml): it lists ZkMigrations and merge-patches status.sync,
    and is refused nothing. A stale Running report with an inactive request is corrected to
    Stopped."""
    status = {"syncRequest": {"active": False, "source": "a:2181", "target": "b:2181",
                              "paths": ["/mesos"]}, "sync": {"state": "Running"}}  # fmt: skip
    _migration_with_status(kube_env, "rbac-sync", status)
    state = tmp_path / "state"
    with _sync_controller(sync_service_account_kubeconfig, tmp_path, "--state-dir", str(state)) as (
        process,
        log,
        port,
    ):
        sync = _sync_until(
            kube_env, "rbac-sync", process, log,
            lambda sync: sync.get("state") == "Stopped" and _ready(port),
        )  # fmt: skip
        assert sync.get("state") == "Stopped", log.read_text()[-4000:]
        assert _refusals(log) == [], log.read_text()[-4000:]


def test_sync_controller_refuses_a_sync_request_outside_its_allow_list(
    kube_env: KubeTestEnv,
    sync_service_account_kubeconfig: Path,
    operator_as_service_account: tuple[subprocess.Popen[bytes], Path, int],
    tmp_path: Path,
) -> None:
    """The controller checks a syncRequest's ensembles against the allow-list's
    zookeeperEndpoints itself (issue 17 point 4): a request written to status by anyone who
    may patch it, naming an ensemble outside the rule, opens no session and fails status.sync
    with the rule's words."""
    status = {"syncRequest": {"active": True, "source": "zk.allowed.example:2181",
                              "target": "elsewhere.example:2181", "paths": ["/mesos"]}}  # fmt: skip
    _migration_with_status(kube_env, "rbac-refused", status)
    with _sync_controller(
        sync_service_account_kubeconfig, tmp_path,
        ORCHESTRATOR_ALLOW_ZOOKEEPER_ENDPOINTS="zk.allowed.example:2181",
    ) as (process, log, _):  # fmt: skip
        sync = _sync_until(
            kube_env, "rbac-refused", process, log, lambda sync: sync.get("state") == "Failed"
        )
        assert sync.get("state") == "Failed", log.read_text()[-4000:]
        assert sync["message"].startswith(
            "target: allow-list rule zookeeperEndpoints: ZooKeeper server"
            " elsewhere.example:2181 (of 'elsewhere.example:2181') is not an allowed ensemble"
        ), sync
        text = log.read_text()
        assert "starting sync" not in text.lower() and "kazoo" not in text.lower(), text[-4000:]
