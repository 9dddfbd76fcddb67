"""A real Prometheus (Debian package) scrapes the operator running against testenv, loads the
alert rules of deploy/monitoring and evaluates them, and executes every dashboard panel
query and canary analysis query through its HTTP API. test_delivery_dashboards.py goes
further: the operator, the sync controller and the monitoring app at work, and every panel
and alert returns data."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.operator import OperatorProcess
from testenv.processes import free_port

from .test_delivery_monitoring import _analysis_queries, _concrete, _panel_queries, _rule_groups

pytestmark = pytest.mark.kube

JOB = "orchestrator-metrics"


class Prometheus:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port, self.process, self.log = port, process, log

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def wait(self, what: str, check: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except OSError:
                pass
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{what}; log:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def prometheus(
    operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: install the Debian package `prometheus`"
    directory = tmp_path_factory.mktemp("prometheus")
    (directory / "orchestrator.rules.yaml").write_text(yaml.safe_dump(_rule_groups()))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["orchestrator.rules.yaml"],
        "scrape_configs": [
            {
                "job_name": JOB,
                "honor_labels": True,  # as the ServiceMonitor's honorLabels
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{operator.health_port}"],
                        "labels": {"namespace": "orchestrator-system", "pod": "orchestrator-0"},
                    }
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=directory,
        )  # fmt: skip
        server = Prometheus(port, process, log)
        try:
            server.wait("operator scraped and ready", lambda: server.query(
                f'up{{job="{JOB}"}} == 1 and on() orchestrator_operator_ready == 1'
            ))  # fmt: skip
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_every_alert_rule_evaluates_and_the_operator_alerts_stay_quiet(
    prometheus: Prometheus,
) -> None:
    def evaluated() -> bool:
        groups = prometheus.api("rules")["groups"]
        return all(r["lastEvaluation"] > "2000" for g in groups for r in g["rules"])

    prometheus.wait("every rule evaluated once", evaluated)
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert len(rules) == sum(len(g["rules"]) for g in _rule_groups()["groups"])
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []

    def operator_alerts_inactive() -> bool:
        # Pending from the evaluations before the first scrape, cleared by the next one.
        active = {a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"]}
        return not active & {"OrchestratorOperatorDown", "OrchestratorOperatorNotReady"}

    prometheus.wait("the operator's alerts inactive while it is up and ready",
                    operator_alerts_inactive, timeout=15)  # fmt: skip


def test_every_panel_and_analysis_query_executes(prometheus: Prometheus) -> None:
    failed = []
    for title, expr in _panel_queries() + _analysis_queries():
        try:
            prometheus.query(_concrete(expr))
        except (AssertionError, OSError) as error:
            failed.append(f"{title}: {error}")
    assert failed == []


def test_operator_panels_show_the_running_operator(prometheus: Prometheus) -> None:
    queries = dict(_panel_queries())
    for title in ("orchestrator-operator.json: Operator up A",
                  "orchestrator-operator.json: Operator ready A",
                  "orchestrator-operator.json: Operator memory A"):  # fmt: skip
        result = prometheus.query(_concrete(queries[title]))
        assert result and float(result[0]["value"][1]) > 0, (title, result)
