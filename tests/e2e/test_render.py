"""`orchestrator render` against what the operator really creates: the example MesosCluster
and ProbeFleet applied to the control plane, then rendered from `kubectl get -o yaml` (so the
owner references carry the real uid); every rendered child exists with every field render
printed (the API server adds defaults, so the live object may have more)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import eventually, get_json

pytestmark = pytest.mark.kube
REPO = Path(__file__).resolve().parents[2]


def _differences(rendered: Any, live: Any, path: str = "") -> list[str]:
    """Where `live` lacks or changes what `rendered` says (lists item by item). An empty
    list or mapping may be absent: the API server drops empty fields (omitempty)."""
    if rendered in ([], {}) and live is None:
        return []
    if isinstance(rendered, dict):
        if not isinstance(live, dict):
            return [f"{path}: {live!r} is not a mapping"]
        return [d for k, v in rendered.items() for d in _differences(v, live.get(k), f"{path}.{k}")]
    if isinstance(rendered, list):
        if not isinstance(live, list) or len(live) != len(rendered):
            return [f"{path}: {live!r} != {rendered!r}"]
        return [d for i, v in enumerate(rendered) for d in _differences(v, live[i], f"{path}[{i}]")]
    return [] if rendered == live else [f"{path}: {live!r} != {rendered!r}"]


def _live(env: KubeTestEnv, child: dict[str, Any]) -> dict[str, Any] | None:
    meta = child["metadata"]
    namespace = ["-n", meta["namespace"]] if "namespace" in meta else []
    return get_json(env, child["kind"].lower(), meta["name"], *namespace)


@pytest.mark.parametrize(
    ("example", "resource", "name"),
    [("mesoscluster.yaml", "mesoscluster", "demo"), ("probefleet.yaml", "probefleet", "scope")],
)
def test_render_of_the_example_is_what_the_operator_creates(
    kube_env: KubeTestEnv, operator: OperatorProcess, example: str, resource: str, name: str
) -> None:
    applied = kube_env.kubectl_run("apply", "-f", str(REPO / "examples" / example))
    assert applied.returncode == 0, applied.stderr
    live_cr = kube_env.kubectl_run("get", resource, name, "-o", "yaml")
    assert live_cr.returncode == 0, live_cr.stderr
    rendered = subprocess.run(
        [sys.executable, "-m", "orchestrator_operator.cli", "render", "-f", "-"],
        input=live_cr.stdout, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    children = [d for d in yaml.safe_load_all(rendered.stdout) if d is not None]
    assert len(children) >= 4
    for child in children:
        what = f"{child['kind']} {child['metadata']['name']}"
        live = eventually(lambda c=child: _live(kube_env, c), 60, what)  # type: ignore[misc]
        assert _differences(child, live) == [], what
