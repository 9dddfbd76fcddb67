"""No dead panel: a real Prometheus (Debian package) scrapes, in one run, everything the
dashboards and alerts of deploy/monitoring read, and every panel query and every alert
expression returns data.

What runs (all real processes, on loopback):

- the operator (`orchestrator run`, the session's `operator` fixture) against testenv, with a
  MesosCluster `demo` whose simulated masters, agent and Marathon (`sim/`) register in a real
  one-server ZooKeeper ensemble A; the leading master is killed once, so the leader-change
  counter exists; a MarathonApp `web` runs one task in that Marathon (the MarathonApp
  series);
- the sync controller (`orchestrator zk-sync controller`) running one active migration `m1`
  from ensemble A to a second real ensemble B, over the cluster's Mesos and Marathon paths
  and a `/dashboards` root where the test keeps writing (live replication lag), with one
  znode that differs on both sides at the start (a conflict, resolved SourceWins) and one the
  engine may not read (a digest ACL: an `unreadable` error). The ZkMigration refers to a
  MesosCluster that does not exist, so the operator validates it (a ZkMigration reconcile)
  but does not drive it; the test writes status.syncRequest as the operator would;
- the monitoring app (`orchestrator app`) receiving synthetic probe reports every 2 s, one
  malformed report and one container control (refused: the synthetic probe has no control
  channel).

Prometheus scrapes them as deploy/monitoring and k8s/base make prometheus-operator scrape
them: job `orchestrator-metrics` (operator container, port 8080), job
`orchestrator-sync-controller` (sync-controller container, port 8081, relabelled by the
ServiceMonitor), job `orchestrator-monitor-app` (PodMonitor), with `namespace` and `pod`
target labels and `honor_labels: true` (the ServiceMonitor's `honorLabels`), so that the
`namespace` label of a series about a MesosCluster or a ZkMigration is that resource's
namespace.

The rules, written down:

- Dashboards: every target `expr` of every panel of every dashboard JSON under
  deploy/monitoring/dashboards/ is evaluated as Grafana draws it, a range query over the
  run (from Prometheus' first scrape of all three, before anything was created, to now,
  step 2 s), with Grafana's variables replaced as a user selecting this run's objects would:
  `$__rate_interval` -> `1m`, `$__interval` -> `15s`, and each template variable by this
  run's value (the test's namespace, cluster `demo`, migration `m1`, the app's namespace and
  pod) after checking that the variable's own `label_values(...)` query offers that value.
  A query passes when some series has some point that is a number, not NaN (a panel of NaN
  shows nothing). The sync controller runs with `--reconcile-interval 10` so that a 1m
  window sees full reconciles.
- Alerts: a healthy system keeps every alert false, so an alert expression is judged by its
  operands. The expression is split at its top-level set operators (`and`, `or`, `unless`)
  and comparisons (`==`, `!=`, `>`, `<`, `>=`, `<=`, with their `on`/`ignoring`/`bool`/
  `group_*` modifiers); `absent(E)` is replaced by `E`; number literals are dropped. Every
  remaining operand must return at least one series (NaN allowed: e.g. a ratio of two
  rates that are both zero still proves both series exist). A failure names the alert and
  the operand.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from orchestrator_operator.monitor.report import encode_report
from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv
from testenv.monitor_app import MonitorAppProcess
from testenv.operator import OperatorProcess
from testenv.prometheus import PrometheusServer
from testenv.sync_controller import SyncControllerProcess
from testenv.synthetic_reports import synthetic_report
from testenv.zookeeper import ZkEnsemble

from .test_delivery_monitoring import MONITORING, _alerts, _dashboards, _rule_groups

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper]

REPO = Path(__file__).resolve().parents[2]
GROUP_PATH = "/apis/orchestrator.dev/v1alpha1"
OPERATOR_JOB = "orchestrator-metrics"
SYNC_JOB = "orchestrator-sync-controller"
APP_JOB = "orchestrator-monitor-app"
SYSTEM_NAMESPACE = "orchestrator-system"
APP_NAMESPACE = "orchestrator-monitoring"
APP_POD = "monitor-app-0"
CLUSTER = "demo"
MIGRATION = "m1"
TOKEN = "dashboards-token"
ROOT = "/dashboards"


@dataclass
class Stack:
    prometheus: PrometheusServer
    namespace: str
    started: float  # Unix time Prometheus first scraped all three
    variables: dict[str, dict[str, str]]  # dashboard file -> variable -> value


def _wait(what: str, check: Callable[[], Any], timeout: float, log: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out: {what}\n{log()}"
        time.sleep(0.3)


def _apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr


def _get(env: KubeTestEnv, plural: str, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = env.api("GET", f"{GROUP_PATH}/namespaces/{namespace}/{plural}/{name}")
    return obj


class _App(MonitorAppProcess):
    """`orchestrator app` as a real process, fed synthetic probe reports."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, TOKEN)
        self.http = self.client()
        self.seq = 0

    def report(self) -> None:
        self.seq += 1
        for i in range(3):
            body = encode_report(synthetic_report(i, 3, containers=3, processes=10,
                                                  connections=10, seq=self.seq))  # fmt: skip
            response = self.http.post(
                "/api/report",
                content=gzip.compress(body),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
            assert response.status_code == 200, response.text

    def refused_report_and_control(self) -> None:
        malformed = self.http.post("/api/report", content=b"{not json")
        assert malformed.status_code == 400, malformed.text
        nodes = self.http.get("/api/topology/containers").json()["nodes"]
        node = urllib.parse.quote(next(iter(nodes)), safe="")  # keyed by node id
        control = self.http.post(f"/api/control/{node}/restart")
        assert control.status_code == 503, control.text  # no control channel: counted

    def stop(self, timeout: float = 15) -> None:
        self.http.close()
        super().stop(timeout)


@pytest.fixture(scope="module")
def stack(
    kube_env: KubeTestEnv, operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("dashboards")
    namespace = f"dashboards-{uuid.uuid4().hex[:6]}"
    kube_env.api("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(kube_env.kubectl_run, "delete", "namespace", namespace, "--wait=false")
        cleanup.callback(
            kube_env.kubectl_run, "delete", "mesosclusters,zkmigrations", "--all",
            "-n", namespace, "--wait=true",
        )  # fmt: skip
        a = ZkEnsemble(1, base_dir=directory / "zk-a")
        b = ZkEnsemble(1, base_dir=directory / "zk-b")
        for ensemble in (a, b):
            cleanup.callback(ensemble.stop)
            ensemble.start()

        # --- the three scraped processes, then Prometheus, before anything happens ----------
        controller = SyncControllerProcess(
            kube_env, directory / "sync-controller.log", "--namespace", namespace,
            "--state-dir", str(directory / "sync-state"), "--interval", "0.5",
            "--connect-timeout", "5", "--reconcile-interval", "10",
        )  # fmt: skip
        cleanup.callback(controller.stop)
        controller.wait_ready()
        app = _App(directory)
        app.start()
        cleanup.callback(app.stop)
        app.wait_ready()
        target_labels = {"namespace": SYSTEM_NAMESPACE, "pod": "orchestrator-0"}
        prometheus = PrometheusServer(directory, _rule_groups(), {
            OPERATOR_JOB: (operator.health_port, {**target_labels, "container": "operator"}),
            SYNC_JOB: (controller.health_port,
                       {**target_labels, "container": "sync-controller"}),
            APP_JOB: (app.port, {"namespace": APP_NAMESPACE, "pod": APP_POD}),
        })  # fmt: skip
        prometheus.start()
        cleanup.callback(prometheus.stop, 20)
        prometheus.wait("all three jobs scraped", lambda: len(prometheus.query("up == 1")) == 3)
        started = time.time()

        # --- the operator: a MesosCluster on ensemble A, one leader change -------------------
        sim = SimCluster(a.connect_string, masters=3, quorum=2, agents=1, marathons=1,
                         base_dir=directory / "sim")  # fmt: skip
        cleanup.enter_context(sim)
        _apply(kube_env, {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MesosCluster",
            "metadata": {"name": CLUSTER, "namespace": namespace},
            "spec": {
                "zookeeper": {"external": {"connectString": a.connect_string}},
                "masters": {"replicas": 3, "zkPath": sim.mesos_path},
                "marathon": {"replicas": 1, "zkPath": sim.marathon_path},
            },
        })  # fmt: skip

        def leading() -> str | None:
            status = _get(kube_env, "mesosclusters", namespace, CLUSTER).get("status") or {}
            leader: str | None = status.get("leadingMaster")
            return leader

        # A MarathonApp on the cluster's Marathon: the MarathonApp series (instances,
        # conditions, relaunches, flapping, rollout phase). Orphan: its deletion at the end
        # does not need the simulated Marathon, which stops first.
        _apply(kube_env, {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MarathonApp",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"cluster": CLUSTER, "deletionPolicy": "Orphan",
                     "app": {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 16}},
        })  # fmt: skip
        cleanup.callback(
            kube_env.kubectl_run, "delete", "marathonapps", "--all", "-n", namespace,
            "--wait=true", "--timeout=60s",
        )  # fmt: skip

        def web_running() -> bool:
            status = _get(kube_env, "marathonapps", namespace, "web").get("status") or {}
            return (status.get("marathon") or {}).get("running") == 1

        # before the failover below (a run that created the app after it found no Marathon
        # elected in the leader latch: the simulated Marathon had given up its leadership)
        _wait("MarathonApp web running in Marathon", web_running, 90, lambda: (
            f"{_get(kube_env, 'marathonapps', namespace, 'web').get('status')}\n"
            f"{operator.log_tail()}"
        ))  # fmt: skip

        first = _wait("the operator reports the leading master", leading, 90, operator.log_tail)
        index = sim.leader_index()
        assert index is not None
        sim.kill_master(index)
        _wait("the operator follows the failover", lambda: leading() not in (None, first), 60,
              operator.log_tail)  # fmt: skip

        # --- the sync controller: migration m1 from A to B ----------------------------------
        writer = KazooClient(hosts=a.connect_string, timeout=10.0)
        writer.start(timeout=30)
        cleanup.callback(writer.close)
        cleanup.callback(writer.stop)
        reader_b = KazooClient(hosts=b.connect_string, timeout=10.0)
        reader_b.start(timeout=30)
        cleanup.callback(reader_b.close)
        cleanup.callback(reader_b.stop)
        writer.create(f"{ROOT}/tick", b"0", makepath=True)
        writer.create(f"{ROOT}/conflict", b"from A")
        reader_b.create(f"{ROOT}/conflict", b"from B", makepath=True)
        writer.create(f"{ROOT}/secret", b"x", acl=[make_digest_acl("someone", "else", all=True)])
        kube_env.api("POST", f"{GROUP_PATH}/namespaces/{namespace}/zkmigrations", {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "ZkMigration",
            "metadata": {"name": MIGRATION, "namespace": namespace},
            # No such MesosCluster: the operator validates m1 but does not drive it.
            "spec": {"clusterRef": "not-here",
                     "target": {"external": {"connectString": b.connect_string}}},
        })  # fmt: skip
        request = {
            "active": True,
            "source": a.connect_string,
            "target": b.connect_string,
            "paths": [sim.mesos_path, sim.marathon_path, ROOT],
            "strategy": "SourceWins",
        }
        patched = kube_env.kubectl_run(
            "patch", "zkmigration", MIGRATION, "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": {"syncRequest": request}}),
        )  # fmt: skip
        assert patched.returncode == 0, patched.stderr

        def running() -> bool:
            status = _get(kube_env, "zkmigrations", namespace, MIGRATION).get("status") or {}
            sync = status.get("sync") or {}
            return sync.get("state") == "Running" and bool(sync.get("bootstrapped"))

        _wait("the sync engine of m1 running", running, 90, controller.log_tail)

        # --- a second reconcile of each kind ---------------------------------------------------
        # A labelled counter appears at its first increment, so rate() never sees that one:
        # the reconciles at creation alone leave the reconcile panels NaN. A user's spec
        # change (as happens in life) reconciles each kind once more.
        def reconciles(kind: str) -> float:
            result = prometheus.query(
                f'sum(orchestrator_reconcile_duration_seconds_count{{kind="{kind}"}})'
            )
            return float(result[0]["value"][1]) if result else 0.0

        def reconcile_again(kind: str, plural: str, name: str, spec: dict[str, str]) -> None:
            seen = _wait(f"Prometheus has the {kind} reconcile", lambda: reconciles(kind), 60,
                         operator.log_tail)  # fmt: skip
            changed = kube_env.kubectl_run(
                "patch", plural, name, "-n", namespace, "--type=merge",
                "-p", json.dumps({"spec": spec}),
            )  # fmt: skip
            assert changed.returncode == 0, changed.stderr
            _wait(f"Prometheus sees the {kind} reconcile again",
                  lambda: reconciles(kind) > seen, 60, operator.log_tail)  # fmt: skip

        reconcile_again("MesosCluster", "mesoscluster", CLUSTER, {"pvcRetentionPolicy": "Delete"})
        reconcile_again("ZkMigration", "zkmigration", MIGRATION, {"rollbackRetention": "48h"})

        # --- the monitoring app: reports, a refused one, a control ---------------------------
        app.report()
        app.refused_report_and_control()

        # --- traffic while Prometheus watches -------------------------------------------------
        stop = threading.Event()

        def traffic() -> None:
            n = 0
            while not stop.wait(0.25):
                n += 1
                with contextlib.suppress(Exception):
                    writer.set(f"{ROOT}/tick", str(n).encode())
                if n % 8 == 0:
                    with contextlib.suppress(Exception):
                        app.report()

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        cleanup.callback(thread.join, 10)
        cleanup.callback(stop.set)
        yield Stack(
            prometheus,
            namespace,
            started,
            {
                "orchestrator-operator.json": {"namespace": namespace, "cluster": CLUSTER},
                "orchestrator-zk-sync.json": {"namespace": namespace, "migration": MIGRATION},
                "orchestrator-monitoring.json": {"namespace": APP_NAMESPACE, "pod": APP_POD},
            },
        )


# --- dashboards ---------------------------------------------------------------------------


def _substitute(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"no value for the variable ${name} in {expr}"
        # regex metacharacters escaped for PromQL's double-quoted strings ("\\." is \.)
        return re.sub(r"([.+*?()\[\]{}|^$\\])", r"\\\\\1", values[name])

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def _label_values(prometheus: PrometheusServer, definition: str) -> set[str]:
    match = re.fullmatch(r"label_values\((.*), *(\w+)\)", definition)
    assert match, definition
    return {s["metric"].get(match.group(2), "") for s in prometheus.query(match.group(1))}


def _has_number(result: list[dict[str, Any]]) -> bool:
    return any(
        not math.isnan(float(value))
        for series in result
        for _, value in series.get("values", [series.get("value", (0, "NaN"))])
    )


def _over_the_run(stack: Stack, expr: str) -> list[dict[str, Any]]:
    """The panel's series over the run, as Grafana draws a panel over its time range."""
    result: list[dict[str, Any]] = stack.prometheus.api(
        "query_range", query=expr, start=f"{stack.started:.3f}", end=f"{time.time():.3f}",
        step="2",
    )["result"]  # fmt: skip
    return result


def _panel_failures(stack: Stack) -> tuple[int, list[str]]:
    evaluated, failures = 0, []
    for name, dashboard in _dashboards().items():
        chosen = stack.variables[name]
        values: dict[str, str] = {}
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            definition = _substitute(variable["definition"], values)
            offered = _label_values(stack.prometheus, definition)
            want = chosen[variable["name"]]
            if want not in offered:
                failures.append(f"{name}: variable ${variable['name']} ({definition}) "
                                f"offers {sorted(offered)}, not {want!r}")  # fmt: skip
            values[variable["name"]] = want
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                evaluated += 1
                expr = _substitute(target["expr"], values)
                try:
                    result = _over_the_run(stack, expr)
                except urllib.error.HTTPError as error:
                    failures.append(f"{name}: panel {panel['title']!r} {target['refId']}: "
                                    f"{expr} -> {error.read().decode()}")  # fmt: skip
                    continue
                if not _has_number(result):
                    failures.append(f"{name}: panel {panel['title']!r} {target['refId']}: "
                                    f"{expr} -> {result}")  # fmt: skip
    return evaluated, failures


def test_every_dashboard_panel_returns_data(stack: Stack) -> None:
    deadline = time.monotonic() + 90  # rates need two scrapes; the first reconciles settle
    while True:
        evaluated, failures = _panel_failures(stack)
        if not failures or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert failures == [], "dead panels:\n" + "\n".join(failures)
    assert evaluated >= 50, evaluated
    print(f"{evaluated} panel queries of {len(_dashboards())} dashboards returned data")


# --- alerts -------------------------------------------------------------------------------

_COMPARISON = re.compile(r"==|!=|>=|<=|>|<")
_SET = re.compile(r"\b(and|or|unless)\b")
_MODIFIERS = re.compile(
    r"^\s*(bool\b\s*)?((on|ignoring)\s*\([^)]*\)\s*)?((group_left|group_right)\s*(\([^)]*\))?\s*)?"
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _split_top_level(expr: str, pattern: re.Pattern[str]) -> list[str]:
    """Split at matches of `pattern` outside (), {}, [] and quotes."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            match = pattern.match(expr, i)
            if match and (pattern is _COMPARISON or _word_boundary(expr, match)):
                parts.append(expr[start:i])
                start = i = match.end()
                continue
        i += 1
    parts.append(expr[start:])
    return parts


def _word_boundary(expr: str, match: re.Match[str]) -> bool:
    before = expr[match.start() - 1] if match.start() else " "
    after = expr[match.end()] if match.end() < len(expr) else " "
    return not (before.isalnum() or before in "_:") and not (after.isalnum() or after in "_:")


def _strip(expr: str) -> str:
    expr = _MODIFIERS.sub("", expr, count=1).strip()
    while expr.startswith("(") and _closing(expr, 0) == len(expr) - 1:
        expr = expr[1:-1].strip()
    if expr.startswith("absent(") and _closing(expr, 6) == len(expr) - 1:
        return _strip(expr[7:-1])
    return expr


def _closing(expr: str, opening: int) -> int:
    depth = 0
    for i in range(opening, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[i], 0)
        if depth == 0:
            return i
    return -1


def alert_operands(expr: str) -> list[str]:
    """The operands an alert expression compares and combines (see the module docstring)."""
    expr = _strip(" ".join(expr.split()))
    for pattern in (_SET, _COMPARISON):
        parts = _split_top_level(expr, pattern)
        if len(parts) > 1:
            return [operand for part in parts for operand in alert_operands(part)]
    if _NUMBER.match(expr):
        return []
    if expr != _strip(expr):
        return alert_operands(expr)
    return [expr]


def test_alert_operands_rule() -> None:
    assert alert_operands('absent(up{job="x"} == 1)') == ['up{job="x"}']
    assert alert_operands("sum by (k) (rate(a[5m])) / sum by (k) (rate(b[5m])) > 0.1") == [
        "sum by (k) (rate(a[5m])) / sum by (k) (rate(b[5m]))"
    ]
    assert alert_operands(
        '(max by (n) (x{s="r"}) < on (n) (floor(max by (n) (x{s="d"}) / 2) + 1)'
        ' and on (n) max by (n) (x{s="d"}) > 0) or (time() - t > 1800 and t > 0)'
    ) == ['max by (n) (x{s="r"})', 'floor(max by (n) (x{s="d"}) / 2) + 1',
          'max by (n) (x{s="d"})', "time() - t", "t"]  # fmt: skip
    assert alert_operands("orchestrator_x{a=~'a|b>c'} == 0") == ["orchestrator_x{a=~'a|b>c'}"]


def test_every_alert_expression_reads_live_series(stack: Stack) -> None:
    operands = [(a["alert"], operand) for a in _alerts() for operand in alert_operands(a["expr"])]
    deadline = time.monotonic() + 90
    while True:
        failures = [
            f"alert {alert}: {operand} -> no series"
            for alert, operand in operands
            if not stack.prometheus.query(operand)
        ]
        if not failures or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert failures == [], "alerts reading nothing:\n" + "\n".join(failures)
    assert {alert for alert, _ in operands} == {a["alert"] for a in _alerts()}
    print(f"{len(operands)} operands of {len(_alerts())} alert expressions returned data")


def test_every_rule_evaluates_and_nothing_fires(stack: Stack) -> None:
    def evaluated() -> bool:
        groups = stack.prometheus.api("rules")["groups"]
        return all(r["lastEvaluation"] > "2000" for g in groups for r in g["rules"])

    stack.prometheus.wait("every rule evaluated", evaluated)
    rules = [r for g in stack.prometheus.api("rules")["groups"] for r in g["rules"]]
    assert len(rules) == len(_alerts())
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    firing = [a for a in stack.prometheus.api("alerts")["alerts"] if a["state"] == "firing"]
    assert firing == []


def test_the_manifests_scrape_what_this_test_scrapes() -> None:
    """The jobs above are the ones the ServiceMonitor and PodMonitor give (one Service,
    two ports: the operator's and the sync controller's, the latter relabelled)."""
    monitor = yaml.safe_load((MONITORING / "servicemonitor.yaml").read_text())
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    assert set(endpoints) == {"http-metrics", "http-sync"}
    assert all(e.get("honorLabels") for e in endpoints.values())
    jobs = [r.get("replacement") for r in endpoints["http-sync"].get("relabelings", [])
            if r.get("targetLabel") == "job"]  # fmt: skip
    assert jobs == [SYNC_JOB]
    service = yaml.safe_load((REPO / "k8s/base/service.yaml").read_text())
    assert service["metadata"]["name"] == OPERATOR_JOB
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"http-metrics": 8080, "http-sync": 8081}
