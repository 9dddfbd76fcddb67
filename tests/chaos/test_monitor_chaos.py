"""Scenario: the monitoring pipeline (issue 20): a probe in its own node reports to the app in
another while the two are partitioned, made lossy or slow, and each is frozen or killed
(and restarted, as the kubelet would).

What the probe promises (monitor/probe/agent.py): each report is a full snapshot of the host;
one that cannot be sent is not kept (its buffer is the one report in flight), the next one
replaces it, sends back off up to max(30 s, interval). So the invariants are: the app never
answers an API read with a 5xx; neither process crash-loops; and after each fault the app has a
new report from the probe (its reports counter moves) and shows the probe's host within the
back-off bound."""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.procs import SimProcess
from testenv import faults
from testenv.faults import Network
from tests.chaos.harness import (
    FaultKind,
    Record,
    Sampler,
    assert_clean,
    pid_getter,
    run_faults,
    seed,
    time_box,
)
from tests.chaos.world import Supervisor, crash_loops, exits_since, wait_until

pytestmark = pytest.mark.timeout(1800)
SCENARIO = "monitoring pipeline"
REPO = Path(__file__).resolve().parents[2]
HOST = "chaos-probe-host"
INTERVAL = 1.0


class Program(SimProcess):
    """An `orchestrator ...` program in a node, supervised."""

    def __init__(self, name: str, args: list[str], log: Path, wrapper: list[str], token: str):
        super().__init__(name, args, log, wrapper=wrapper)
        self.token = token

    def popen_args(self) -> tuple[list[str], dict[str, str] | None, Path]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ORCHESTRATOR_MONITOR_TOKEN": self.token}
        argv = [*self.wrapper, sys.executable, "-m", "orchestrator_operator.cli", *self.args]
        return argv, env, REPO


def reports_total(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=2).text
    match = re.search(r"^orchestrator_monitor_reports_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_probe_reports_come_back_after_every_fault(tmp_path: Path) -> None:
    rng = random.Random(seed())
    record = Record(SCENARIO, seed())
    network = Network()
    token = secrets.token_urlsafe(24)
    app_node, probe_node = network.node("app"), network.node("probe")
    url = f"http://{app_node.address}:4040"
    app = Program(
        "app",
        ["app", "--listen", app_node.address, "--port", "4040", "--probe-ttl", "45"],
        tmp_path / "app.log", app_node.wrapper, token,
    )  # fmt: skip
    probe = Program(
        "probe",
        ["probe", "--app", url, "--interval", str(INTERVAL), "--no-docker", "--hostname", HOST],
        tmp_path / "probe.log", probe_node.wrapper, token,
    )  # fmt: skip
    supervisor = Supervisor()
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    fault_started = [0.0]
    try:
        app.start()
        supervisor.watch(app)
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 60, "app")
        probe.start()
        supervisor.watch(probe)
        supervisor.start()

        def host_shown() -> bool:
            hosts = http.get("/api/topology/hosts").json()
            return HOST in str(hosts)

        wait_until(host_shown, 60, "the probe's host in the app")
        mark = [reports_total(url)]

        def healthy() -> str | None:
            if not (app.running and probe.running):
                return "a process is not running"
            total = reports_total(url)
            if total <= mark[0]:
                return f"no new report since the fault ({total:.0f})"
            if not host_shown():
                return "the probe's host is not shown"
            return None

        def no_5xx() -> str | None:
            try:
                status = http.get("/api/topology/hosts", timeout=3).status_code
            except httpx.TransportError:
                return None  # frozen, cut or restarting: not an answer
            return None if status < 500 else f"GET /api/topology/hosts answered {status}"

        @contextlib.contextmanager
        def killed(proc: Program) -> Iterator[None]:
            supervisor.killed_by_fault(proc.name)
            pid = pid_getter(proc)()
            assert pid is not None
            faults.kill(pid)
            yield

        def make(kind: str) -> Any:
            def build(rng: random.Random) -> tuple[str, Any, float]:
                def fault() -> Any:
                    fault_started[0] = time.monotonic()
                    if kind == "partition":
                        return faults.partition(probe_node, [app_node], 60)
                    if kind == "loss":
                        return faults.loss(probe_node, [app_node], 50, 60)
                    if kind == "slow":
                        return faults.slow(probe_node, 16, 60)
                    proc = app if kind.endswith("app") else probe
                    if kind.startswith("stop"):
                        pid = pid_getter(proc)()
                        assert pid is not None
                        return faults.stopped(pid, 60)
                    return killed(proc)

                target = "app" if kind.endswith("app") else "probe"
                hold = 1.0 if kind.startswith("kill") else 8.0
                return target, _marked(fault, mark, url), hold

            return build

        kinds = [
            FaultKind("partition probe | app 8 s", make("partition")),
            FaultKind("50% loss probe <-> app 8 s", make("loss")),
            FaultKind("slow link (16 kbit/s) probe 8 s", make("slow")),
            FaultKind("SIGSTOP app 8 s", make("stop app")),
            FaultKind("SIGKILL app", make("kill app")),
            FaultKind("SIGSTOP probe 8 s", make("stop probe")),
            FaultKind("SIGKILL probe", make("kill probe")),
        ]
        checks = {
            "app never answers 5xx": no_5xx,
            "no crash loop": lambda: crash_loops(supervisor),
        }
        with Sampler(record, checks) as sampler:
            sampler.pids = {"app": pid_getter(app), "probe": pid_getter(probe)}
            run_faults(record, kinds, healthy, time_box(60), rng, recovery_bound=60)
            quiet = time.monotonic()
            time.sleep(10)
        if exits_since(supervisor, quiet):
            record.violate(
                "no crash loop", f"exits after the faults: {exits_since(supervisor, quiet)}"
            )
        assert_clean(record)
    finally:
        supervisor.stop()
        http.close()
        for proc in (probe, app):
            proc.stop()
        network.remove()


def _marked(fault: Any, mark: list[float], url: str) -> Any:
    """The fault, with the app's report count taken when it ends (the recovery waits for a
    report counted after it)."""

    @contextlib.contextmanager
    def run() -> Iterator[None]:
        with fault():
            yield
        try:
            mark[0] = reports_total(url)
        except httpx.HTTPError:
            mark[0] = 0.0  # the app is restarting: its counter starts again from 0

    return run
