"""The allow-list (issue 17 points 1, 4, 10) against the real API server and the real
operator: a namespace user (alice, who may create the custom resources in her namespace
through a RoleBinding, as the API server authorizes her) tries what docs/security.md's
threat model names, and each attempt is refused with Accepted=False, reason NotAllowed, a
message naming the rule, and nothing made: no child object, no ZooKeeper connection.

The operator runs with the allow-list of k8s/overlays/restricted over k8s/base (read from them,
as the Deployment would set it), on its own control plane: the session's shared operator
allows everything and would make the children this test must not see.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.operator.allowlist import ENVIRONMENT
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.deploy_settings import operator_environment

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
SERVED = "mesos"  # the namespace k8s/overlays/restricted serves
OTHER = "team-b"
USER = "alice"
CHILD_KINDS = "statefulsets,daemonsets,deployments,services,configmaps,networkpolicies"


def _flags(environ: dict[str, str]) -> list[str]:
    """The same settings as flags (the operator reads either; the flags are what we pass)."""
    names = {env: "--" + dest.replace("_", "-") for dest, env in ENVIRONMENT.items()}
    assert set(environ) <= set(names), environ
    return [item for key, value in environ.items() for item in (names[key], value)]


class Listener:
    """A TCP port that counts the connections made to it: the stand-in for a ZooKeeper
    ensemble the allow-list does not name (a connection is what must not happen)."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


def _eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestEnv]:
    base = tmp_path_factory.mktemp("allowlist")
    env = KubeTestEnv(nodes=1, base_dir=base / "testenv")
    with env:
        env.install_crds(REPO / "crds")
        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            for name in (SERVED, OTHER)
        ]
        objects.append({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "orchestrator-resources-edit"},
            "rules": [{
                "apiGroups": ["orchestrator.dev"],
                "resources": ["mesosclusters", "probefleets", "zkmigrations", "marathonapps"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }],
        })  # fmt: skip
        for namespace in (SERVED, OTHER):
            objects.append({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "alice-edit", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "orchestrator-resources-edit"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": USER}],
            })  # fmt: skip
        result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(objects))
        assert result.returncode == 0, result.stderr
        operator = OperatorProcess(
            env, base / "operator.log", *_flags(operator_environment("restricted"))
        )
        try:
            operator.wait_ready()
            yield env
        finally:
            operator.stop()


def _as_alice(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    """Created by the namespace user, through the API server's authorization."""
    result = env.kubectl_run(f"--as={USER}", "create", "-f", "-", input=json.dumps(manifest))
    assert result.returncode == 0, result.stderr


def _accepted(env: KubeTestEnv, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    result = env.kubectl_run("get", plural, name, "-n", namespace, "-o", "json")
    if result.returncode != 0:
        return None
    status = json.loads(result.stdout).get("status") or {}
    for condition in status.get("conditions") or []:
        if condition["type"] == "Accepted":
            return {"phase": status.get("phase"), **condition}
    return None


def _refused(env: KubeTestEnv, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Accepted=False, NotAllowed, and phase Invalid (a status tick that raced the refusal
    may write another phase once; the next puts Invalid back)."""

    def check() -> dict[str, Any] | None:
        condition = _accepted(env, plural, namespace, name)
        if condition and (condition["status"], condition["reason"], condition["phase"]) == (
            "False", "NotAllowed", "Invalid",
        ):  # fmt: skip
            return condition
        return None

    condition: dict[str, Any] = _eventually(check, 60, f"{plural}/{name} refused")
    return condition


def _children(env: KubeTestEnv, namespace: str) -> list[str]:
    result = env.kubectl_run("get", CHILD_KINDS, "-n", namespace, "-o", "name")
    assert result.returncode == 0, result.stderr
    # every namespace has the API server's kube-root-ca.crt ConfigMap
    return [line for line in result.stdout.split() if line != "configmap/kube-root-ca.crt"]


def _cluster(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1", "kind": "MesosCluster",
        "metadata": {"name": name, "namespace": SERVED}, "spec": spec,
    }  # fmt: skip


def test_a_namespace_users_foreign_image_and_host_path_are_refused(
    restricted: KubeTestEnv,
) -> None:
    _as_alice(restricted, _cluster("foreign", agents={"image": "evil.io/agent", "version": "1"}))
    _as_alice(restricted, _cluster("hostpath", agents={"workDir": "/etc"}))
    _as_alice(
        restricted,
        _cluster("tolerant", agents={"tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}),
    )  # fmt: skip
    message = _refused(restricted, "mesosclusters", SERVED, "foreign")["message"]
    assert "allow-list rule imageRegistries" in message and "evil.io/agent:1" in message
    message = _refused(restricted, "mesosclusters", SERVED, "hostpath")["message"]
    assert "allow-list rule hostPathPrefixes" in message and "'/etc'" in message
    message = _refused(restricted, "mesosclusters", SERVED, "tolerant")["message"]
    assert "allow-list rule controlPlaneNodes" in message
    # In the namespace it does not serve, a ProbeFleet (the probe: host PID, the Docker
    # socket) is refused whatever its images.
    _as_alice(restricted, {
        "apiVersion": "orchestrator.dev/v1alpha1", "kind": "ProbeFleet",
        "metadata": {"name": "fleet", "namespace": OTHER}, "spec": {},
    })  # fmt: skip
    message = _refused(restricted, "probefleets", OTHER, "fleet")["message"]
    assert "allow-list rule namespaces" in message and OTHER in message
    # A MarathonApp whose translated Deployment would run a foreign image.
    _as_alice(restricted, {
        "apiVersion": "orchestrator.dev/v1alpha1", "kind": "MarathonApp",
        "metadata": {"name": "web", "namespace": SERVED},
        "spec": {"cluster": "allowed", "app": {"id": "/web", "cmd": "serve", "instances": 1},
                 "kubernetes": {"image": "evil.io/web:1"}},
    })  # fmt: skip
    message = _refused(restricted, "marathonapps", SERVED, "web")["message"]
    assert "allow-list rule imageRegistries" in message and "evil.io/web:1" in message
    # What the allow-list allows is made: the defaults run under the restricted example
    # (so the refusals above are the rules', not a broken operator's).
    _as_alice(restricted, _cluster("allowed"))
    condition = _eventually(
        lambda: _accepted(restricted, "mesosclusters", SERVED, "allowed"), 60, "accepted"
    )
    assert condition["status"] == "True", condition
    _eventually(
        lambda: restricted.kubectl_run("get", "statefulset", "allowed-zookeeper", "-n", SERVED)
        .returncode == 0,
        60, "the allowed cluster's ZooKeeper StatefulSet",
    )  # fmt: skip
    # Nothing of the refused ones, in either namespace (every child is named after its
    # owner; the ProbeFleet's would be fleet-*).
    made = _children(restricted, SERVED)
    assert [c for c in made if "/foreign" in c or "/hostpath" in c or "/tolerant" in c
            or "/web" in c] == [], made  # fmt: skip
    assert _children(restricted, OTHER) == []
    result = restricted.kubectl_run("get", "clusterroles", "-o", "name")
    assert "fleet" not in result.stdout


def test_a_zkmigration_to_an_ensemble_not_allowed_is_refused_without_connecting(
    restricted: KubeTestEnv,
) -> None:
    source, target = Listener(), Listener()
    try:
        for name, spec in (
            ("to-b", {"target": {"external": {"connectString": f"127.0.0.1:{target.port}"}}}),
            ("from-a", {
                "source": {"connectString": f"127.0.0.1:{source.port}"},
                "target": {"external": {"connectString": "b-0.zookeeper.svc.cluster.local:2181"}},
            }),
        ):  # fmt: skip
            _as_alice(restricted, {
                "apiVersion": "orchestrator.dev/v1alpha1", "kind": "ZkMigration",
                "metadata": {"name": name, "namespace": SERVED},
                "spec": {"clusterRef": "allowed", **spec},
            })  # fmt: skip
        message = _refused(restricted, "zkmigrations", SERVED, "to-b")["message"]
        assert message.startswith("spec.target.external: allow-list rule zookeeperEndpoints")
        assert f"127.0.0.1:{target.port}" in message
        message = _refused(restricted, "zkmigrations", SERVED, "from-a")["message"]
        assert message.startswith("spec.source: allow-list rule zookeeperEndpoints")
        # The drive timer ticks every 2 s: several ticks, and still no session was tried,
        # no sync asked for, no ensemble made.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            time.sleep(0.5)
        assert (source.connections, target.connections) == (0, 0)
        for name in ("to-b", "from-a"):
            result = restricted.kubectl_run("get", "zkmigration", name, "-n", SERVED, "-o", "json")
            status = json.loads(result.stdout).get("status") or {}
            assert "syncRequest" not in status, status
        assert [c for c in _children(restricted, SERVED) if "to-b" in c or "from-a" in c] == []
    finally:
        source.close()
        target.close()


def test_a_cluster_on_the_ensemble_a_migration_handed_it_stays_accepted(
    restricted: KubeTestEnv,
) -> None:
    """Phase 6 names a managed B (`<migration>-zookeeper-client.<ns>.svc:2181`, made by the
    operator, re-owned by the cluster) as the cluster's external ensemble; the restricted
    allow-list does not list it, and the cluster must not turn Invalid for it. Another
    cluster naming the same Service (not its own) is refused, as is one naming a Service
    that nobody's migration made."""
    _as_alice(restricted, _cluster("handed"))
    _eventually(lambda: _accepted(restricted, "mesosclusters", SERVED, "handed"), 60, "accepted")
    found = restricted.kubectl_run("get", "mesosclusters", "handed", "-n", SERVED, "-o", "json")
    uid = json.loads(found.stdout)["metadata"]["uid"]
    services: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": SERVED, "ownerReferences": refs},
         "spec": {"ports": [{"name": "client", "port": 2181}]}}
        for name, refs in (
            ("moved-zookeeper-client",
             [{"apiVersion": "orchestrator.dev/v1alpha1", "kind": "MesosCluster",
               "name": "handed", "uid": uid, "controller": True}]),
            ("mine-zookeeper-client", []),
        )
    ]  # fmt: skip
    result = restricted.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(services))
    assert result.returncode == 0, result.stderr
    moved = f"moved-zookeeper-client.{SERVED}.svc:2181"
    # what phase 6's merge patch writes (machine.handover_patch)
    patch = {"spec": {"zookeeper": {"replicas": None, "external": {"connectString": moved}}}}
    result = restricted.kubectl_run(
        "patch", "mesoscluster", "handed", "-n", SERVED, "--type=merge", "-p", json.dumps(patch)
    )
    assert result.returncode == 0, result.stderr

    def settled() -> dict[str, Any] | None:
        condition = _accepted(restricted, "mesosclusters", SERVED, "handed")
        return condition if condition and condition.get("observedGeneration") == 2 else None

    condition = _eventually(settled, 60, "the handed-over cluster's new spec answered")
    assert (condition["status"], condition["reason"]) == ("True", "SpecValid"), condition
    _as_alice(restricted, _cluster("squatter", zookeeper={"external": {"connectString": moved}}))
    mine = f"mine-zookeeper-client.{SERVED}.svc:2181"
    _as_alice(restricted, _cluster("own-service", zookeeper={"external": {"connectString": mine}}))
    for name, server in (("squatter", moved), ("own-service", mine)):
        message = _refused(restricted, "mesosclusters", SERVED, name)["message"]
        assert "allow-list rule zookeeperEndpoints" in message and server in message, message


def test_the_restricted_overlay_is_accepted_by_the_api_server(restricted: KubeTestEnv) -> None:
    """k8s/overlays/restricted as rendered (its NetworkPolicy's egress to ZooKeeper only in
    the allowed ensembles' namespaces, the operator's allow-list environment): a server-side
    dry run accepts every object."""
    rendered = restricted.kubectl_run("kustomize", str(REPO / "k8s/overlays/restricted"))
    assert rendered.returncode == 0, rendered.stderr
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    policy = next(d for d in documents if d["kind"] == "NetworkPolicy")
    zookeeper = [rule for rule in policy["spec"]["egress"] if {"port": 2181, "protocol": "TCP"}
                 in rule["ports"]]  # fmt: skip
    assert len(zookeeper) == 1 and zookeeper[0]["to"], zookeeper
    namespace = next(d for d in documents if d["kind"] == "Namespace")
    created = restricted.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(namespace))
    assert created.returncode == 0, created.stderr
    result = restricted.kubectl_run(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(documents)
    )
    assert result.returncode == 0, result.stderr
