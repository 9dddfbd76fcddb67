"""The ArgoCD health check of MarathonApp (deploy/argocd/health/marathonapp.lua) in a real Lua 5.1
interpreter (lupa; ArgoCD's gopher-lua implements Lua 5.1), called as ArgoCD calls it (the
object as the global `obj`, the result a table with `status` and `message`), against a
MarathonApp in each state the operator reports; the argocd-cm rendered by kustomize carries it
under the kind's key."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51  # type: ignore[import-untyped]
import pytest
import yaml

from testenv.kube import build_binaries

REPO = Path(__file__).resolve().parents[2]
SCRIPT = (REPO / "deploy/argocd/health/marathonapp.lua").read_text()
KEY = "resource.customizations.health.orchestrator.dev_MarathonApp"


def health(obj: dict[str, Any]) -> dict[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals()["obj"] = runtime.table_from(obj, recursive=True)
    result = runtime.execute(SCRIPT)
    return {str(k): str(v) for k, v in result.items()}


def condition(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason or type_,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def mapp(status: dict[str, Any] | None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MarathonApp",
        "metadata": {"name": "web", "namespace": "ns", "generation": generation},
        "spec": {"cluster": "demo", "app": {"id": "/web", "cmd": "sleep 1000"}},
    }
    if status is not None:
        obj["status"] = copy.deepcopy(status)
    return obj


MARATHON = {"appId": "/web", "instances": 3, "running": 3, "healthy": 3, "flapping": False,
            "relaunches": 0}  # fmt: skip
AVAILABLE = {
    "observedGeneration": 3,
    "marathon": MARATHON,
    "conditions": [
        condition("Accepted", "True"),
        condition("Available", "True", "AllInstancesHealthy", "3/3 instances healthy"),
        condition("Progressing", "False", "DeploymentFinished", "version 2026-12-03T20:00"),
        condition("Degraded", "False", "NotDegraded"),
    ],
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    status = copy.deepcopy(base)
    status.update(changes)
    return status


def conditions(*items: dict[str, Any]) -> list[dict[str, Any]]:
    return list(items)


CASES: list[tuple[str, dict[str, Any] | None, int, str, str]] = [
    # (id, status, generation, expected status, expected message fragment)
    ("no status yet", None, 1, "Progressing", "Waiting for the operator"),
    ("available", AVAILABLE, 3, "Healthy", "3/3 instances healthy"),
    ("spec changed, not observed", AVAILABLE, 4, "Progressing", "generation 4"),
    ("no observedGeneration yet", with_(AVAILABLE, observedGeneration=None), 3, "Progressing",
     "generation 3"),
    ("not accepted", with_(AVAILABLE, conditions=conditions(
        condition("Accepted", "False", "InvalidSpec",
                  "spec.app.container.docker.privileged is not allowed")),
    ), 3, "Degraded", "privileged is not allowed"),
    ("deployment in progress", with_(AVAILABLE, conditions=conditions(
        condition("Accepted", "True"),
        condition("Available", "False", "NoHealthyInstance", "0/3 healthy"),
        condition("Progressing", "True", "DeploymentInProgress", "step 1 of 2: StartApplication"),
    )), 3, "Progressing", "step 1 of 2"),
    ("rolling update while still available", with_(AVAILABLE, conditions=conditions(
        condition("Available", "True", "Available", "3/3 healthy"),
        condition("Progressing", "True", "DeploymentInProgress", "restarting 1 of 3"),
    )), 3, "Progressing", "restarting 1 of 3"),
    ("degraded condition", with_(AVAILABLE, conditions=conditions(
        condition("Available", "True"),
        condition("Degraded", "True", "DeploymentStuck", "no offer fits cpus 4"),
    )), 3, "Degraded", "no offer fits cpus 4"),
    ("flapping", with_(AVAILABLE, marathon=dict(MARATHON, flapping=True, relaunches=7)), 3,
     "Degraded", "7 relaunches"),
    ("unavailable, not progressing", with_(AVAILABLE, conditions=conditions(
        condition("Available", "False", "NoHealthyInstance", "0/3 instances healthy"),
        condition("Progressing", "False", "DeploymentFinished"),
    )), 3, "Degraded", "0/3 instances healthy"),
    ("canary rolled back", with_(AVAILABLE, rollout={
        "strategy": "canary", "phase": "RolledBack", "step": 2,
        "message": "analysis failed: error rate 0.5 above 0.05"}), 3, "Degraded",
     "Rollout RolledBack: analysis failed"),
    ("canary aborted", with_(AVAILABLE, rollout={
        "strategy": "canary", "phase": "Aborted", "step": 1, "message": "spec.abort is true"}),
     3, "Degraded", "Rollout Aborted"),
    ("canary paused until promoted", with_(AVAILABLE, rollout={
        "strategy": "canary", "phase": "Paused", "step": 3, "message": "waiting for promote"}),
     3, "Suspended", "paused at step 3"),
    ("canary progressing", with_(AVAILABLE, rollout={
        "strategy": "canary", "phase": "Progressing", "step": 1, "message": "weight 25"},
        conditions=conditions(condition("Available", "True"),
                              condition("Progressing", "True", "CanaryStep", "step 2: weight 25"))),
     3, "Progressing", "weight 25"),
    ("canary promoted", with_(AVAILABLE, rollout={
        "strategy": "canary", "phase": "Promoted", "step": 5, "message": "100%"}), 3, "Healthy",
     "3/3"),
    ("no conditions yet", {"observedGeneration": 3}, 3, "Progressing", "availability"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "generation", "expected", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_health(
    status: dict[str, Any] | None, generation: int, expected: str, message: str
) -> None:
    result = health(mapp(status, generation))
    assert result["status"] == expected, result
    assert message in result["message"], result


def test_every_argocd_health_status_that_applies_is_covered() -> None:
    assert {case[3] for case in CASES} == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_rendered_argocd_cm_carries_the_script_for_marathonapp() -> None:
    kubectl = build_binaries() / "kubectl"
    rendered = subprocess.run(
        [str(kubectl), "kustomize", str(REPO / "deploy/argocd")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    config_map = next(
        d for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "argocd-cm"
    )  # fmt: skip
    assert config_map["data"][KEY] == SCRIPT
