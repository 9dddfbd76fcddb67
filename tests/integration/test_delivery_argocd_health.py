"""The ArgoCD health check of our custom resources (deploy/argocd/health/orchestrator.lua)
runs in a real Lua 5.1 interpreter (lupa; ArgoCD's gopher-lua implements Lua 5.1) against
sample objects in each state, the way ArgoCD calls it: the object as the global `obj`, the
chunk's return value a table with `status` and `message`. The argocd-cm rendered by
kustomize carries the same script under each kind's key."""

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
SCRIPT = (REPO / "deploy/argocd/health/orchestrator.lua").read_text()
KINDS = ("MesosCluster", "ZkMigration", "ProbeFleet")


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
        "observedGeneration": 3,
    }


def resource(kind: str, status: dict[str, Any] | None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "spec": {},
    }
    if status is not None:
        obj["status"] = copy.deepcopy(status)
    return obj


MESOS_READY = {
    "phase": "Ready",
    "observedGeneration": 3,
    "conditions": [
        condition("Accepted", "True"),
        condition("ZookeeperReady", "True"),
        condition("MastersReady", "True"),
        condition("LeaderElected", "True"),
        condition("Ready", "True", "AllComponentsReady", "3/3 masters, 5/5 agents"),
    ],
}

CASES: list[tuple[str, str, dict[str, Any] | None, int, str, str]] = [
    # (id, kind, status, generation, expected status, expected message fragment)
    ("no status yet", "MesosCluster", None, 1, "Progressing", "Waiting for the operator"),
    ("ready", "MesosCluster", MESOS_READY, 3, "Healthy", "3/3 masters"),
    ("spec changed, not observed", "MesosCluster", MESOS_READY, 4, "Progressing",
     "generation 4"),
    ("progressing", "MesosCluster", {
        "phase": "Progressing", "observedGeneration": 3,
        "conditions": [condition("Accepted", "True"),
                       condition("Ready", "False", "MastersNotReady", "1/3 masters ready")],
    }, 3, "Progressing", "1/3 masters ready"),
    ("degraded", "MesosCluster", {
        "phase": "Degraded", "observedGeneration": 3,
        "conditions": [condition("Accepted", "True"),
                       condition("LeaderElected", "False", "NoLeader", "no leading master"),
                       condition("Ready", "False", "NoLeader", "no leading master")],
    }, 3, "Degraded", "no leading master"),
    ("invalid", "MesosCluster", {
        "phase": "Invalid", "observedGeneration": 3,
        "conditions": [condition("Accepted", "False", "InvalidSpec", "quorum must be 2")],
    }, 3, "Degraded", "quorum must be 2"),
    ("ready phase, Ready condition false", "MesosCluster", {
        "phase": "Ready", "observedGeneration": 3,
        "conditions": [condition("Ready", "False", "AgentsNotReady", "2/5 agents")],
    }, 3, "Progressing", "2/5 agents"),
    ("Ready condition alone, no phase", "MesosCluster", {
        "conditions": [condition("Ready", "True", "Ok", "all good")],
    }, 3, "Healthy", "all good"),
    ("pending, accepted", "ZkMigration", {
        "phase": "Pending", "observedGeneration": 3,
        "conditions": [condition("Accepted", "True", "Accepted", "waiting to start")],
    }, 3, "Progressing", "waiting to start"),
    ("running", "ZkMigration", {
        "phase": "Running", "observedGeneration": 3,
        "conditions": [condition("Accepted", "True"),
                       condition("Ready", "False", "Phase3", "masters on B")],
    }, 3, "Progressing", "masters on B"),
    ("succeeded", "ZkMigration", {
        "phase": "Succeeded", "observedGeneration": 3,
        "conditions": [condition("Accepted", "True"),
                       condition("Ready", "True", "Done", "all six phases done")],
    }, 3, "Healthy", "six phases"),
    ("failed", "ZkMigration", {
        "phase": "Failed", "observedGeneration": 3,
        "conditions": [condition("Degraded", "True", "RolledBack", "phase 4 failed")],
    }, 3, "Degraded", "phase 4 failed"),
    ("Degraded condition while running", "ZkMigration", {
        "phase": "Running", "observedGeneration": 3,
        "conditions": [condition("Degraded", "True", "SyncLag", "lag 40 s")],
    }, 3, "Degraded", "lag 40 s"),
    ("not accepted", "ProbeFleet", {
        "phase": "Pending", "conditions": [condition("Accepted", "False", "Bad", "bad spec")],
    }, 3, "Degraded", "bad spec"),
    ("pending", "ProbeFleet", {
        "phase": "Pending", "observedGeneration": 3,
        "conditions": [condition("Accepted", "True", "Accepted", "")],
    }, 3, "Progressing", "Pending"),
    ("ready", "ProbeFleet", {
        "phase": "Ready", "observedGeneration": 3,
        "conditions": [condition("Accepted", "True"),
                       condition("Ready", "True", "Ok", "3 probes reporting")],
    }, 3, "Healthy", "3 probes"),
    ("observed generation only in conditions", "ProbeFleet", {
        "phase": "Ready",
        "conditions": [condition("Ready", "True", "Ok", "3 probes reporting")],
    }, 5, "Progressing", "generation 5"),
    ("unknown phase", "ProbeFleet", {"phase": "Whatever"}, 3, "Progressing", "Whatever"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "status", "generation", "expected", "message"),
    [pytest.param(*case[1:], id=f"{case[1]}: {case[0]}") for case in CASES],
)
def test_health(
    kind: str, status: dict[str, Any] | None, generation: int, expected: str, message: str
) -> None:
    result = health(resource(kind, status, generation))
    assert result["status"] == expected, result
    assert message in result["message"], result


def test_every_state_and_phase_is_covered() -> None:
    seen = {case[4] for case in CASES}
    assert seen == {"Healthy", "Progressing", "Degraded"}
    phases = {(case[2] or {}).get("phase") for case in CASES}
    for phase in ("Pending", "Progressing", "Running", "Succeeded", "Ready", "Failed",
                  "Degraded", "Invalid"):  # fmt: skip
        assert phase in phases, phase


def test_rendered_argocd_cm_carries_the_script_for_each_kind() -> None:
    kubectl = build_binaries() / "kubectl"
    rendered = subprocess.run(
        [str(kubectl), "kustomize", str(REPO / "deploy/argocd")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    config_map = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ConfigMap")
    assert config_map["metadata"]["name"] == "argocd-cm"
    for kind in KINDS:
        assert config_map["data"][f"resource.customizations.health.orchestrator.dev_{kind}"] == (
            SCRIPT
        )
