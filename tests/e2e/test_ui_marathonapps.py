"""The MarathonApps page against the real testenv control plane.

Three MarathonApps are created in a namespace of this test and their status is written with
``kubectl patch --subresource=status`` (a canary at 25 % with an analysis result and a Marathon
deployment in progress, an autoscaled worker, a flapping app); a real app process
(``orchestrator app``, KUBECONFIG = testenv's) serves them on ``/api/platform/marathonapps``,
and the UI's page shows them in headless Chromium (``ui/e2e/marathonapps.mjs``, 1280x800),
with screenshots docs/screenshots/platform-marathonapps.png (the list),
platform-marathonapp-canary.png and platform-marathonapp-autoscaled.png (docs/ui.md shows them).

As in test_ui_platform.py, the session's operator is held stopped while the test runs (it
would write the apps' status from their missing cluster), and a thread re-patches a status
someone else changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testenv.kube import KubeTestEnv
from testenv.monitor_app import MonitorAppProcess, UiNotBuilt, build_ui
from testenv.operator import OperatorProcess
from testenv.screenshots import shrink_all

from .test_ui_platform import _get, _kubectl, _patch_status, _StatusHolder

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "marathonapps-e2e-token"
T0 = "2026-12-03T20:00:00Z"


def _condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": T0,
    }


def _marathon(app_id: str, **counts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "appId": app_id,
        "version": "2026-12-03T20:00:00.000Z",
        "instances": 4,
        "staged": 0,
        "running": 4,
        "healthy": 4,
        "unhealthy": 0,
        "relaunches": 0,
        "flapping": False,
    }
    return {**base, **counts}


SHOP_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "marathon": _marathon(
        "/shop",
        staged=1,
        healthy=3,
        unhealthy=1,
        deployment={
            "id": "5ed4c0c5-9ff8-4a6f-a0ee-a0b9e6f6c2a3",
            "currentStep": 2,
            "totalSteps": 2,
            "steps": ["StartApplication /shop-canary", "ScaleApplication /shop-canary"],
        },
    ),
    "rollout": {
        "strategy": "canary",
        "phase": "Analyzing",
        "step": 3,
        "weights": {"/shop": 75, "/shop-canary": 25},
        "analysis": [
            {"step": 1, "metric": "errorRate", "value": 0.002, "limit": 0.01, "result": "Pass"},
            {"step": 3, "metric": "latencyP99Ms", "value": 120.0, "limit": 500.0, "result": "Pass"},
        ],
        "stableVersion": "1.4.1",
        "canaryVersion": "1.4.2",
        "message": "step 3 of 8: analysing the canary at 25% of the traffic",
    },
    "conditions": [
        _condition("Accepted", "True", "Accepted", "the spec is valid"),
        _condition("Available", "True", "Available", "3 of 4 instances healthy"),
        _condition("Progressing", "True", "CanaryStep", "canary at 25%, analysis 2 of 3"),
        _condition("Degraded", "False", "NotDegraded", ""),
    ],
}
WORKER_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "marathon": _marathon("/batch/worker", instances=6, running=6, healthy=6),
    "autoscaling": {
        "desiredInstances": 6,
        "lastScaleAt": "2026-12-03T20:10:00Z",
        "reason": "92% against a target of 60%: scaled up from 4 to 6 (wanted 7, at most 2 a step)",
        "metric": {"name": "cpuUtilization", "value": 0.92, "target": 0.6},
    },
    "conditions": [
        _condition("Accepted", "True", "Accepted", "the spec is valid"),
        _condition("Available", "True", "Available", "6 of 6 instances healthy"),
        _condition("Progressing", "False", "DeploymentFinished", "version 2026-12-03T20:00"),
        _condition("Degraded", "False", "NotDegraded", ""),
    ],
}
CRASHY_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "marathon": _marathon(
        "/crashy",
        instances=2,
        running=0,
        healthy=0,
        relaunches=9,
        flapping=True,
        launchDelaySeconds=34.8,
    ),
    "conditions": [
        _condition("Accepted", "True", "Accepted", "the spec is valid"),
        _condition("Available", "False", "NoHealthyInstance", "0 of 2 instances healthy"),
        _condition("Progressing", "False", "DeploymentFinished", ""),
        _condition("Degraded", "True", "Flapping", "tasks keep failing: 9 relaunches"),
    ],
}


def _mapp(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MarathonApp",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"cluster": "demo", **spec},
    }


@pytest.fixture
def namespace(kube_env: KubeTestEnv, operator: OperatorProcess) -> Iterator[str]:
    with operator.paused():
        ns = f"ui-mapps-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
        _kubectl(kube_env, "create", "namespace", ns)
        try:
            objects = [
                _mapp(ns, "shop", {
                    "app": {"id": "/shop", "cmd": "python3 -m http.server $PORT0",
                            "instances": 4, "portDefinitions": [{"port": 0}]},
                    "strategy": {"type": "canary"},
                }),
                _mapp(ns, "worker", {
                    "app": {"id": "/batch/worker", "cmd": "sleep 1000", "instances": 2},
                    "autoscaling": {"minInstances": 2, "maxInstances": 10,
                                    "target": {"cpuUtilization": 0.6}, "maxStep": 2},
                }),
                _mapp(ns, "crashy", {"app": {"id": "/crashy", "cmd": "exit 1", "instances": 2}}),
            ]  # fmt: skip
            _kubectl(
                kube_env, "apply", "-f", "-",
                input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
            )  # fmt: skip
            statuses = [
                ("marathonapps", "shop", SHOP_STATUS),
                ("marathonapps", "worker", WORKER_STATUS),
                ("marathonapps", "crashy", CRASHY_STATUS),
            ]
            for kind, name, status in statuses:
                _patch_status(kube_env, ns, kind, name, status)
            holder = _StatusHolder(kube_env, ns, statuses)
            holder.start()
            try:
                yield ns
            finally:
                holder.stopped.set()
                holder.join(30)
        finally:
            kube_env.kubectl_run("delete", "namespace", ns, "--wait=false")


@pytest.mark.kube
def test_marathonapps_page_in_chromium(
    kube_env: KubeTestEnv, namespace: str, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium", pytrace=False)
    try:
        dist = build_ui(tmp_path / "dist")
    except UiNotBuilt as e:
        pytest.fail(str(e), pytrace=False)
    with MonitorAppProcess(tmp_path, TOKEN, ui_dist=dist, kubeconfig=kube_env.kubeconfig) as app:
        # the route first: the real API server's objects, summarised
        status, body = _get(f"{app.url}/api/platform/marathonapps", token=TOKEN)
        assert status == 200, body
        mine = {i["name"]: i for i in body["items"] if i["namespace"] == namespace}
        assert set(mine) == {"shop", "worker", "crashy"}
        assert mine["shop"]["rollout"]["weights"] == {"/shop": 75, "/shop-canary": 25}
        assert mine["worker"]["instances"]["desired"] == 6
        r = subprocess.run(
            ["node", "e2e/marathonapps.mjs", "--url", app.url, "--token", TOKEN,
             "--namespace", namespace, "--artifacts", str(SCREENSHOTS)],
            cwd=UI, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
    shots = (
        "platform-marathonapps.png",
        "platform-marathonapp-canary.png",
        "platform-marathonapp-autoscaled.png",
    )
    shrink_all([SCREENSHOTS / name for name in shots])
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from marathonapps.mjs (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    result = json.loads(lines[-1])
    assert r.returncode == 0 and result["ok"], f"{result}\n{r.stderr[-4000:]}"

    listed = result["list"]
    assert listed["headers"] == [
        "name", "namespace", "health", "app", "instances", "healthy", "deployment", "traffic",
        "readiness",
    ]  # fmt: skip
    shop, worker, crashy = listed["shop"], listed["worker"], listed["crashy"]
    assert shop["health"]["text"] == "Progressing" and "h-warn" in shop["health"]["badge"]
    assert shop["instances"]["text"] == "4/4"
    assert shop["healthy"]["text"] == "3 (1 unhealthy)"
    assert shop["deployment"]["text"] == "step 2 of 2"
    assert shop["weights"]["text"] == "/shop 75% · /shop-canary 25%"
    assert worker["health"]["text"] == "Available" and "h-ok" in worker["health"]["badge"]
    assert worker["instances"]["text"] == "6/6" and worker["weights"]["text"] == "—"
    assert crashy["health"]["text"] == "Degraded" and "h-bad" in crashy["health"]["badge"]
    assert crashy["instances"]["text"] == "0/2" and crashy["deployment"]["text"] == "—"

    detail = result["shop"]
    assert detail["weights"] == ["/shop 75%", "/shop-canary 25%"]
    assert detail["barWidths"] == ["75%", "25%"]
    assert detail["analysis"] == ["1 errorRate 0.002 0.01 Pass", "3 latencyP99Ms 120 500 Pass"]
    assert detail["steps"] == [
        {"text": "StartApplication /shop-canary", "current": None},
        {"text": "ScaleApplication /shop-canary", "current": "step"},
    ]
    assert detail["instances"].startswith("4 running of 4") and "1 unhealthy" in detail["instances"]
    assert detail["rolloutPhase"] == "Analyzing canary · step 3"
    assert any(
        c.startswith("Progressing True CanaryStep canary at 25%") for c in detail["conditions"]
    )

    assert result["worker"]["desired"] == "6"
    assert result["worker"]["reason"].startswith("92% against a target of 60%: scaled up from 4")
    assert "cpuUtilization 92% / 60%" in result["worker"]["metric"]
    assert result["reloads"] == 0
    for name in shots:
        assert (SCREENSHOTS / name).stat().st_size > 0
