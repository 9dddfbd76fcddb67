"""A real Prometheus (Debian package) scrapes the operator running against testenv, loads the
alert rules of deploy/monitoring and evaluates them, and executes every dashboard panel
query and canary analysis query through its HTTP API. test_delivery_dashboards.py goes
further: the operator, the sync controller and the monitoring app at work, and every panel
and alert returns data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testenv.operator import OperatorProcess
from testenv.prometheus import PrometheusServer

from .test_delivery_monitoring import _analysis_queries, _concrete, _panel_queries, _rule_groups

pytestmark = pytest.mark.kube

JOB = "orchestrator-metrics"


@pytest.fixture(scope="module")
def prometheus(
    operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    directory = tmp_path_factory.mktemp("prometheus")
    labels = {"namespace": "orchestrator-system", "pod": "orchestrator-0"}
    server = PrometheusServer(directory, _rule_groups(), {JOB: (operator.health_port, labels)})
    server.start()
    try:
        server.wait("operator scraped and ready", lambda: server.query(
            f'up{{job="{JOB}"}} == 1 and on() orchestrator_operator_ready == 1'
        ))  # fmt: skip
        yield server
    finally:
        server.stop(timeout=20)


def test_every_alert_rule_evaluates_and_the_operator_alerts_stay_quiet(
    prometheus: PrometheusServer,
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


def test_every_panel_and_analysis_query_executes(prometheus: PrometheusServer) -> None:
    failed = []
    for title, expr in _panel_queries() + _analysis_queries():
        try:
            prometheus.query(_concrete(expr))
        except (AssertionError, OSError) as error:
            failed.append(f"{title}: {error}")
    assert failed == []


def test_operator_panels_show_the_running_operator(prometheus: PrometheusServer) -> None:
    queries = dict(_panel_queries())
    for title in ("orchestrator-operator.json: Operator up A",
                  "orchestrator-operator.json: Operator ready A",
                  "orchestrator-operator.json: Operator memory A"):  # fmt: skip
        result = prometheus.query(_concrete(queries[title]))
        assert result and float(result[0]["value"][1]) > 0, (title, result)
