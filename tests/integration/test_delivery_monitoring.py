"""deploy/monitoring checked with Prometheus' own tools (Debian package `prometheus`):
`promtool check rules` and `promtool test rules` (a unit test for every alert) on the
PrometheusRule's groups; every Grafana panel query and every canary analysis query parses
(promtool checks them as recording rules); every orchestrator metric they name is one the
operator, the sync engine or the monitoring app exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy/monitoring"
RULE_TESTS = REPO / "tests/promtool/orchestrator-rules.test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: install the Debian package `prometheus`"
    return path


def _rule_groups() -> dict[str, Any]:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    spec: dict[str, Any] = rule["spec"]
    return spec


def _alerts() -> list[dict[str, Any]]:
    return [r for g in _rule_groups()["groups"] for r in g["rules"] if "alert" in r]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def test_promtool_check_rules(promtool: str, tmp_path: Path) -> None:
    rules = tmp_path / "orchestrator.rules.yaml"
    rules.write_text(yaml.safe_dump(_rule_groups()))
    result = _run([promtool, "check", "rules", str(rules)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_test_rules(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "orchestrator.rules.yaml").write_text(yaml.safe_dump(_rule_groups()))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = _run([promtool, "test", "rules", RULE_TESTS.name], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    names = {a["alert"] for a in _alerts()}
    assert names - fired == set()
    for alert in _alerts():
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), alert
        assert {"summary", "description"} <= set(alert["annotations"]), alert


def test_the_issue_s_alerts_exist() -> None:
    names = {a["alert"] for a in _alerts()}
    for required in ("OrchestratorOperatorDown", "OrchestratorReconcileErrors",
                     "MesosZookeeperQuorumLost", "MesosNoLeader", "ZkSyncLagHigh",
                     "ZkMigrationStalled", "MonitorProbesMissing"):  # fmt: skip
        assert required in names


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text())
        for p in sorted((MONITORING / "dashboards").glob("*.json"))
    }


def _panel_queries() -> list[tuple[str, str]]:
    queries = []
    for name, dashboard in _dashboards().items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{name}: {panel['title']} {target['refId']}", target["expr"]))
        for variable in dashboard["templating"]["list"]:
            definition = variable.get("definition", "")
            match = re.fullmatch(r"label_values\((.*), *\w+\)", definition)
            if match and match.group(1):
                queries.append((f"{name}: variable {variable['name']}", match.group(1)))
    return queries


def _analysis_queries() -> list[tuple[str, str]]:
    queries = []
    for document in yaml.safe_load_all(
        (REPO / "deploy/rollouts/analysistemplate.yaml").read_text()
    ):
        for metric in document["spec"]["metrics"]:
            queries.append(
                (f"analysis {metric['name']}", metric["provider"]["prometheus"]["query"])
            )
    return queries


def _concrete(expr: str) -> str:
    """Grafana's and Argo Rollouts' placeholders replaced by values of their kind."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
    return re.sub(r"\{\{args\.[\w-]+\}\}", "x", expr)


def test_dashboards_are_generated_and_complete() -> None:
    generator = MONITORING / "dashboards/generate.py"
    result = subprocess.run(
        [sys.executable, str(generator), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert set(_dashboards()) == {
        "orchestrator-operator.json", "orchestrator-zk-sync.json", "orchestrator-monitoring.json"
    }  # fmt: skip
    for dashboard in _dashboards().values():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), dashboard["uid"]
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["targets"], panel["title"]


def test_every_panel_and_analysis_query_parses(promtool: str, tmp_path: Path) -> None:
    queries = _panel_queries() + _analysis_queries()
    assert len(queries) > 40
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"orchestrator:query_{i}", "expr": _concrete(expr)}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "queries.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = _run([promtool, "check", "rules", str(path)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _exported_names() -> set[str]:
    """Sample names the three components (operator with its MarathonApp series, sync
    controller, app) export (counters
    with _total, histograms with _bucket/_sum/_count), from their real registries."""
    from orchestrator_operator.monitor.app.metrics import AppMetrics
    from orchestrator_operator.operator import metrics as operator_metrics
    from orchestrator_operator.operator.marathonapp import metrics as marathonapp_metrics
    from orchestrator_operator.operator.marathonapp import rollout_metrics
    from orchestrator_operator.sync.controller.metrics import controller_gauge
    from orchestrator_operator.sync.metrics import SyncMetrics

    controller_registry = CollectorRegistry()
    controller_gauge(controller_registry)
    registries = [SyncMetrics().registry, AppMetrics().registry, controller_registry]
    operator_registry = CollectorRegistry()
    for module in (operator_metrics, marathonapp_metrics, rollout_metrics):
        for value in vars(module).values():
            if hasattr(value, "collect") and hasattr(value, "_name"):
                collector: Collector = value
                operator_registry.register(collector)
    registries.append(operator_registry)
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for registry in registries:
        for family in registry.collect():
            for suffix in suffixes.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


def test_every_orchestrator_metric_named_is_exported() -> None:
    exported = _exported_names()
    expressions = [expr for _, expr in _panel_queries() + _analysis_queries()]
    expressions += [a["expr"] for a in _alerts()]
    named = {m for expr in expressions for m in re.findall(r"\borchestrator_[a-z_]+\b", expr)}
    assert named, "no orchestrator metric named"
    assert sorted(named - exported) == []
