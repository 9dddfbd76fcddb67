"""The operator's ORCHESTRATOR_ settings as the shipped manifests set them: k8s/base's
Deployment, then an overlay's JSON patches that add to its env (read as kustomize would
apply them; `make lint` checks that the Helm chart renders the same)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def operator_environment(overlay: str | None = None) -> dict[str, str]:
    """The ORCHESTRATOR_ variables of k8s/base's operator, with `overlay`'s additions."""
    deployment = yaml.safe_load((REPO / "k8s/base/deployment.yaml").read_text())
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    environ = {e["name"]: str(e["value"]) for e in env if e["name"].startswith("ORCHESTRATOR_")}
    if overlay is None:
        return environ
    kustomization = yaml.safe_load(
        (REPO / "k8s/overlays" / overlay / "kustomization.yaml").read_text()
    )
    for patch in kustomization.get("patches", []):
        for operation in yaml.safe_load(patch["patch"]):
            value = operation.get("value")
            if isinstance(value, dict) and str(value.get("name", "")).startswith("ORCHESTRATOR_"):
                environ[value["name"]] = str(value["value"])
    return environ
