"""The Helm chart with a real helm (built from its Go module by scripts/build-helm.sh):
the chart check of `make lint` reports a real difference, bad values get a clear error,
the packaged chart carries the generated CRDs, and install.yaml is kustomize's k8s/base
with the release's image tag. tests/e2e/test_helm_install.py installs the chart."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.kube import build_binaries

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "orchestrator"


@pytest.fixture(scope="module")
def helm() -> Path:
    built = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-helm.sh")], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr[-4000:]
    return Path(built.stdout.strip().splitlines()[-1])


def _template(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), "template", "orchestrator", str(CHART), "-n", "orchestrator-system", *args],
        capture_output=True,
        text=True,
    )


def _objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def test_the_chart_check_names_a_value_that_differs_from_the_overlay(helm: Path) -> None:
    """scripts/check_chart.py (run by make lint) fails, naming the field, when the chart
    renders something the overlay does not."""
    check = [sys.executable, str(REPO / "scripts" / "check_chart.py"),
             "--values", str(CHART / "ci" / "prod-values.yaml"),
             "--kustomize", "k8s/overlays/prod"]  # fmt: skip
    same = subprocess.run(check, capture_output=True, text=True, cwd=REPO)
    assert same.returncode == 0, same.stderr
    differs = subprocess.run(
        [*check, "--set", "operator.resources.limits.cpu=3"], capture_output=True, text=True
    )
    assert differs.returncode == 1
    assert (
        "Deployment orchestrator-system/orchestrator: "
        ".spec.template.spec.containers[0].resources.limits.cpu: helm 3 != kustomize '2'"
    ) in differs.stderr, differs.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # values.schema.json: a typo, a namespace that is no DNS label, a digest that is none
        (["--set", "watchNamespace=a"], "additional properties 'watchNamespace' not allowed"),
        (["--set", "watchNamespaces={Team_A}"], "at '/watchNamespaces/0': 'Team_A' does not match"),
        (["--set", "image.digest=latest"], "at '/image/digest': 'latest' does not match"),
        (["--set", "operator.logFormat=xml"], "at '/operator/logFormat'"),
        # the template: what a schema cannot say
        (["--set", "watchNamespaces={a,a}", "--set", "syncController.enabled=false"],
         '"a" is listed twice'),
    ],
)  # fmt: skip
def test_bad_values_are_refused_with_a_clear_message(
    helm: Path, values: list[str], message: str
) -> None:
    result = _template(helm, *values)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_namespace_scoped_rights_go_to_each_served_namespace(helm: Path) -> None:
    result = _template(helm, "--set", "watchNamespaces={team-a,team-b}")
    assert result.returncode == 0, result.stderr
    objects = _objects(result.stdout)
    roles = {
        (o["kind"], o["metadata"]["namespace"]) for o in objects if o["kind"].startswith("Role")
    }
    # the operator's and the sync controller's (its own account), in each served namespace
    assert roles == {(kind, ns) for kind in ("Role", "RoleBinding") for ns in ("team-a", "team-b")}
    assert sorted(
        o["metadata"]["name"] for o in objects if o["kind"] == "Role"
    ) == ["orchestrator", "orchestrator", "orchestrator-sync-controller",
          "orchestrator-sync-controller"]  # fmt: skip
    # cluster-wide: only the operator's, and only what has no namespace
    cluster_roles = [o for o in objects if o["kind"] == "ClusterRole"]
    assert [o["metadata"]["name"] for o in cluster_roles] == ["orchestrator"]
    cluster_wide = {r for rule in cluster_roles[0]["rules"] for r in rule["resources"]}
    assert cluster_wide == {"customresourcedefinitions", "namespaces", "nodes"}
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == 2  # the operator's and the sync controller's
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["args"][-4:] == ["--namespace", "team-a", "--namespace", "team-b"]


def test_the_packaged_chart_carries_the_generated_crds_and_alerts(
    helm: Path, tmp_path: Path
) -> None:
    """files/crds and files/prometheusrule.yaml are symlinks; helm package stores their
    contents, so the published chart needs nothing outside it."""
    result = subprocess.run(
        [str(helm), "package", str(CHART), "-d", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    [package] = tmp_path.glob("orchestrator-*.tgz")
    with tarfile.open(package) as archive:
        for name in sorted(p.name for p in (REPO / "crds").glob("*.yaml")):
            member = archive.extractfile(f"orchestrator/files/crds/{name}")
            assert member is not None
            assert member.read() == (REPO / "crds" / name).read_bytes()
        rule = archive.extractfile("orchestrator/files/prometheusrule.yaml")
        assert rule is not None
        expected = REPO / "deploy" / "monitoring" / "prometheusrule.yaml"
        assert rule.read() == expected.read_bytes()
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "x",
            str(package),
            "--set",
            "monitoring.prometheusRule.enabled=true",
        ],
        capture_output=True,
        text=True,
    )
    assert rendered.returncode == 0, rendered.stderr
    kinds = sorted(o["kind"] for o in _objects(rendered.stdout))
    crd_count = len(list((REPO / "crds").glob("*.yaml")))  # one per kind
    assert kinds.count("CustomResourceDefinition") == crd_count and "PrometheusRule" in kinds


def test_install_yaml_is_the_kustomize_base_with_the_release_tag() -> None:
    kubectl = build_binaries() / "kubectl"
    rendered = subprocess.run(
        ["bash", str(REPO / "scripts" / "render-install.sh"), "1.2.3"],
        capture_output=True, text=True, env={**os.environ, "KUBECTL": str(kubectl)},
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    base = subprocess.run(
        [str(kubectl), "kustomize", str(REPO / "k8s" / "base")], capture_output=True, text=True
    )
    assert base.returncode == 0, base.stderr
    expected = base.stdout.replace(
        "ghcr.io/orchestrator-dev/orchestrator:latest",
        "ghcr.io/orchestrator-dev/orchestrator:1.2.3",
    )
    assert _objects(rendered.stdout) == _objects(expected)
    assert "orchestrator:1.2.3" in rendered.stdout
    refused = subprocess.run(
        ["bash", str(REPO / "scripts" / "render-install.sh"), "latest; rm -rf /"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "is not a release version" in refused.stderr
