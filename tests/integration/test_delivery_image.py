"""The image, docker-compose.yml and the GitHub workflows, checked with real tools as far as
this machine allows (no registry to pull base images from, no GitHub runner):

- `docker-compose config` (Debian's docker-compose) accepts docker-compose.yml, with and
  without the `mesos` profile, and `promtool check config` its Prometheus configuration;
- every command line that the compose services, the operator Deployment and the monitoring
  Rollout give the image is accepted by the real argument parsers of those commands;
- the Dockerfile is multi-stage on the pinned python:3.11-slim-bookworm, runs as a numeric
  non-root user, has `orchestrator` as entry point, and copies only what .dockerignore lets in;
- actionlint (built from its Go module) accepts .github/workflows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.cli import build_parser
from orchestrator_operator.monitor.cli import add_monitor_parsers
from orchestrator_operator.zk.cli import add_zk_sync_parser
from sim.cli import parser as sim_parser

from .delivery_crds import cache_root

REPO = Path(__file__).resolve().parents[2]
ACTIONLINT = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"
BASE = "python:3.11-slim-bookworm"


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose not found: install the Debian package `docker-compose`"
    return subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "orchestrator"},
    )


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    result = _compose("--profile", "mesos", "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_config_accepts_the_file() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_has_two_ensembles_sync_monitoring_prometheus_grafana_and_a_mesos_profile(
    compose_config: dict[str, Any],
) -> None:
    services = compose_config["services"]
    for name in ("zk-a1", "zk-a2", "zk-a3", "zk-b1", "zk-b2", "zk-b3", "zk-sync",
                 "monitor-app", "monitor-probe", "prometheus", "grafana"):  # fmt: skip
        assert name in services and "profiles" not in services[name], name
    for name in ("mesos-master-1", "mesos-master-2", "mesos-master-3", "mesos-agent-1",
                 "marathon"):  # fmt: skip
        assert services[name]["profiles"] == ["mesos"], name
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)


def _orchestrator_parser() -> argparse.ArgumentParser:
    """The operator's CLI plus the sync engine's and the monitor's commands."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "zk-sync" not in subparsers.choices:
        add_zk_sync_parser(subparsers)
    if "app" not in subparsers.choices:
        add_monitor_parsers(subparsers)
    return parser


def _parses(argv: list[str]) -> argparse.Namespace:
    if argv[:3] == ["python", "-m", "sim"]:
        return sim_parser().parse_args(argv[3:])
    if argv[:2] == ["python", "-m"]:
        argv = argv[3:]
    elif argv[:1] == ["orchestrator"]:
        argv = argv[1:]
    return _orchestrator_parser().parse_args(argv)


def test_compose_commands_parse(compose_config: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose_config["services"].items():
        if service.get("image") != "orchestrator:dev":
            continue
        entrypoint = service.get("entrypoint") or ["orchestrator"]
        args = _parses([*entrypoint, *service["command"]])
        assert callable(getattr(args, "func", None)) or getattr(args, "role", None), name
        checked += 1
    assert checked == 8


def test_kubernetes_commands_parse() -> None:
    deployment = yaml.safe_load((REPO / "k8s/base/deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = _parses(["orchestrator", *container["args"]])
    assert args.command == "run" and args.log_format == "json" and args.health_port == 8080
    rollout = yaml.safe_load((REPO / "deploy/rollouts/rollout.yaml").read_text())
    app = rollout["spec"]["template"]["spec"]["containers"][0]
    args = _parses([*app["command"], *app["args"]])
    assert args.command == "app" and args.port == 4040


def test_promtool_checks_the_compose_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install the Debian package `prometheus`"
    result = subprocess.run(
        [promtool, "check", "config", str(REPO / "compose/prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_pinned_non_root_with_orchestrator_entrypoint() -> None:
    instructions = _dockerfile()
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    for stage in stages:
        image = stage.split()[0]
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert resolved == BASE, stage
    final = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    users = [rest for keyword, rest in instructions[final:] if keyword == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    entrypoints = [rest for keyword, rest in instructions[final:] if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["orchestrator"]


def _ignored(path: str, patterns: list[str]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.split("/")[0], p) for p in patterns)


def test_dockerfile_copies_only_what_the_context_contains() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for keyword, rest in _dockerfile():
        if keyword == "COPY" and "--from" not in rest:
            sources += rest.split()[:-1]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    for heavy in (".git", ".venv", "tests", "testenv", ".testenv"):
        assert _ignored(heavy, patterns), heavy


def _actionlint() -> Path:
    tools = cache_root() / "tools" / ACTIONLINT.rsplit("@", 1)[1]
    binary = tools / "actionlint"
    if not binary.exists():
        result = subprocess.run(
            ["go", "install", ACTIONLINT],
            env={
                **os.environ,
                "GOBIN": str(tools),
                "GOMODCACHE": str(cache_root() / "gomod"),
                "GOFLAGS": "-modcacherw",
            },
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert result.returncode == 0, f"go install {ACTIONLINT}: {result.stderr[-2000:]}"
    return binary


def test_actionlint_accepts_the_workflows() -> None:
    workflows = sorted((REPO / ".github/workflows").glob("*.yml"))
    assert {p.name for p in workflows} >= {"ci.yml", "e2e-kind.yml", "promote.yml"}
    result = subprocess.run(
        [str(_actionlint()), *map(str, workflows)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_has_lint_tests_build_scan_push_e2e_and_promotion() -> None:
    ci = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    steps = json.dumps(ci["jobs"])
    for needle in ("ruff check", "mypy", "tests/unit", "tests/integration",
                   "docker/build-push-action", "aquasecurity/trivy-action", "\"push\": true",
                   "promote.yml"):  # fmt: skip
        assert needle in steps, needle
    e2e = (REPO / ".github/workflows/e2e-kind.yml").read_text()
    assert "kind-action" in e2e and "kind load docker-image" in e2e
    promote = (REPO / ".github/workflows/promote.yml").read_text()
    assert "kustomize edit set image" in promote


def test_the_image_s_wheel_builds_with_every_module_and_the_entry_point(tmp_path: Path) -> None:
    """The Dockerfile's first stage (`pip wheel .`), without the dependencies: the wheel has
    every module of the package and the `orchestrator` console script."""
    import sys
    import zipfile

    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("orchestrator_operator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(REPO)) for p in (REPO / "orchestrator_operator").rglob("*.py")}
    assert modules - names == set()
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "orchestrator = orchestrator_operator.cli:main" in text
