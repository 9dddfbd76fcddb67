"""End-to-end tests share one control plane: each test removes the resources it made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testenv.kube import KubeTestEnv


@pytest.fixture(autouse=True)
def _delete_custom_resources(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "kube_env" not in request.fixturenames:
        return
    env: KubeTestEnv = request.getfixturevalue("kube_env")
    # Children go with their owner (garbage collection); agents' host ports are freed.
    env.kubectl_run(
        "delete", "mesosclusters,zkmigrations,probefleets", "--all", "-A", "--wait=true"
    )
