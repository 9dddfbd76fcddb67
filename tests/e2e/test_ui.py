"""The web UI against the real app fed by a real probe and a real Docker Engine, in headless
Chromium (playwright-core, ui/e2e/ui.mjs); and the UI's Vitest unit tests.

Besides the real probe, three synthetic probes (testenv/synthetic_reports.py) report hosts
whose processes and containers talk to each other, so the process graph has edges to show.
Needs Node 20 with ``npm ci`` done in ui/ and Debian's ``chromium``; fails (never skips) when
they are missing. Screenshots of each view go to docs/screenshots/ (docs/ui.md shows them).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.monitor.report import encode_report
from testenv.docker import DockerEngine
from testenv.monitor_app import MonitorAppProcess, UiNotBuilt, build_ui
from testenv.screenshots import shrink_all
from testenv.synthetic_reports import synthetic_report

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
SCREENSHOTS = ROOT / "docs" / "screenshots"
SYNTHETIC_PROBES = 3
VIEWS = ("hosts", "containers", "processes", "pods", "services")
SHOTS = [f"{v}.png" for v in VIEWS] + [
    "containers-grouped.png",
    "container-panel.png",
    "confirm-stop.png",
    "unreachable.png",
]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "ui-e2e-token"
RO_TOKEN = "ui-e2e-read-only"


def _need_node_modules() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not installed (the UI needs Node 20)", pytrace=False)
    if not (UI / "node_modules" / ".package-lock.json").exists():
        pytest.fail("ui/node_modules is missing: run `npm ci` in ui/", pytrace=False)


@pytest.fixture(scope="module")
def ui_dist() -> Path:
    try:
        return build_ui()
    except UiNotBuilt as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def ui_app(ui_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorAppProcess]:
    # the synthetic probes report once: they must not expire while the test runs
    with MonitorAppProcess(
        tmp_path_factory.mktemp("ui-app"),
        TOKEN,
        read_only_token=RO_TOKEN,
        ui_dist=ui_dist,
        probe_ttl=3600,
    ) as app:
        with app.client() as client:
            for i in range(SYNTHETIC_PROBES):
                report = synthetic_report(
                    i, SYNTHETIC_PROBES, containers=4, processes=12, connections=14
                )
                r = client.post(
                    "/api/report",
                    content=gzip.compress(encode_report(report)),
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                )
                assert r.status_code < 300, r.text
        yield app


@pytest.fixture(scope="module")
def probe(
    ui_app: MonitorAppProcess, docker_engine: DockerEngine
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator_operator.cli",
            "probe",
            "--app",
            ui_app.url,
            "--token",
            TOKEN,
            "--interval",
            "1",
            "--docker-host",
            docker_engine.base_url,
        ],
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.docker
def test_ui_against_real_app_probe_and_docker(
    ui_app: MonitorAppProcess,
    probe: subprocess.Popen[bytes],
    docker_engine: DockerEngine,
    busybox_image: str,
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium", pytrace=False)
    client = docker_engine.client()
    container: Any = client.containers.run(
        busybox_image,
        ["sh", "-c", "echo ui-e2e-started; exec httpd -f -p 8080"],
        detach=True,
        name=f"ui-e2e-{os.getpid()}",
    )
    try:
        r = subprocess.run(
            [
                "node",
                "e2e/ui.mjs",
                "--url",
                ui_app.url,
                "--token",
                TOKEN,
                "--read-only-token",
                RO_TOKEN,
                "--container",
                container.id,
                "--artifacts",
                str(SCREENSHOTS),
                "--app-pid",
                str(ui_app.pid),
            ],
            cwd=UI,
            capture_output=True,
            text=True,
            timeout=400,
        )
        shrink_all([SCREENSHOTS / name for name in SHOTS])
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        assert lines, f"no result from ui.mjs (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
        result = json.loads(lines[-1])
        assert r.returncode == 0 and result["ok"], f"{result}\n{r.stderr[-4000:]}"
        assert result["readOnlyControls"] == 0
        assert result["containerInGraph"] is True
        assert result["grouped"]["nodes"] >= 1
        assert result["logsShown"] is True
        assert result["colourAfter"] != result["colourBefore"]
        assert "zzz-nothing" in result["sharedUrl"] and result["sharedSearch"] == "zzz-nothing"
        assert result["unreachableShown"] is True
        views = result["views"]
        assert views["hosts"]["nodes"] >= 1 + SYNTHETIC_PROBES
        assert views["containers"]["nodes"] >= 1
        # readable graphs: labels drawn, none overlapping another; the processes that talk
        # to each other are joined by edges
        for view in ("hosts", "containers", "processes"):
            assert views[view]["labels"] >= 1 and views[view]["overlaps"] == 0, views[view]
        assert views["processes"]["edges"] >= 1, views["processes"]
        # the probes run without --kubernetes: the empty views say so
        for view in ("pods", "services"):
            assert views[view]["nodes"] == 0
            assert result["empty"][view].startswith(f"No {view} reported"), result["empty"]
            assert "--kubernetes" in result["empty"][view]
        for name in SHOTS:
            assert (SCREENSHOTS / name).stat().st_size > 0
        # the container really stopped (the Docker Engine says so)
        deadline = time.monotonic() + 30
        while True:
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert container.status == "exited"
    finally:
        container.remove(force=True)
        client.close()


def test_ui_unit_tests_vitest() -> None:
    _need_node_modules()
    r = subprocess.run(
        ["npx", "--no-install", "vitest", "run"],
        cwd=UI,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CI": "1", "NO_COLOR": "1"},
    )
    assert r.returncode == 0, f"vitest failed:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert "passed" in r.stdout
