"""docker-compose.yml with Docker Compose v2 (`docker compose`, built from its Go module by
scripts/build-compose.sh: Debian bookworm has only the Python docker-compose 1.29, which
tests/integration/test_delivery_image.py runs too): `config` accepts the file with no
profile, with the simulator's `mesos` and with `mesos-real`; and the `mesos-real` services run
exactly the images, entrypoints and flags the operator's builders emit for the MesosCluster
compose/mesoscluster.yaml, the pod's addresses replaced by each service's own."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.operator.render import parse_documents, render_children

REPO = Path(__file__).resolve().parents[2]
SIMULATED = ("mesos-master-1", "mesos-master-2", "mesos-master-3", "mesos-agent-1", "marathon")
REAL = tuple(f"real-{name}" for name in SIMULATED)


@cache
def _compose_binary() -> str:
    result = subprocess.run(
        ["bash", str(REPO / "scripts/build-compose.sh")],
        capture_output=True, text=True, check=False, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def _config(*profiles: str) -> dict[str, Any]:
    args = [a for profile in profiles for a in ("--profile", profile)]
    result = subprocess.run(
        [_compose_binary(), "-f", str(REPO / "docker-compose.yml"), *args, "config"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "orchestrator"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.mark.timeout(1500)  # the first run builds docker compose: ~4 min cold
def test_compose_v2_is_the_pinned_release() -> None:
    result = subprocess.run([_compose_binary(), "version"], capture_output=True, text=True)
    assert result.returncode == 0 and "v5.6.0" in result.stdout, result.stdout + result.stderr


@pytest.mark.timeout(1500)
@pytest.mark.parametrize(
    ("profiles", "mesos"),
    [((), ()), (("mesos",), SIMULATED), (("mesos-real",), REAL)],
)
def test_compose_config_accepts_each_profile(
    profiles: tuple[str, ...], mesos: tuple[str, ...]
) -> None:
    services = _config(*profiles)["services"]
    base = {"zk-a1", "zk-a2", "zk-a3", "zk-b1", "zk-b2", "zk-b3", "zk-sync", "monitor-app",
            "monitor-probe", "prometheus", "grafana"}  # fmt: skip
    assert set(services) == base | set(mesos)
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)


def _builder_containers() -> dict[str, dict[str, Any]]:
    """The masters', agent's and Marathon's container as the operator builds it for
    compose/mesoscluster.yaml (the same path as `orchestrator render`)."""
    resources = parse_documents([("compose/mesoscluster.yaml",
                                  (REPO / "compose/mesoscluster.yaml").read_text())])  # fmt: skip
    ((_, children, _),) = render_children(resources)
    containers = {}
    for child in children:
        if child["kind"] in ("StatefulSet", "DaemonSet", "Deployment"):
            (container,) = child["spec"]["template"]["spec"]["containers"]
            containers[child["kind"]] = container
    return containers


def _filled(args: list[str], service: dict[str, Any], name: str) -> list[str]:
    """The pod's addresses, from the downward API in Kubernetes, as compose gives them."""
    ip = service["networks"]["orchestrator"]["ipv4_address"]
    pod = {"$(POD_IP)": ip, "$(HOST_IP)": ip, "$(NODE_NAME)": name}
    for placeholder, value in pod.items():
        args = [arg.replace(placeholder, value) for arg in args]
    return args


@pytest.mark.timeout(1500)
def test_the_real_profile_runs_the_builders_images_and_flags() -> None:
    services = _config("mesos-real")["services"]
    containers = _builder_containers()
    spec = yaml.safe_load((REPO / "compose/mesoscluster.yaml").read_text())["spec"]
    kinds = {"real-mesos-master": "StatefulSet", "real-mesos-agent": "DaemonSet",
             "real-marathon": "Deployment"}  # fmt: skip
    counted = {kind: 0 for kind in kinds.values()}
    for name in REAL:
        service = services[name]
        kind = kinds[name.rstrip("-0123456789")]
        container = containers[kind]
        counted[kind] += 1
        assert service["image"] == container["image"], name
        assert service["entrypoint"] == container["command"], name
        assert service["command"] == _filled(container["args"], service, name), name
        assert service["profiles"] == ["mesos-real"], name
        privileged = container.get("securityContext", {}).get("privileged", False)
        assert service.get("privileged", False) == privileged, name
    assert counted == {"StatefulSet": spec["masters"]["replicas"], "DaemonSet": 1,
                       "Deployment": spec["marathon"]["replicas"]}  # fmt: skip
    # The simulator's services answer on the same ensemble and paths: not both at once.
    assert services["real-marathon"]["ports"][0]["published"] == "8080"


@pytest.mark.parametrize("profile", ["mesos", "mesos-real"])
def test_debian_docker_compose_1_29_accepts_each_profile(profile: str) -> None:
    """What `apt-get install docker-compose` gives on Debian bookworm reads the file too."""
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose not found: install the Debian package `docker-compose`"
    result = subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "--profile", profile, "config", "-q"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "orchestrator"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
