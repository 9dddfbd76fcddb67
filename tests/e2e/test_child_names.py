"""A child's name that another already holds: the operator refuses instead of taking the
object over (server-side apply with force would rewrite it, and its owner reference would
let garbage collection delete it with the wrong resource). Real API server and operator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import apply, eventually, get_json, temporary_namespace

pytestmark = pytest.mark.kube
# past one retry of a handler that failed on something transient (Kopf waits 60 s)
REFUSAL_SECONDS = 90


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    yield from temporary_namespace(kube_env, "names", "zkmigrations,mesosclusters,probefleets")


def _cluster(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "zookeeper": {"replicas": 1},
            "masters": {"replicas": 1},
            "marathon": {"replicas": 0},
            **spec,
        },
    }


def _refusal(env: KubeTestEnv, kind: str, namespace: str, name: str) -> str:
    """The Accepted=False condition's message, or '' while there is none."""
    found = get_json(env, kind, name, "-n", namespace) or {}
    conditions = (found.get("status") or {}).get("conditions") or []
    accepted: dict[str, Any] = next((c for c in conditions if c["type"] == "Accepted"), {})
    return str(accepted.get("message", "")) if accepted.get("status") == "False" else ""


def _owners(obj: dict[str, Any] | None) -> list[tuple[str, str]]:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return [(ref["kind"], ref["name"]) for ref in refs]


def test_a_zkmigration_named_after_its_cluster_leaves_the_clusters_ensemble_alone(
    kube_env: KubeTestEnv, operator: OperatorProcess, namespace: str
) -> None:
    # Ensemble B is named after the migration: migration "demo" names B's StatefulSet,
    # ConfigMap and Services exactly as cluster "demo"'s own ZooKeeper.
    apply(kube_env, _cluster(namespace, "demo"))
    ensemble = eventually(
        lambda: get_json(kube_env, "statefulset", "demo-zookeeper", "-n", namespace),
        60,
        "the cluster's ZooKeeper StatefulSet",
    )
    config_before = get_json(kube_env, "configmap", "demo-zookeeper", "-n", namespace)
    assert config_before is not None
    apply(
        kube_env,
        {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "ZkMigration",
            "metadata": {"name": "demo", "namespace": namespace},
            "spec": {
                "clusterRef": "demo",
                "target": {"managed": {"replicas": 3}},
                "paths": ["/mesos"],
            },
        },
    )

    def held() -> str:
        status = (get_json(kube_env, "zkmigration", "demo", "-n", namespace) or {}).get(
            "status"
        ) or {}
        return next((c for c in status.get("checks") or [] if "ensemble B:" in c), "")

    check = eventually(held, REFUSAL_SECONDS, "the migration held on ensemble B's names")
    assert "ConfigMap demo-zookeeper exists and is MesosCluster demo's" in check
    assert "rename this ZkMigration" in check
    # a few more ticks: still nothing of A's rewritten
    time.sleep(3)
    after = get_json(kube_env, "statefulset", "demo-zookeeper", "-n", namespace)
    assert after is not None
    assert _owners(after) == [("MesosCluster", "demo")]
    assert after["spec"]["replicas"] == 1
    assert after["metadata"]["generation"] == ensemble["metadata"]["generation"]
    config_after = get_json(kube_env, "configmap", "demo-zookeeper", "-n", namespace)
    assert config_after is not None
    assert config_after["data"] == config_before["data"]
    assert _owners(config_after) == [("MesosCluster", "demo")]


def test_a_cluster_whose_load_balancer_is_another_clusters_marathon_lb_is_refused(
    kube_env: KubeTestEnv, operator: OperatorProcess, namespace: str
) -> None:
    # cluster "x"'s marathon-lb and cluster "x-marathon"'s load balancer: both x-marathon-lb
    apply(kube_env, _cluster(namespace, "x", addons={"marathonLb": {"enabled": True}}))
    first = eventually(
        lambda: get_json(kube_env, "deployment", "x-marathon-lb", "-n", namespace),
        60,
        "cluster x's marathon-lb Deployment",
    )
    apply(kube_env, _cluster(namespace, "x-marathon", loadBalancer={"enabled": True}))
    message = eventually(
        lambda: _refusal(kube_env, "mesoscluster", namespace, "x-marathon"),
        REFUSAL_SECONDS,
        "cluster x-marathon refused",
    )
    assert "x-marathon-lb exists and is MesosCluster x's" in message
    cluster = get_json(kube_env, "mesoscluster", "x-marathon", "-n", namespace) or {}
    assert cluster["status"]["phase"] == "Invalid"
    # refused before anything was written: none of its children, and x's left as it was
    assert get_json(kube_env, "statefulset", "x-marathon-zookeeper", "-n", namespace) is None
    after = get_json(kube_env, "deployment", "x-marathon-lb", "-n", namespace)
    assert after is not None
    assert _owners(after) == [("MesosCluster", "x")]
    assert after["metadata"]["generation"] == first["metadata"]["generation"]

    # deleting the refused cluster deletes nothing of x's
    deleted = kube_env.kubectl_run("delete", "mesoscluster", "x-marathon", "-n", namespace)
    assert deleted.returncode == 0, deleted.stderr
    time.sleep(2)
    assert get_json(kube_env, "deployment", "x-marathon-lb", "-n", namespace) is not None


def test_objects_someone_wrote_under_a_childs_name_are_not_taken_over(
    kube_env: KubeTestEnv, operator: OperatorProcess, namespace: str
) -> None:
    made = kube_env.kubectl_run(
        "create", "configmap", "yc-zookeeper", "-n", namespace, "--from-literal=team=theirs"
    )
    assert made.returncode == 0, made.stderr
    made = kube_env.kubectl_run(
        "create", "service", "clusterip", "mon-app", "-n", namespace, "--tcp=80:8080"
    )
    assert made.returncode == 0, made.stderr
    apply(kube_env, _cluster(namespace, "yc"))
    apply(
        kube_env,
        {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "ProbeFleet",
            "metadata": {"name": "mon", "namespace": namespace},
            "spec": {"app": {"port": 4040}},
        },
    )
    message = eventually(
        lambda: _refusal(kube_env, "mesoscluster", namespace, "yc"),
        REFUSAL_SECONDS,
        "cluster yc refused",
    )
    assert "ConfigMap yc-zookeeper exists and is no resource's" in message
    message = eventually(
        lambda: _refusal(kube_env, "probefleet", namespace, "mon"),
        REFUSAL_SECONDS,
        "fleet mon refused",
    )
    assert "Service mon-app exists and is no resource's" in message
    theirs = get_json(kube_env, "configmap", "yc-zookeeper", "-n", namespace)
    assert theirs is not None and theirs["data"] == {"team": "theirs"}
    assert _owners(theirs) == []
    service = get_json(kube_env, "service", "mon-app", "-n", namespace)
    assert service is not None and _owners(service) == []
    assert service["spec"]["selector"] == {"app": "mon-app"}
    assert get_json(kube_env, "statefulset", "yc-zookeeper", "-n", namespace) is None
    assert get_json(kube_env, "daemonset", "mon-probe", "-n", namespace) is None

    # Once the name is free, touching the resource (an annotation will do) builds it.
    kube_env.kubectl_run("delete", "configmap", "yc-zookeeper", "-n", namespace)
    touched = kube_env.kubectl_run(
        "annotate", "mesoscluster", "yc", "-n", namespace, "retry=1", "--overwrite"
    )
    assert touched.returncode == 0, touched.stderr
    eventually(
        lambda: (
            _owners(get_json(kube_env, "statefulset", "yc-zookeeper", "-n", namespace))
            == [("MesosCluster", "yc")]
        ),
        60,
        "cluster yc's ZooKeeper once the name is free",
    )
