"""MarathonApp end to end (issue 19, items 2-3): the operator against a real API server, a
MesosCluster on simulated pods (testenv/simpods.py: Mesos and Marathon as sim/ processes,
tasks as real processes) and a real ZooKeeper. What a user checks: the app runs in Marathon
with the spec's definition and a truthful status; `kubectl scale` changes Marathon's
instances; a change made directly in Marathon is put back; a second MarathonApp for the same
app changes nothing; deleting removes the app (Orphan keeps it)."""

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

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(300)]

TOKEN = "env-s3cret-19"


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    yield from namespace_for_marathonapps(kube_env, "mapp")


def _status(env: KubeTestEnv, namespace: str, name: str) -> dict[str, Any]:
    found = get_json(env, "mapp", name, "-n", namespace) or {}
    status: dict[str, Any] = found.get("status") or {}
    status["_generation"] = (found.get("metadata") or {}).get("generation")
    return status


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def test_a_marathon_app_is_kept_as_its_resource_says(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    zk_ensemble_factory: ZkEnsembleFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    zk = zk_ensemble_factory(1)
    # Before the cluster exists: a MarathonApp says what it waits for.
    apply(kube_env, marathonapp(namespace, "early", {"id": "/early", "cmd": "sleep 600"},
                           cluster="nowhere"))  # fmt: skip
    with marathon_pods(kube_env, namespace, zk.connect_string, tmp_path / "simpods") as pods:
        marathon = pods.marathon_urls()[0]
        pods.wait_for(
            lambda: _condition(_status(kube_env, namespace, "early"), "Available").get("reason")
            == "ClusterNotFound",
            30, "the early app saying its cluster is missing",
        )  # fmt: skip
        early = _status(kube_env, namespace, "early")
        assert "MesosCluster nowhere does not exist" in _condition(early, "Available")["message"]

        apply(kube_env, {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "web-env", "namespace": namespace,
                         "labels": {"orchestrator.dev/marathonapp-env": "true"}},
            "stringData": {"token": TOKEN},
        })  # fmt: skip
        web = {
            "id": "/web",
            "cmd": "sleep 600",
            "instances": 2,
            "cpus": 0.1,
            "mem": 16,
            "env": {"MODE": "e2e", "TOKEN": {"secretKeyRef": {"name": "web-env", "key": "token"}}},
        }
        apply(kube_env, marathonapp(namespace, "web", web))

        def app() -> dict[str, Any]:
            found: dict[str, Any] = httpx.get(marathon + "/v2/apps/web", timeout=2).json()["app"]
            return found

        def status_shows(running: int) -> bool:
            status = _status(kube_env, namespace, "web")
            return bool(
                status.get("phase") == "Ready"
                and (status.get("marathon") or {}).get("running") == running
                and status.get("observedGeneration") == status["_generation"]
            )

        pods.wait_for(lambda: status_shows(2), 60, "web Ready with 2 running")
        running = app()
        assert running["tasksRunning"] == 2
        assert running["env"] == {"MODE": "e2e", "TOKEN": TOKEN}
        status = _status(kube_env, namespace, "web")
        assert status["marathon"]["version"] == running["version"]
        assert status["marathon"]["appId"] == "/web"
        assert _condition(status, "Available")["status"] == "True"
        stored = kube_env.kubectl_run("get", "mapp", "web", "-n", namespace, "-o", "yaml").stdout
        assert TOKEN not in stored

        # kubectl scale (the scale subresource) changes Marathon's instances.
        scaled = kube_env.kubectl_run("scale", "mapp/web", "-n", namespace, "--replicas", "3")
        assert scaled.returncode == 0, scaled.stderr
        pods.wait_for(lambda: app()["tasksRunning"] == 3, 60, "3 tasks in Marathon")
        pods.wait_for(lambda: status_shows(3), 30, "status with 3 running")

        # A change made directly in Marathon is put back (drift: Revert).
        httpx.put(marathon + "/v2/apps/web", json={"instances": 1}, timeout=5).raise_for_status()
        pods.wait_for(
            lambda: bool((_status(kube_env, namespace, "web").get("drift") or {})
                         .get("lastRevertedAt")),
            30, "the drift reverted",
        )  # fmt: skip
        pods.wait_for(lambda: app()["instances"] == 3 and app()["tasksRunning"] == 3, 60,
                      "3 tasks again")  # fmt: skip

        # A second MarathonApp for the same Marathon app changes nothing.
        apply(kube_env, marathonapp(namespace, "web-again", {**web, "instances": 5}))
        pods.wait_for(
            lambda: _condition(_status(kube_env, namespace, "web-again"), "Accepted")
            .get("reason") == "Conflict",
            30, "the second one in conflict",
        )  # fmt: skip
        message = _condition(_status(kube_env, namespace, "web-again"), "Accepted")["message"]
        assert "MarathonApp web already manages app /web" in message
        assert app()["instances"] == 3
        deleted = kube_env.kubectl_run("delete", "mapp", "web-again", "-n", namespace)
        assert deleted.returncode == 0, deleted.stderr
        assert app()["instances"] == 3

        # Orphan keeps the app in Marathon; Delete removes it.
        kept = {"id": "/kept", "cmd": "sleep 600", "cpus": 0.1, "mem": 16}
        apply(kube_env, marathonapp(namespace, "kept", kept, deletionPolicy="Orphan"))
        pods.wait_for(lambda: status_shows_app(kube_env, namespace, "kept"), 60, "kept Ready")
        for name in ("kept", "web"):
            gone = kube_env.kubectl_run("delete", "mapp", name, "-n", namespace, "--timeout=60s")
            assert gone.returncode == 0, gone.stderr
        apps = {a["id"] for a in httpx.get(marathon + "/v2/apps", timeout=2).json()["apps"]}
        assert apps == {"/kept"}


def status_shows_app(env: KubeTestEnv, namespace: str, name: str) -> bool:
    return _status(env, namespace, name).get("phase") == "Ready"
