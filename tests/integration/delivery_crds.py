"""The CRDs of the third-party kinds under deploy/ (ArgoCD, Argo Rollouts, prometheus-operator),
taken from those projects' Go modules through the Go module proxy (`go mod download`), each
pinned to one release and cached in $ORCHESTRATOR_CACHE (default ~/.cache/orchestrator)/gomod.

The Go toolchain is already required by testenv; nothing else is fetched.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    crd_files: tuple[str, ...]


MODULES = (
    Module(
        "github.com/argoproj/argo-cd/v3",
        "v3.1.9",
        (
            "manifests/crds/application-crd.yaml",
            "manifests/crds/applicationset-crd.yaml",
            "manifests/crds/appproject-crd.yaml",
        ),
    ),
    Module(
        "github.com/argoproj/argo-rollouts",
        "v1.8.3",
        (
            "manifests/crds/rollout-crd.yaml",
            "manifests/crds/analysis-template-crd.yaml",
            "manifests/crds/analysis-run-crd.yaml",
        ),
    ),
    Module(
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        (
            "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ),
    ),
)


def cache_root() -> Path:
    configured = os.environ.get("ORCHESTRATOR_CACHE")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "orchestrator"


def download(module: Module) -> Path:
    """The module's directory in the cache, downloading it when missing."""
    env = {
        **os.environ,
        "GOMODCACHE": str(cache_root() / "gomod"),
        "GOFLAGS": "-modcacherw",
        "GO111MODULE": "on",
    }
    with tempfile.TemporaryDirectory() as outside_any_module:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{module.path}@{module.version}"],
            cwd=outside_any_module,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    info = json.loads(result.stdout) if result.stdout.strip() else {}
    if result.returncode != 0 or "Dir" not in info:
        raise RuntimeError(
            f"go mod download {module.path}@{module.version} failed (needs Go and the Go"
            f" module proxy): {info.get('Error') or result.stderr[-2000:]}"
        )
    return Path(info["Dir"])


def third_party_crds() -> list[Path]:
    """The CRD files of every pinned module, downloaded on first use."""
    files: list[Path] = []
    for module in MODULES:
        directory = download(module)
        for name in module.crd_files:
            path = directory / name
            if not path.is_file():
                raise RuntimeError(f"{module.path}@{module.version} has no {name}")
            files.append(path)
    return files
