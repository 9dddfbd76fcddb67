"""The image, docker-compose.yml and the GitHub workflows, checked with real tools as far as
this machine allows (no registry to pull base images from, no GitHub runner):

- `docker-compose config` (Debian's docker-compose) accepts docker-compose.yml, with and
  without the `mesos` profile, and `promtool check config` its Prometheus configuration;
- every command line that the compose services, the operator Deployment and the monitoring
  Rollout give the image is accepted by the real argument parsers of those commands;
- the Dockerfile is multi-stage on the pinned python:3.11-slim-bookworm (and a pinned node
  image for the UI), runs as a numeric non-root user, has `orchestrator` as entry point, and
  copies only what .dockerignore lets in;
- actionlint (built from its Go module) accepts .github/workflows;
- the image itself, built offline by a private Docker Engine (tests/fixtures/docker.py) with
  BuildKit: the Python base made locally (scripts/make-base-image.sh: debootstrap + `docker
  import`, cached), wheels made on the host (build/wheels), the UI built on the host
  (build/ui-dist); the image runs `--help`, as uid 10001, and its monitoring app serves the UI
  from the path its `--ui-dist` default names.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.cli import build_parser
from sim.cli import parse_command as parse_sim_command
from testenv.docker import DockerEngine

from .delivery_crds import cache_root

REPO = Path(__file__).resolve().parents[2]
ACTIONLINT = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"
BASE = "python:3.11-slim-bookworm"
NODE_BASE = "node:20-bookworm-slim"
LOCAL_BASE = "orchestrator-base:bookworm-py311"
OFFLINE_IMAGE = "orchestrator:offline-test"


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
    return build_parser()


def _parses(argv: list[str]) -> argparse.Namespace:
    if argv[:3] == ["python", "-m", "sim"]:
        return parse_sim_command(argv[3:])
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


def _resolve(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], value)


def _build_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """Every ARG default of the Dockerfile (global and per stage; the names do not clash)."""
    return dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )


def test_dockerfile_is_multi_stage_pinned_non_root_with_orchestrator_entrypoint() -> None:
    instructions = _dockerfile()
    args = _build_args(instructions)
    stages: list[str] = []
    for keyword, rest in instructions:
        if keyword != "FROM":
            continue
        image = _resolve(rest.split()[0], args)
        # A pinned base, `scratch`, or an earlier stage (the UI stage chosen by ARG UI).
        assert image in (BASE, NODE_BASE, "scratch") or image in stages, rest
        if " AS " in rest.upper():
            stages.append(rest.split()[-1])
    assert {"ui-node", "ui-prebuilt", "ui", "build"} <= set(stages)
    assert args["UI"] == "ui-node", "real builds build the UI in the node image"
    final = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    assert _resolve(instructions[final][1].split()[0], args) == BASE
    users = [rest for keyword, rest in instructions[final:] if keyword == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    entrypoints = [rest for keyword, rest in instructions[final:] if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["orchestrator"]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule, for the patterns used here: the last pattern that matches
    the path or one of its parents wins; `!` lets a path back in."""
    import fnmatch

    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            ignored = not negated
    return ignored


def test_dockerfile_copies_only_what_the_context_contains() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    instructions = _dockerfile()
    args = _build_args(instructions)
    sources = []
    for keyword, rest in instructions:
        if keyword == "COPY" and "--from" not in rest:
            sources += [_resolve(source, args) for source in rest.split()[:-1]]
    assert sources
    optional = [s for s in sources if "[" in s]  # patterns that may match nothing
    assert optional == ["buil[d]/wheel[s]"]
    built = args["UI_DIST"]  # ui/dist exists once the UI is built (cd ui && npm run build)
    for source in sources:
        if source not in optional and source != built:
            assert (REPO / source).exists(), source
        path = re.sub(r"\[(\w)\]", r"\1", source)
        assert not _ignored(path, patterns), f"{source} is excluded by .dockerignore"
    for allowed in ("build/wheels/x.whl", "build/ui-dist/index.html", "ui/src/App.tsx"):
        assert not _ignored(allowed, patterns), allowed
    for heavy in (".git", ".venv", "tests", "testenv", ".testenv", "ui/node_modules", "build/lib"):
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


# --- the image, built offline by a private Docker Engine --------------------------------------


def _docker_cli() -> str:
    """Debian's docker CLI (package docker.io, the same version as dockerd): its built-in
    BuildKit client needs no buildx plugin. A newer CLI elsewhere on PATH may lack buildx."""
    debian = Path("/usr/bin/docker")
    binary = str(debian) if debian.exists() else shutil.which("docker")
    assert binary, "docker CLI not found: install the Debian package docker.io"
    return binary


def _run(cmd: list[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=timeout, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd)} exited with {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


@pytest.fixture(scope="module")
def offline_image(docker_engine: DockerEngine) -> Iterator[tuple[str, dict[str, str]]]:
    """Builds the Dockerfile as docs/delivery.md says for offline builds; yields the image tag
    and the environment that points the docker CLI at the private engine."""
    import sys

    env = {
        **os.environ,
        "DOCKER_HOST": docker_engine.base_url,
        "DOCKER": _docker_cli(),
        "DOCKER_BUILDKIT": "1",
    }
    # Wheels for the package, its dependencies and its build backend, made on the host.
    wheels = ["wheel", "-q", str(REPO), "setuptools", "-w", str(REPO / "build/wheels")]
    _run([sys.executable, "-m", "pip", *wheels], timeout=600)
    # The UI, built on the host into build/ui-dist (ui/dist is left to the UI's own tests).
    if not (REPO / "ui/node_modules/.package-lock.json").exists():
        _run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REPO / "ui", timeout=600)
    _run(
        ["npm", "run", "build", "--", "--outDir", str(REPO / "build/ui-dist")],
        cwd=REPO / "ui",
        timeout=600,
    )
    # The Python base: debootstrap (first run, about 1.5 min) or the cached rootfs tarball.
    make_base = ["bash", str(REPO / "scripts/make-base-image.sh"), LOCAL_BASE]
    base = _run(make_base, env=env, timeout=900)
    assert base.stdout.strip() == LOCAL_BASE, base.stdout + base.stderr
    build_args = {"PYTHON_IMAGE": LOCAL_BASE, "UI": "ui-prebuilt", "UI_DIST": "build/ui-dist"}
    build = [env["DOCKER"], "build", "--progress=plain", "-t", OFFLINE_IMAGE]
    for name, value in build_args.items():
        build += ["--build-arg", f"{name}={value}"]
    _run([*build, str(REPO)], env=env, timeout=900)
    yield OFFLINE_IMAGE, env


def _docker(env: dict[str, str], *args: str) -> str:
    return _run([env["DOCKER"], *args], env=env, timeout=120).stdout


@pytest.mark.docker
@pytest.mark.timeout(1200)  # the first one builds the image: ~6 min cold on a busy machine
def test_offline_image_runs_help_with_every_subcommand(
    offline_image: tuple[str, dict[str, str]],
) -> None:
    image, env = offline_image
    out = _docker(env, "run", "--rm", image, "--help")
    assert out.startswith("usage: orchestrator"), out
    # Every subcommand of the CLI in this checkout, whatever they are by now.
    commands = next(
        action.choices
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    assert set(commands) >= {"run", "crds", "zk-sync", "probe", "app"}
    assert "{" + ",".join(commands) + "}" in out, out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ")}
    assert set(commands) <= listed, out
    # The default command is --help too; the simulator runs from the working directory.
    assert _docker(env, "run", "--rm", image) == out
    sim = _docker(env, "run", "--rm", "--entrypoint", "python", image, "-m", "sim", "--help")
    assert sim.startswith("usage:"), sim


@pytest.mark.docker
@pytest.mark.timeout(1200)  # the first one builds the image: ~6 min cold on a busy machine
def test_offline_image_runs_as_a_non_root_numeric_user(
    offline_image: tuple[str, dict[str, str]],
) -> None:
    image, env = offline_image
    config = json.loads(_docker(env, "image", "inspect", "--format", "{{json .Config}}", image))
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["orchestrator"]
    ids = _docker(env, "run", "--rm", "--entrypoint", "id", image).strip()
    assert ids.startswith("uid=10001(orchestrator) gid=10001(orchestrator)"), ids


_SERVE_UI = """
import argparse, json, subprocess, sys, time, urllib.request
from orchestrator_operator.monitor.app.main import add_app_parser

parser = argparse.ArgumentParser()
add_app_parser(parser.add_subparsers(dest="command"))
ui_dist = parser.parse_args(["app"]).ui_dist
app = subprocess.Popen(["orchestrator", "app", "--listen", "127.0.0.1", "--port", "4040",
                        "--token", "t"])
try:
    for _ in range(100):
        try:
            index = urllib.request.urlopen("http://127.0.0.1:4040/").read().decode()
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("the app did not answer")
    assets = {}
    for line in index.split('"'):
        if line.startswith("/assets/"):
            assets[line] = len(urllib.request.urlopen("http://127.0.0.1:4040" + line).read())
    print(json.dumps({"ui_dist": ui_dist, "index": index, "assets": assets}))
finally:
    app.terminate()
    app.wait()
"""


@pytest.mark.docker
@pytest.mark.timeout(1200)  # the first one builds the image: ~6 min cold on a busy machine
def test_offline_image_serves_the_ui_from_the_app_s_default_ui_dist(
    offline_image: tuple[str, dict[str, str]],
) -> None:
    image, env = offline_image
    out = _docker(env, "run", "--rm", "--entrypoint", "python", image, "-c", _SERVE_UI)
    served = json.loads(out.strip().splitlines()[-1])
    assert served["ui_dist"] == "/opt/orchestrator/ui"  # $ORCHESTRATOR_UI_DIST of the image
    host = REPO / "build/ui-dist"
    assert served["index"] == (host / "index.html").read_text()
    expected = {
        f"/assets/{p.name}": p.stat().st_size
        for p in (host / "assets").iterdir()
        if f"/assets/{p.name}" in served["index"]
    }
    assert expected and served["assets"] == expected
    listing = _docker(env, "run", "--rm", "--entrypoint", "ls", image, "/opt/orchestrator/ui")
    assert set(listing.split()) == {"index.html", "assets"}


# A seccomp profile that allows everything but setns(2): what a runtime profile without
# the CAP_SYS_ADMIN exception would do to the probe.
_SETNS_DENIED = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["setns"], "action": "SCMP_ACT_ERRNO"}],
}
_PROBE_TOKEN = "seccomp-probe-token"


def _docker_logs(env: dict[str, str], name: str) -> str:
    """A container's stdout and stderr (the probe logs to stderr)."""
    result = _run([env["DOCKER"], "logs", name], env=env, timeout=60)
    return result.stdout + result.stderr


def _pod_as_docker_flags(daemonset: dict[str, Any]) -> list[str]:
    """`docker run` flags giving a container what the ProbeFleet's DaemonSet gives its pod:
    host network and PIDs, the user, a read-only root, no privilege escalation, exactly its
    capabilities, and its seccomp profile (RuntimeDefault: Docker's default profile, the one
    containerd's RuntimeDefault is ported from; so no --security-opt seccomp flag)."""
    pod = daemonset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    security = container["securityContext"]
    profile = (pod.get("securityContext") or {}).get("seccompProfile")
    assert (security.get("seccompProfile") or profile) == {"type": "RuntimeDefault"}
    flags = ["--network", "host"] if pod.get("hostNetwork") else []
    flags += ["--pid", "host"] if pod.get("hostPID") else []
    flags += ["--user", str(security["runAsUser"])] if "runAsUser" in security else []
    flags += ["--read-only"] if security.get("readOnlyRootFilesystem") else []
    if security.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    for cap in security["capabilities"]["drop"]:
        flags += ["--cap-drop", cap]
    for cap in security["capabilities"].get("add", []):
        flags += ["--cap-add", cap]
    return flags


@pytest.mark.docker
@pytest.mark.timeout(1200)  # the first one builds the image: ~6 min cold on a busy machine
def test_the_probe_sees_other_containers_connections_under_the_runtime_default_seccomp(
    offline_image: tuple[str, dict[str, str]],
    docker_engine: DockerEngine,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    """The probe's pod runs under `seccompProfile: RuntimeDefault` (issue 17 point 12): the
    image's probe, in a container made as the DaemonSet makes it (all collectors), under
    Docker's default profile, enters the other containers' network namespaces (setns,
    allowed there with CAP_SYS_ADMIN, for sock_diag) and reports the connection between two
    containers as an edge, without the warning it logs when it cannot. The control: the
    same probe under a profile that refuses only setns logs that warning (and falls back to
    /proc, so the edge still shows): the check sees a profile that takes setns away."""
    import sys
    import time

    import httpx

    from orchestrator_operator.models.probefleet import ProbeFleetSpec
    from orchestrator_operator.operator.builders.probefleet import fleet_owner, probe_daemonset
    from testenv.processes import free_port

    image, env = offline_image
    options = json.loads(_docker(env, "info", "--format", "{{json .SecurityOptions}}"))
    assert any("name=seccomp" in option for option in options), options
    flags = _pod_as_docker_flags(probe_daemonset(fleet_owner("mon", "ns", "u"), ProbeFleetSpec()))
    socket = docker_engine.base_url.removeprefix("unix://")
    (tmp_path / "token").write_text(_PROBE_TOKEN)
    (tmp_path / "setns-denied.json").write_text(json.dumps(_SETNS_DENIED))
    client = docker_engine.client()
    started: list[Any] = []
    apps: list[subprocess.Popen[bytes]] = []

    def probe_with(name: str, *seccomp: str) -> tuple[str, str]:
        """A fresh app on loopback and the probe container reporting to it."""
        port = free_port()
        command = [sys.executable, "-m", "orchestrator_operator.cli", "app", "--listen",
                   "127.0.0.1", "--port", str(port), "--token", _PROBE_TOKEN]  # fmt: skip
        apps.append(subprocess.Popen(command))
        _docker(env, "run", "-d", "--name", name, *flags, *seccomp,
                "-v", f"{socket}:/var/run/docker.sock", "-v", f"{tmp_path}:/run/probe:ro",
                image, "probe", "--app", f"http://127.0.0.1:{port}", "--interval", "1",
                "--hostname", name, "--token-file", "/run/probe/token")  # fmt: skip
        return f"http://127.0.0.1:{port}", name

    def containers(app: str) -> dict[str, Any]:
        try:
            answer = httpx.get(
                f"{app}/api/topology/containers",
                headers={"Authorization": f"Bearer {_PROBE_TOKEN}"},
                timeout=5,
            )
        except httpx.HTTPError:
            return {}
        nodes: dict[str, Any] = answer.json()["nodes"] if answer.status_code == 200 else {}
        return nodes

    def wait(what: str, check: Any, seconds: float = 90) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if found := check():
                return found
            time.sleep(1)
        logs = [_docker_logs(env, name)[-2000:] for name in probes]
        raise AssertionError(f"timed out waiting for {what}; probe logs: {logs}")

    probes: list[str] = []
    try:
        server = client.containers.run(
            busybox_image,
            ["sh", "-c", "echo ok > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"],
            detach=True, name="seccomp-server",
        )  # fmt: skip
        started.append(server)
        server.reload()
        ip = server.attrs["NetworkSettings"]["IPAddress"]
        # an HTTP connection held open, re-opened in a loop
        loop = f"while true; do sleep 30 | nc {ip} 8080; sleep 0.2; done"
        caller = client.containers.run(
            busybox_image, ["sh", "-c", loop], detach=True, name="seccomp-client"
        )
        started.append(caller)
        src, dst = f"container:{caller.id}", f"container:{server.id}"

        def edge(app: str) -> bool:
            node = containers(app).get(src) or {}
            return dst in node.get("adjacency", [])

        refused = "sock_diag: cannot enter"
        # Control: a profile refusing setns. The probe says it cannot enter the containers'
        # namespaces and falls back to /proc (the edge still shows, at a higher cost).
        app, name = probe_with("probe-setns-denied", "--security-opt",
                               f"seccomp={tmp_path / 'setns-denied.json'}")  # fmt: skip
        probes.append(name)
        wait("the edge under the setns-denied profile", lambda: edge(app))
        logs = _docker_logs(env, name)
        assert refused in logs and "Operation not permitted" in logs, logs[-3000:]
        _docker(env, "rm", "-f", name)

        app, name = probe_with("probe-runtime-default")
        probes.append(name)
        assert wait("the client->server edge under the default profile", lambda: edge(app))
        time.sleep(3)  # a few more reports, each entering every namespace again
        assert refused not in _docker_logs(env, name)
        seccomp = _docker(env, "inspect", "--format", "{{json .HostConfig.SecurityOpt}}", name)
        assert "seccomp" not in seccomp, seccomp  # the engine's default profile applied
    finally:
        for name in probes:
            subprocess.run([env["DOCKER"], "rm", "-f", name], env=env, capture_output=True,
                           check=False)  # fmt: skip
        for container in started:
            container.remove(force=True)
        for process in apps:
            process.terminate()
            process.wait(timeout=20)
        client.close()
