"""A MarathonApp canary through the operator (issue 19, item 4): what a user checks with
kubectl. The operator (the session's) runs it against the simulator's Mesos and Marathon on
a real ZooKeeper (the MesosCluster names the simulator's paths on that ensemble, as
bench/marathonapp.py does); status.rollout shows the step and the weights, the traffic
ConfigMap holds them, `kubectl patch` of spec.promote goes past a pause and of spec.abort
rolls back. (Traffic through HAProxy: tests/integration/test_marathonapp_traffic.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import (
    apply,
    eventually,
    get_json,
    marathonapp,
    mesoscluster,
    namespace_for_marathonapps,
)
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(300)]


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    yield from namespace_for_marathonapps(kube_env, "canary")


def patch(env: KubeTestEnv, namespace: str, spec: dict[str, Any]) -> None:
    result = env.kubectl_run(
        "patch", "mapp", "shop", "-n", namespace, "--type", "merge", "-p",
        json.dumps({"spec": spec}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_canary_pauses_is_promoted_and_aborted_with_kubectl(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    zk_ensemble_factory: ZkEnsembleFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    zk = zk_ensemble_factory(1)
    with SimCluster(
        zk.connect_string, masters=1, agents=1, marathons=1, base_dir=tmp_path / "sim",
        agent_resources="cpus:8;mem:8192;disk:10240",
    ) as sim:  # fmt: skip
        sim.wait_for_marathon()
        apply(kube_env, mesoscluster(
            namespace, zk.connect_string,
            masters={"zkPath": sim.mesos_path}, marathon={"zkPath": sim.marathon_path},
        ))  # fmt: skip

        def app(version: str) -> dict[str, Any]:
            return {"id": "/shop", "cmd": f"sleep 600 # {version}", "instances": 2,
                    "cpus": 0.05, "mem": 16}  # fmt: skip

        strategy = {"type": "canary", "canary": {"steps": [{"setWeight": 40}, {"pause": {}}]}}
        apply(kube_env, marathonapp(namespace, "shop", app("v1"), strategy=strategy))

        def rollout() -> dict[str, Any]:
            found = get_json(kube_env, "mapp", "shop", "-n", namespace) or {}
            return dict((found.get("status") or {}).get("rollout") or {})

        def marathon_apps() -> dict[str, str]:
            apps = httpx.get(sim.marathon_url() + "/v2/apps", timeout=5).json()["apps"]
            return {a["id"]: a["cmd"] for a in apps}

        def traffic() -> dict[str, int]:
            found = get_json(kube_env, "configmap", "shop-traffic", "-n", namespace) or {}
            data = (found.get("data") or {}).get("weights.json")
            return dict(json.loads(data)["weights"]) if data else {}

        eventually(lambda: rollout().get("phase") == "Idle", 90, "the first version running")
        assert marathon_apps() == {"/shop": "sleep 600 # v1"}
        assert traffic() == {"/shop": 100}
        owner = (get_json(kube_env, "configmap", "shop-traffic", "-n", namespace) or {})[
            "metadata"
        ]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("MarathonApp", "shop")

        # A new version: the canary takes 40 % and waits to be promoted.
        patch(kube_env, namespace, {"app": app("v2")})
        paused = eventually(lambda: rollout().get("phase") == "Paused" and rollout(), 90,
                            "the canary paused")  # fmt: skip
        assert paused["weights"] == {"/shop": 60, "/shop-canary": 40}
        assert paused["step"] == 1 and "paused until spec.promote is bumped" in paused["message"]
        assert traffic() == {"/shop": 60, "/shop-canary": 40}
        assert marathon_apps()["/shop-canary"] == "sleep 600 # v2"
        patch(kube_env, namespace, {"promote": 1})

        def promoted() -> bool:
            now = rollout()
            assert now.get("phase") not in ("RolledBack", "Aborted"), now
            return now.get("stage") == "Idle" and now["phase"] == "Promoted"

        try:
            eventually(promoted, 120, "the canary promoted")
        except AssertionError:
            print(rollout(), marathon_apps(), traffic())
            raise
        assert marathon_apps() == {"/shop": "sleep 600 # v2"}
        assert traffic() == {"/shop": 100}
        assert rollout()["promotedGeneration"] == 1

        # Another version, aborted at its pause: all traffic back, the canary removed.
        patch(kube_env, namespace, {"app": app("v3")})
        eventually(lambda: rollout().get("phase") == "Paused", 90, "the second canary paused")
        patch(kube_env, namespace, {"abort": True})
        aborted = eventually(lambda: rollout().get("phase") == "Aborted" and rollout(), 90,
                             "the canary aborted")  # fmt: skip
        assert "spec.abort is set" in aborted["message"]
        eventually(lambda: marathon_apps() == {"/shop": "sleep 600 # v2"}, 60, "canary removed")
        assert traffic() == {"/shop": 100}
