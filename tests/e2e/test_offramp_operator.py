"""The off-ramp's traffic shift through the operator (issue 21 item 4): what a user checks
with kubectl. The session's operator runs a MarathonApp with `spec.kubernetes.shift`
against the simulator's Mesos and Marathon on a real ZooKeeper and a real API server with
kube-controller-manager: the translated Deployment's pods (KWOK) become ready endpoints of
the Service's EndpointSlices (made by the real EndpointSlice controller), the shift writes
the traffic ConfigMap's `kubernetes` entry, pauses until `kubectl patch` bumps
spec.promote, scales the Marathon app to zero, and `spec.abort` scales it back and moves
the traffic back. (Requests through HAProxy: tests/integration/test_offramp_traffic.py.)"""

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
    yield from namespace_for_marathonapps(kube_env, "shift")


def patch(env: KubeTestEnv, namespace: str, spec: dict[str, Any]) -> None:
    result = env.kubectl_run(
        "patch", "mapp", "web", "-n", namespace, "--type", "merge", "-p",
        json.dumps({"spec": spec}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_shift_pauses_moves_all_traffic_scales_marathon_to_zero_and_rolls_back(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    zk_ensemble_factory: ZkEnsembleFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    zk = zk_ensemble_factory(1)
    with SimCluster(
        zk.connect_string, masters=1, agents=1, marathons=1, base_dir=tmp_path / "sim",
        agent_resources="cpus:8;mem:8192;disk:10240;ports:[31000-31100]",
    ) as sim:  # fmt: skip
        sim.wait_for_marathon()
        apply(kube_env, mesoscluster(
            namespace, zk.connect_string,
            masters={"zkPath": sim.mesos_path}, marathon={"zkPath": sim.marathon_path},
        ))  # fmt: skip
        app = {
            "id": "/web", "cmd": "sleep 600", "instances": 2, "cpus": 0.05, "mem": 16,
            "portDefinitions": [{"port": 0, "name": "http"}],
        }  # fmt: skip
        shift = {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}
        apply(
            kube_env,
            marathonapp(
                namespace, "web", app,
                kubernetes={"image": "registry.example/web:1", "shift": shift},
            ),
        )  # fmt: skip

        def offramp() -> dict[str, Any]:
            found = get_json(kube_env, "mapp", "web", "-n", namespace) or {}
            return dict((found.get("status") or {}).get("offramp") or {})

        def traffic() -> dict[str, Any]:
            found = get_json(kube_env, "configmap", "web-traffic", "-n", namespace) or {}
            data = (found.get("data") or {}).get("weights.json")
            return dict(json.loads(data)) if data else {}

        def marathon_instances() -> int | None:
            response = httpx.get(sim.marathon_url() + "/v2/apps/web", timeout=5)
            return int(response.json()["app"]["instances"]) if response.status_code == 200 else None

        try:
            paused = eventually(
                lambda: offramp().get("phase") == "Paused" and offramp(), 150, "paused at 50 %"
            )
            assert paused["kubernetesWeight"] == 50 and paused["marathonWeight"] == 50
            assert "paused until spec.promote is bumped" in paused["message"]
            assert traffic() == {
                "group": "/web",
                "weights": {"/web": 50},
                "kubernetes": {"service": "web", "port": "http", "weight": 50},
            }
            assert marathon_instances() == 2

            patch(kube_env, namespace, {"promote": 1})
            shifted = eventually(
                lambda: offramp().get("phase") == "Shifted" and offramp(), 90, "shifted"
            )
            assert shifted["kubernetesWeight"] == 100
            # No load balancer runs here: the scale-down was not confirmed, and says so.
            assert shifted["scaleDownUnconfirmed"] is True, shifted
            assert "the load balancer could not be read" in shifted["message"]
            assert traffic()["kubernetes"]["weight"] == 100
            eventually(lambda: marathon_instances() == 0, 60, "Marathon scaled to zero")

            patch(kube_env, namespace, {"abort": True})
            rolled = eventually(
                lambda: offramp().get("phase") == "RolledBack" and offramp(), 120, "rolled back"
            )
            assert "spec.abort is set" in rolled["message"]
            assert traffic()["kubernetes"]["weight"] == 0
            assert marathon_instances() == 2
        except AssertionError:
            print(offramp(), traffic(), marathon_instances())
            print(operator.log_tail(6000))
            raise
