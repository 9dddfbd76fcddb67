"""spec.zookeeper.tls added to a running managed ensemble (issue 17, point 7): the operator
moves it through ZooKeeper's stages ("Upgrading existing non-TLS cluster with no downtime":
port unification, TLS with port unification, TLS only), a rolling restart each, and starts
a stage only when every member runs the last one and is ready. Against the real control
plane, the real operator and KWOK's pods; the stages' settings are run in a real ensemble
by tests/integration/test_zookeeper_quorum_tls.py. Removing tls again is refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import (
    TLS_REMOVAL_MESSAGE,
    MesosClusterSpec,
    QuorumTls,
)
from orchestrator_operator.operator.builders.cluster import build_children
from orchestrator_operator.operator.builders.zookeeper import QUORUM_TLS_ANNOTATION
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import PodSampler, apply, eventually, get_json

pytestmark = [pytest.mark.kube, pytest.mark.timeout(420)]

NAME = "qtls"
ORDER = list(QuorumTls)


def _cluster(zookeeper: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": NAME, "namespace": "default"},
        "spec": {
            "zookeeper": zookeeper,
            "masters": {"replicas": 1},
            "marathon": {"replicas": 0},
        },
    }


def _stage(pod: dict[str, Any]) -> str:
    """The quorum TLS stage a member pod was started into (its template's)."""
    annotated = pod["metadata"].get("annotations", {}).get(QUORUM_TLS_ANNOTATION)
    if annotated:
        return str(annotated)
    volumes = pod["spec"].get("volumes", [])
    return QuorumTls.ON if any(v["name"] == "tls" for v in volumes) else QuorumTls.OFF


def test_tls_added_to_a_running_ensemble_goes_through_every_stage_one_roll_at_a_time(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    plain = {"replicas": 3}
    apply(kube_env, _cluster(plain))

    def statefulset() -> dict[str, Any]:
        return get_json(kube_env, "statefulset", f"{NAME}-zookeeper") or {}

    eventually(lambda: statefulset().get("status", {}).get("readyReplicas") == 3, 120,
               "3 ready ZooKeeper members")  # fmt: skip
    with_tls = {**plain, "tls": {"secretName": f"{NAME}-zookeeper-tls"}}
    with PodSampler(kube_env, NAME, "zookeeper", describe=_stage) as sampler:
        apply(kube_env, _cluster(with_tls))

        def done() -> bool:
            pods = sampler.samples[-1]
            return len(pods) == 3 and all(p.ready and p.describe == "On" for p in pods)

        try:
            eventually(done, 300, "every member restarted into TLS only")
        except AssertionError as error:
            status = (get_json(kube_env, "mc", NAME) or {}).get("status") or {}
            raise AssertionError(f"{error}\nrollout: {status.get('rollout')}") from None

    for sample in sampler.samples:
        stages = {ORDER.index(QuorumTls(p.describe)) for p in sample}
        # Plain members and TLS-only ones cannot talk: never more than one step apart.
        assert max(stages) - min(stages) <= 1, f"members two stages apart: {sample}"
        assert sum(p.ready for p in sample) >= 2, f"below quorum: {sample}"
    # Each member restarted into each stage, in order. Counted as (member, stage): KWOK
    # deletes pods by name, so a stale delete of a replaced pod may hit its successor before
    # it ever ran, and the StatefulSet controller makes another (a kubelet deletes by uid).
    started: dict[str, tuple[str, QuorumTls]] = {}  # uid: (pod, stage), in the order they came
    for sample in sampler.samples:
        for pod in sample:
            started.setdefault(pod.uid, (pod.name, QuorumTls(pod.describe)))
    restarts = list(dict.fromkeys(list(started.values())[3:]))
    for member in (f"{NAME}-zookeeper-{i}" for i in range(3)):
        went = [stage for name, stage in restarts if name == member]
        assert went == ORDER[1:], f"{member} went through {went}: {restarts}"
    assert len(restarts) == 9, f"three rolling restarts of three members: {restarts}"

    # What runs now is what a cluster created with tls runs.
    built = {
        c["kind"]: c
        for c in build_children(
            Owner(NAME, "default", ""), MesosClusterSpec.model_validate(_cluster(with_tls)["spec"])
        )
        if c["metadata"]["name"] == f"{NAME}-zookeeper"
    }
    config = get_json(kube_env, "configmap", f"{NAME}-zookeeper") or {}
    assert config["data"]["zoo.cfg"] == built["ConfigMap"]["data"]["zoo.cfg"]
    assert QUORUM_TLS_ANNOTATION not in (
        statefulset()["spec"]["template"]["metadata"].get("annotations") or {}
    )

    refused = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(_cluster(plain)))
    assert refused.returncode != 0
    assert TLS_REMOVAL_MESSAGE.split(":")[0] in refused.stderr
    assert kube_env.kubectl_run("delete", "mc", NAME, "--wait=true").returncode == 0
