"""The autoscaler's requests-per-second measurement against a real HAProxy (Debian's
/usr/sbin/haproxy) configured as the load balancer configures it (orchestrator_operator/lb's
own plan and render: a backend `<app>_<port>` for a Marathon app with HAPROXY_0_PORT, the stats
frontend with `stats uri /stats`), in front of two real HTTP servers standing for the app's
tasks: the counter it reads is the one HAProxy keeps for the app's backend, the rate is the
requests a client sent between two readings, and the decision asks for instances by it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.lb.config import Assignment, Options, assign_slots, build_plan, render
from orchestrator_operator.operator.marathonapp import autoscale
from orchestrator_operator.operator.marathonapp.autoscale import Samples, autoscale_once, measure
from orchestrator_operator.operator.marathonapp.autoscale_plan import Metric, Policy
from testenv.processes import free_ports

HAPROXY = "/usr/sbin/haproxy"
REPO = Path(__file__).resolve().parents[2]


def _wait(what: str, check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(the Marathon app as the autoscaler reads it, its frontend URL, the stats URL)."""
    assert Path(HAPROXY).exists(), "HAProxy is missing: scripts/install-system-deps.sh"
    service, stats, task_a, task_b = free_ports(4)
    tasks = [
        {"id": f"web.{i}", "host": "127.0.0.1", "ports": [port], "state": "TASK_RUNNING"}
        for i, port in enumerate((task_a, task_b))
    ]
    app = {"id": "/web", "labels": {"HAPROXY_0_PORT": str(service)}, "tasks": tasks}
    plan = build_plan([app], {}, ["external"])
    _, slots = assign_slots(plan, Assignment(), None)
    options = Options(
        bind_address="127.0.0.1", http_port=None, stats_port=stats,
        admin_socket=str(tmp_path / "admin.sock"),
    )  # fmt: skip
    (tmp_path / "haproxy.cfg").write_text(render(plan, slots, options))
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                str(REPO / "testenv/echo_server.py"),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--text",
                "/web",
            ],
        )
        for port in (task_a, task_b)
    ]
    haproxy = subprocess.Popen([HAPROXY, "-f", str(tmp_path / "haproxy.cfg"), "-db"])
    try:
        front = f"http://127.0.0.1:{service}/"
        _wait("HAProxy and both tasks answer", lambda: _answers(front) and all(
            _answers(f"http://127.0.0.1:{p}/health") for p in (task_a, task_b)
        ))  # fmt: skip
        yield app, front, f"http://127.0.0.1:{stats}/stats;csv"
    finally:
        for process in (haproxy, *servers):
            process.terminate()
        for process in (haproxy, *servers):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)


def test_the_request_rate_is_what_haproxy_counted_for_the_apps_backend(
    lb: tuple[dict[str, Any], str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, front, stats_url = lb
    monkeypatch.setattr(autoscale, "_LB_STATS", TtlCache[str, Any](ttl_seconds=0))
    policy = Policy(1, 10, Metric.REQUESTS, 5.0, 0, 0, 10)
    with httpx.Client(timeout=5) as client:
        first, samples = measure(client, policy, app, None, stats_url, Samples(), time.time())
        assert first is None and samples.requests is not None  # one reading: no rate yet
        for _ in range(60):
            assert client.get(front).status_code == 200
        measured, later = measure(client, policy, app, None, stats_url, samples, time.time())
    assert later.requests is not None
    t0, count0 = samples.requests
    t1, count1 = later.requests
    assert count1 - count0 == 60  # HAProxy's req_tot of backend web_<port>
    assert measured is not None and measured.samples == 2
    assert measured.value == pytest.approx(60 / (t1 - t0))


def test_a_decision_from_the_load_balancers_rate(
    lb: tuple[dict[str, Any], str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two readings 60 requests apart with a target of 1e-9 requests per second per instance:
    whatever the time between them, the app wants the maximum (a real rate, not a number the
    test chose); a target no rate can reach keeps the minimum."""
    app, front, stats_url = lb
    monkeypatch.setattr(autoscale, "_LB_STATS", TtlCache[str, Any](ttl_seconds=0))
    spec = {
        "cluster": "demo",
        "app": {"id": "/web", "instances": 2},
        "autoscaling": {"minInstances": 1, "maxInstances": 4, "maxStep": 4,
                        "scaleUpCooldownSeconds": 0, "target": {"requestsPerSecond": 1e-9}},
    }  # fmt: skip
    now = datetime.now(UTC)
    with httpx.Client(timeout=5) as client:
        written, kept = autoscale_once(
            client, spec, {}, lambda _: app, None, stats_url, Samples(), now
        )  # fmt: skip
        assert written["desiredInstances"] == 2 and "no requestsPerSecond" in written["reason"]
        for _ in range(60):
            assert client.get(front).status_code == 200
        written, _ = autoscale_once(
            client, spec, {"autoscaling": written}, lambda _: app, None, stats_url, kept, now
        )  # fmt: skip
    assert written["desiredInstances"] == 4
    assert written["metric"]["name"] == "requestsPerSecond" and written["metric"]["value"] > 0
    assert "scaled up from 2 to 4" in written["reason"]
