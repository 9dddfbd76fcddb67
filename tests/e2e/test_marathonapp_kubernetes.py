"""MarathonApp spec.kubernetes end to end (issue 21 item 3, the off-ramp's translation): the
operator against a real API server and kube-controller-manager, the translated pods run as
real processes by testenv/simpods.py at their KWOK pod IPs. What a user checks: the app gets
a Deployment and a Service owned by the MarathonApp, its pods answer HTTP at the addresses
their EndpointSlice lists (made by the real controller-manager), status.kubernetes says
so; removing spec.kubernetes removes them and their processes. No Mesos is needed: the
Kubernetes side does not wait for Marathon (the cluster here does not exist)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.simpods import SimPodRunner
from tests.e2e.support import (
    apply,
    eventually,
    get_json,
    marathonapp,
    namespace_for_marathonapps,
)

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    yield from namespace_for_marathonapps(kube_env, "offramp")


def _ready_endpoints(env: KubeTestEnv, namespace: str, service: str) -> list[tuple[str, int]]:
    """(address, port) of each ready endpoint in the Service's EndpointSlices."""
    found = get_json(
        env, "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}"
    )
    result: list[tuple[str, int]] = []
    for slice_ in (found or {}).get("items") or []:
        port = next((p["port"] for p in slice_.get("ports") or [] if p.get("name") == "http"), 0)
        for endpoint in slice_.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready"):
                result += [(address, port) for address in endpoint.get("addresses") or []]
    return sorted(result)


def _answers(address: str, port: int) -> str | None:
    try:
        response = httpx.get(f"http://{address}:{port}/whoami.txt", timeout=2)
    except httpx.HTTPError:
        return None
    return response.text.strip() if response.status_code == 200 else None


def test_spec_kubernetes_runs_the_app_as_a_deployment_and_removing_it_removes_it(
    kube_env: KubeTestEnv, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    # Each pod's process serves a file naming its pod IP, bound to $HOST:$PORT0 (the
    # translated env: HOST is the pod's IP, PORT0 the container port), as Marathon tasks
    # bind $HOST:$PORT0.
    cmd = (
        'mkdir -p www && echo "$HOST" > www/whoami.txt && cd www'
        f' && exec {sys.executable} -m http.server "$PORT0" --bind "$HOST"'
    )
    app: dict[str, Any] = {
        "id": "/shop/web",
        "cmd": cmd,
        "instances": 2,
        "cpus": 0.25,
        "mem": 64,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/whoami.txt", "intervalSeconds": 2}],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5},
        "constraints": [["hostname", "UNIQUE"]],
    }
    kubernetes = {"image": "docker.io/library/python:3.12-slim"}
    with SimPodRunner(kube_env, namespace, tmp_path / "simpods") as pods:
        apply(kube_env, marathonapp(namespace, "web", app, cluster="nowhere",
                                    kubernetes=kubernetes))  # fmt: skip

        def serving() -> list[tuple[str, int]]:
            endpoints = _ready_endpoints(kube_env, namespace, "web")
            if len(endpoints) != 2:
                return []
            return endpoints if all(_answers(a, p) == a for a, p in endpoints) else []

        try:
            pods.wait_for(lambda: bool(serving()), 90, "2 pods answering at their endpoints")
        except TimeoutError as error:
            shown = kube_env.kubectl_run(
                "get", "mapp,deployment,pods,endpointslices", "-n", namespace, "-o", "yaml"
            ).stdout
            raise AssertionError(f"{error}\n{shown[-6000:]}") from None
        endpoints = serving()
        assert [p for _, p in endpoints] == [8080, 8080]
        assert len({a for a, _ in endpoints}) == 2

        deployment = get_json(kube_env, "deployment", "web", "-n", namespace)
        assert deployment is not None
        owner = deployment["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("MarathonApp", "web")
        template = deployment["spec"]["template"]["spec"]
        container = template["containers"][0]
        assert container["resources"]["limits"] == {"cpu": "250m", "memory": "64Mi"}
        assert container["readinessProbe"]["httpGet"]["path"] == "/whoami.txt"
        assert deployment["spec"]["strategy"]["rollingUpdate"] == {
            "maxUnavailable": "50%",
            "maxSurge": "50%",
        }
        anti = template["affinity"]["podAntiAffinity"]
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
            "kubernetes.io/hostname"
        )

        def status() -> dict[str, Any]:
            found = get_json(kube_env, "mapp", "web", "-n", namespace) or {}
            kube: dict[str, Any] = (found.get("status") or {}).get("kubernetes") or {}
            return kube

        pods.wait_for(
            lambda: status().get("readyReplicas") == 2 and status().get("available") is True,
            60,
            "status.kubernetes with 2 ready replicas",
        )
        assert status()["deployment"] == "web"
        assert status()["service"] == "web"

        # Removing spec.kubernetes removes the Deployment, the Service and the processes.
        removed = kube_env.kubectl_run(
            "patch", "mapp", "web", "-n", namespace, "--type=json",
            "-p", '[{"op": "remove", "path": "/spec/kubernetes"}]',
        )  # fmt: skip
        assert removed.returncode == 0, removed.stderr
        pods.wait_for(
            lambda: (
                get_json(kube_env, "deployment", "web", "-n", namespace) is None
                and get_json(kube_env, "service", "web", "-n", namespace) is None
            ),
            60,
            "the Deployment and the Service gone",
        )
        pods.wait_for(
            lambda: all(_answers(a, p) is None for a, p in endpoints),
            60,
            "the pods' processes stopped",
        )
        pods.wait_for(lambda: not status(), 30, "status.kubernetes cleared")


def test_a_service_of_the_same_name_that_is_not_the_marathonapps_is_left_alone(
    kube_env: KubeTestEnv, operator: OperatorProcess, namespace: str
) -> None:
    """A Service someone else wrote (here without a selector, in front of endpoints of their
    own) is not taken over by a MarathonApp of the same name: applying over it would give it
    the MarathonApp's selector and its EndpointSlices to the translated pods."""
    apply(kube_env, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "api", "namespace": namespace},
        "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 8080}]},
    })  # fmt: skip
    app = {"id": "/api", "cmd": "sleep 3600", "instances": 2,
           "portDefinitions": [{"port": 0, "name": "http"}]}  # fmt: skip
    apply(kube_env, marathonapp(namespace, "api", app, cluster="nowhere",
                                kubernetes={"image": "registry.example/api:1"}))  # fmt: skip

    def said() -> str:
        status = (get_json(kube_env, "marathonapp", "api", "-n", namespace) or {}).get("status")
        return str(((status or {}).get("kubernetes") or {}).get("message") or "")

    message = eventually(said, 60, "status.kubernetes saying why")
    assert message == "Service api exists and is not this MarathonApp's: left alone"
    service = get_json(kube_env, "service", "api", "-n", namespace) or {}
    assert "selector" not in service["spec"] and "ownerReferences" not in service["metadata"]
    assert get_json(kube_env, "deployment", "api", "-n", namespace) is None
