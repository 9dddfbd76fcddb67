"""MarathonApp's built-in autoscaler end to end (issue 19, item 3): the operator against a real
API server, a MesosCluster on simulated pods (real ZooKeeper, Mesos and Marathon as sim/
processes, tasks as real processes whose CPU the agent measures in /monitor/statistics).

What a user checks: an app whose tasks use more CPU than the target is scaled up in Marathon,
one step at a time (maxStep 1) up to maxInstances, and an idle app is scaled down to
minInstances; `status.autoscaling` says why each time. The decisions come from the agents'
real statistics (the tasks' CPU time read by the simulated agent from /proc), not from a
number the test writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import (
    apply,
    get_json,
    marathon_pods,
    marathonapp,
    namespace_for_marathonapps,
)
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(400)]

# Busy about 5 ms in every 50 ms: some 0.1 CPU, about 65% of the task's limit (0.05 cpus plus
# the command executor's 0.1, what Mesos' statistics report as cpus_limit); the target is 10%,
# so the app wants more instances even on a machine too loaded to give it all that CPU.
BURNER = (
    "python3 -c 'import time\n"
    "while True:\n"
    "    end = time.monotonic() + 0.005\n"
    "    while time.monotonic() < end: pass\n"
    "    time.sleep(0.045)'"
)


def _mapp(namespace: str, name: str, app: dict[str, Any], autoscaling: dict[str, Any]) -> Any:
    return marathonapp(namespace, name, app, autoscaling=autoscaling)


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    yield from namespace_for_marathonapps(kube_env, "mapp-as")


def _autoscaling(env: KubeTestEnv, namespace: str, name: str) -> dict[str, Any]:
    found = get_json(env, "mapp", name, "-n", namespace) or {}
    result: dict[str, Any] = (found.get("status") or {}).get("autoscaling") or {}
    return result


def test_the_autoscaler_changes_the_instances_in_marathon(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    zk_ensemble_factory: ZkEnsembleFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    zk = zk_ensemble_factory(1)
    with marathon_pods(kube_env, namespace, zk.connect_string, tmp_path / "simpods") as pods:
        marathon = pods.marathon_urls()[0]

        def wait(check: Any, timeout: float, what: str, name: str) -> None:
            try:
                pods.wait_for(check, timeout, what)
            except TimeoutError as error:
                seen = _autoscaling(kube_env, namespace, name)
                raise AssertionError(f"{what}: status.autoscaling {seen}") from error

        def app(app_id: str) -> dict[str, Any]:
            found = httpx.get(f"{marathon}/v2/apps/{app_id}", timeout=2)
            return dict(found.json().get("app") or {}) if found.status_code == 200 else {}

        busy = {"id": "/busy", "cmd": BURNER, "instances": 1, "cpus": 0.05, "mem": 32}
        apply(kube_env, _mapp(namespace, "busy", busy, {
            "minInstances": 1, "maxInstances": 3, "target": {"cpuUtilization": 0.1},
            "scaleUpCooldownSeconds": 0, "maxStep": 1,
        }))  # fmt: skip
        idle = {"id": "/idle", "cmd": "sleep 600", "instances": 3, "cpus": 0.05, "mem": 16}
        apply(kube_env, _mapp(namespace, "idle", idle, {
            "minInstances": 1, "maxInstances": 5, "target": {"cpuUtilization": 0.5},
            "scaleDownCooldownSeconds": 0, "maxStep": 2,
        }))  # fmt: skip

        # Up one step at a time to the maximum: 1 -> 2 -> 3, each in Marathon.
        wait(lambda: app("busy").get("instances") == 2, 120, "/busy scaled to 2", "busy")
        first = _autoscaling(kube_env, namespace, "busy")
        assert first["metric"]["name"] == "cpuUtilization" and first["metric"]["target"] == 0.1
        assert first["lastScaleAt"]
        wait(lambda: app("busy").get("tasksRunning") == 3, 120, "/busy with 3 tasks", "busy")
        status = _autoscaling(kube_env, namespace, "busy")
        assert status["desiredInstances"] == 3
        assert "scaled up from 2 to 3" in status["reason"] or "the maximum" in status["reason"]
        assert status["metric"]["value"] > 0.1

        # The idle app down to its minimum, at most 2 a step: 3 -> 1.
        wait(lambda: app("idle").get("instances") == 1, 120, "/idle scaled to 1", "idle")
        status = _autoscaling(kube_env, namespace, "idle")
        assert status["desiredInstances"] == 1
        assert "scaled down from 3 to 1" in status["reason"] or "the minimum" in status["reason"]
        assert status["metric"]["value"] < 0.5
        wait(lambda: app("idle").get("tasksRunning") == 1, 60, "/idle with 1 task", "idle")
