"""Writes the Grafana dashboards (JSON) of deploy/monitoring/dashboards from the panel lists
below; `--check` fails when the committed JSON differs (tests run it).

    python deploy/monitoring/dashboards/generate.py [--check]

Metric names are those of orchestrator_operator/operator/metrics.py (operator),
orchestrator_operator/sync/metrics.py and sync/controller/metrics.py (the sync controller: every
engine's series labelled namespace and migration, plus the engines-by-state gauge) and
orchestrator_operator/monitor/app/metrics.py (monitoring app); counters carry `_total`,
histograms `_bucket`. tests/integration/test_delivery_dashboards.py proves every panel
query returns data against the real processes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
OPERATOR_JOB = 'job="orchestrator-metrics"'
CLUSTER = 'namespace=~"$namespace", name=~"$cluster"'
POD = 'namespace=~"$namespace", pod=~"$pod"'
# The sync controller labels every engine's series with its ZkMigration (namespace, migration).
MIGRATION = 'namespace=~"$namespace", migration=~"$migration"'
SYNC_JOB = 'job="orchestrator-sync-controller"'
# MarathonApps are filtered by namespace only (the $cluster variable names MesosClusters).
APP = 'namespace=~"$namespace"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # timeseries, stat, table
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[tuple[str, str], ...]  # (name, label_values(...) query)
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = field(default=("orchestrator",))


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "refId": chr(ord("A") + i),
            **({"format": "table", "instant": True} if panel.kind == "table" else {}),
        }
        for i, query in enumerate(panel.queries)
    ]
    result: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": targets,
    }
    if panel.kind == "timeseries":
        result["options"] = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        result["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
        }
    return result


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        next_id, y, x, row_height = next_id + 1, y + 1, 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(_panel_json(panel, next_id, x, y))
            next_id, x, row_height = next_id + 1, x + panel.width, max(row_height, panel.height)
        y += row_height
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }
    ]
    for name, query in dashboard.variables:
        variables.append(
            {
                "name": name,
                "label": name,
                "type": "query",
                "datasource": DATASOURCE,
                "query": {"query": query, "refId": f"{name}-values"},
                "definition": query,
                "refresh": 2,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {},
                "sort": 1,
                "hide": 0,
            }
        )
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


OPERATOR = Dashboard(
    uid="orchestrator-operator",
    title="Orchestrator / Operator and Mesos clusters",
    description="The operator's reconciles and API use; each MesosCluster's conditions, "
    "members, leader changes and agents in maintenance.",
    variables=(
        ("namespace", "label_values(orchestrator_mesoscluster_condition, namespace)"),
        (
            "cluster",
            'label_values(orchestrator_mesoscluster_condition{namespace=~"$namespace"}, name)',
        ),
    ),
    rows=(
        Row(
            "Operator",
            (
                Panel("Operator up", (q(f"max(up{{{OPERATOR_JOB}}})"),), "stat", width=4, height=4),
                Panel(
                    "Operator ready",
                    (q("max(orchestrator_operator_ready)"),),
                    "stat",
                    width=4,
                    height=4,
                ),
                Panel(
                    "MesosClusters ready",
                    (q('sum(orchestrator_mesoscluster_condition{condition="Ready"})'),),
                    "stat",
                    width=4,
                    height=4,
                ),
                Panel(
                    "MesosClusters not ready",
                    (
                        q(
                            'count(orchestrator_mesoscluster_condition{condition="Ready"} == 0)'
                            " or vector(0)"
                        ),
                    ),
                    "stat",
                    width=4,
                    height=4,
                ),
                Panel(
                    "Operator memory",
                    (q(f"process_resident_memory_bytes{{{OPERATOR_JOB}}}", "{{pod}}"),),
                    "stat",
                    unit="bytes",
                    width=4,
                    height=4,
                ),
                Panel(
                    "Operator CPU",
                    (
                        q(
                            f"rate(process_cpu_seconds_total{{{OPERATOR_JOB}}}[$__rate_interval])",
                            "{{pod}}",
                        ),
                    ),
                    "stat",
                    unit="percentunit",
                    width=4,
                    height=4,
                ),
                Panel(
                    "Reconciles by kind and result",
                    (
                        q(
                            "sum by (kind, result) (rate(orchestrator_reconcile_total"
                            "[$__rate_interval]))",
                            "{{kind}} {{result}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Reconcile duration p50 / p99",
                    (
                        q(
                            "histogram_quantile(0.5, sum by (kind, le) (rate("
                            "orchestrator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                            "p50 {{kind}}",
                        ),
                        q(
                            "histogram_quantile(0.99, sum by (kind, le) (rate("
                            "orchestrator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                            "p99 {{kind}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Kubernetes API requests",
                    (
                        q(
                            "sum by (verb, kind) (rate(orchestrator_kube_api_requests_total"
                            "[$__rate_interval]))",
                            "{{verb}} {{kind}}",
                        ),
                    ),
                    unit="reqps",
                    width=24,
                ),
            ),
        ),
        Row(
            "Mesos clusters",
            (
                Panel(
                    "Conditions (1 = True)",
                    (
                        q(
                            f"max by (namespace, name, condition) "
                            f"(orchestrator_mesoscluster_condition{{{CLUSTER}}})"
                        ),
                    ),
                    "table",
                    width=24,
                ),
                Panel(
                    "Ready members by component",
                    (
                        q(
                            f"sum by (namespace, name, component) ("
                            f"orchestrator_mesoscluster_replicas"
                            f'{{{CLUSTER}, state="ready"}})',
                            "{{name}} {{component}} ready",
                        ),
                        q(
                            f"sum by (namespace, name, component) ("
                            f"orchestrator_mesoscluster_replicas"
                            f'{{{CLUSTER}, state="desired"}})',
                            "{{name}} {{component}} desired",
                        ),
                    ),
                ),
                Panel(
                    "Leader changes (1 h)",
                    (
                        q(
                            f"sum by (namespace, name) (increase("
                            f"orchestrator_mesoscluster_leader_changes_total{{{CLUSTER}}}[1h]))",
                            "{{namespace}}/{{name}}",
                        ),
                    ),
                ),
                Panel(
                    "Agents in maintenance",
                    (
                        q(
                            f"sum by (namespace, name, state) ("
                            f"orchestrator_mesoscluster_agents_in_maintenance{{{CLUSTER}}})",
                            "{{name}} {{state}}",
                        ),
                    ),
                ),
                Panel(
                    "ZooKeeper members ready vs. quorum",
                    (
                        q(
                            f"sum by (namespace, name) (orchestrator_mesoscluster_replicas"
                            f'{{{CLUSTER}, component="zookeeper", state="ready"}})',
                            "{{name}} ready",
                        ),
                        q(
                            f"floor(sum by (namespace, name) (orchestrator_mesoscluster_replicas"
                            f'{{{CLUSTER}, component="zookeeper", state="desired"}}) / 2) + 1',
                            "{{name}} quorum",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Marathon apps",
            (
                Panel(
                    "Instances by state",
                    (
                        q(
                            f"sum by (namespace, name, state) ("
                            f"orchestrator_marathonapp_instances{{{APP}}})",
                            "{{namespace}}/{{name}} {{state}}",
                        ),
                    ),
                    description="desired (what the operator asks of Marathon), staged, running,"
                    " healthy and unhealthy tasks of each MarathonApp.",
                ),
                Panel(
                    "Relaunched tasks",
                    (
                        q(
                            f"max by (namespace, name) ("
                            f"orchestrator_marathonapp_relaunches{{{APP}}})",
                            "{{namespace}}/{{name}}",
                        ),
                    ),
                    description="Tasks that failed and Marathon relaunched (status.marathon"
                    ".relaunches); a steep line is a flapping app.",
                ),
                Panel(
                    "Conditions (1 = True)",
                    (
                        q(
                            f"max by (namespace, name, condition) ("
                            f"orchestrator_marathonapp_condition{{{APP}}})"
                        ),
                    ),
                    "table",
                ),
                Panel(
                    "Rollout phase and flapping (1 = yes)",
                    (
                        q(
                            f"max by (namespace, name, phase) ("
                            f"orchestrator_marathonapp_rollout_phase{{{APP}}})"
                        ),
                        q(f"max by (namespace, name) (orchestrator_marathonapp_flapping{{{APP}}})"),
                    ),
                    "table",
                ),
            ),
        ),
    ),
)

SYNC = Dashboard(
    uid="orchestrator-zk-sync",
    title="Orchestrator / ZooKeeper sync and migrations",
    description="The sync controller (the orchestrator-sync-controller Deployment) and "
    "its engines, one per active ZkMigration: replication lag, operations, conflicts, "
    "sessions; the ZkMigration reconciles.",
    variables=(
        ("namespace", "label_values(orchestrator_zk_sync_connected, namespace)"),
        (
            "migration",
            'label_values(orchestrator_zk_sync_connected{namespace=~"$namespace"}, migration)',
        ),
    ),
    rows=(
        Row(
            "Replication",
            (
                Panel(
                    "Replication lag p50 / p99",
                    (
                        q(
                            f"histogram_quantile(0.5, sum by (direction, le) (rate("
                            f"orchestrator_zk_sync_replication_lag_seconds_bucket{{{MIGRATION}}}"
                            f"[$__rate_interval])))",
                            "p50 {{direction}}",
                        ),
                        q(
                            f"histogram_quantile(0.99, sum by (direction, le) (rate("
                            f"orchestrator_zk_sync_replication_lag_seconds_bucket{{{MIGRATION}}}"
                            f"[$__rate_interval])))",
                            "p99 {{direction}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Operations applied",
                    (
                        q(
                            f"sum by (op, direction) (rate(orchestrator_zk_sync_operations_total"
                            f"{{{MIGRATION}}}[$__rate_interval]))",
                            "{{op}} {{direction}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Bytes written",
                    (
                        q(
                            f"sum by (direction) (rate(orchestrator_zk_sync_bytes_total"
                            f"{{{MIGRATION}}}"
                            f"[$__rate_interval]))",
                            "{{direction}}",
                        ),
                    ),
                    unit="Bps",
                ),
                Panel(
                    "Watch events",
                    (
                        q(
                            f"sum by (side) (rate(orchestrator_zk_sync_watch_events_total"
                            f"{{{MIGRATION}}}"
                            f"[$__rate_interval]))",
                            "{{side}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Pending changes",
                    (
                        q(
                            "sum by (namespace, migration) ("
                            f"orchestrator_zk_sync_pending_changes{{{MIGRATION}}})",
                            "{{namespace}}/{{migration}}",
                        ),
                    ),
                ),
                Panel(
                    "Znodes by side",
                    (
                        q(
                            "sum by (migration, side) ("
                            f"orchestrator_zk_sync_znodes{{{MIGRATION}}})",
                            "{{migration}} {{side}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Health",
            (
                Panel(
                    "Sessions connected",
                    (
                        q(
                            "min by (namespace, migration, side) ("
                            f"orchestrator_zk_sync_connected{{{MIGRATION}}})",
                            "{{migration}} {{side}}",
                        ),
                    ),
                    width=8,
                ),
                Panel(
                    "Conflicts",
                    (
                        q(
                            f"sum by (resolution) (rate(orchestrator_zk_sync_conflicts_total"
                            f"{{{MIGRATION}}}[$__rate_interval]))",
                            "{{resolution}}",
                        ),
                        q(
                            f"sum(orchestrator_zk_sync_unresolved_conflicts{{{MIGRATION}}})",
                            "unresolved",
                        ),
                    ),
                    width=8,
                ),
                Panel(
                    "Errors",
                    (
                        q(
                            f"sum by (kind) (rate(orchestrator_zk_sync_errors_total{{{MIGRATION}}}"
                            f"[$__rate_interval]))",
                            "{{kind}}",
                        ),
                    ),
                    unit="ops",
                    width=8,
                ),
                Panel(
                    "Since the last full reconcile",
                    (
                        q(
                            f"time() - max by (namespace, migration) ("
                            f"orchestrator_zk_sync_last_full_reconcile_timestamp_seconds{{{MIGRATION}}})",
                            "{{namespace}}/{{migration}}",
                        ),
                    ),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Full reconcile duration p99",
                    (
                        q(
                            f"histogram_quantile(0.99, sum by (le) (rate("
                            f"orchestrator_zk_sync_full_reconcile_duration_seconds_bucket{{{MIGRATION}}}"
                            f"[$__rate_interval])))",
                            "p99",
                        ),
                    ),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Bootstrap throughput",
                    (
                        q(
                            "max by (namespace, migration) ("
                            f"orchestrator_zk_sync_bootstrap_znodes_per_second{{{MIGRATION}}})",
                            "{{namespace}}/{{migration}}",
                        ),
                    ),
                    width=8,
                ),
            ),
        ),
        Row(
            "Sync controller and migrations",
            (
                Panel(
                    "Sync controller up",
                    (q(f"max(up{{{SYNC_JOB}}})"),),
                    "stat",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Engines running",
                    (q('sum(orchestrator_zk_sync_controller_migrations{state="Running"})'),),
                    "stat",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Engines failed",
                    (q('sum(orchestrator_zk_sync_controller_migrations{state="Failed"})'),),
                    "stat",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Sync controller memory",
                    (q(f"process_resident_memory_bytes{{{SYNC_JOB}}}", "{{pod}}"),),
                    "stat",
                    unit="bytes",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Engines by state",
                    (
                        q(
                            "sum by (state) (orchestrator_zk_sync_controller_migrations)",
                            "{{state}}",
                        ),
                    ),
                    description="ZkMigrations with an engine in the sync controller, by the "
                    "state it reports in status.sync (Starting, Running, Failed, Stopping). "
                    "The migration's phase is in the ZkMigration's status, not a metric.",
                ),
                Panel(
                    "ZkMigration reconciles",
                    (
                        q(
                            'sum by (result) (rate(orchestrator_reconcile_total{kind="ZkMigration"}'
                            "[$__rate_interval]))",
                            "{{result}}",
                        ),
                    ),
                    unit="ops",
                    width=6,
                ),
                Panel(
                    "ZkMigration reconcile duration p99",
                    (
                        q(
                            "histogram_quantile(0.99, sum by (le) (rate("
                            'orchestrator_reconcile_duration_seconds_bucket{kind="ZkMigration"}'
                            "[$__rate_interval])))",
                            "p99",
                        ),
                    ),
                    unit="s",
                    width=6,
                ),
            ),
        ),
    ),
)

FLEET = Dashboard(
    uid="orchestrator-monitoring",
    title="Orchestrator / Monitoring fleet",
    description="The monitoring app: probes reporting, reports ingested and refused, "
    "topologies, viewers and controls.",
    variables=(
        ("namespace", "label_values(orchestrator_monitor_probes, namespace)"),
        ("pod", 'label_values(orchestrator_monitor_probes{namespace=~"$namespace"}, pod)'),
    ),
    rows=(
        Row(
            "Probes and reports",
            (
                Panel(
                    "Probes reporting",
                    (q(f"sum(orchestrator_monitor_probes{{{POD}}})"),),
                    "stat",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Control channels",
                    (q(f"sum(orchestrator_monitor_control_channels{{{POD}}})"),),
                    "stat",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Viewers (WebSockets)",
                    (q(f"sum(orchestrator_monitor_websocket_clients{{{POD}}})"),),
                    "stat",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Probes expired (1 h)",
                    (q(f"sum(increase(orchestrator_monitor_probes_expired_total{{{POD}}}[1h]))"),),
                    "stat",
                    width=6,
                    height=4,
                ),
                Panel(
                    "Reports accepted and refused",
                    (
                        q(
                            f"sum(rate(orchestrator_monitor_reports_total{{{POD}}}"
                            f"[$__rate_interval]))",
                            "accepted",
                        ),
                        q(
                            f"sum by (reason) (rate(orchestrator_monitor_reports_rejected_total"
                            f"{{{POD}}}[$__rate_interval]))",
                            "refused {{reason}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Report ingest p50 / p99",
                    (
                        q(
                            f"histogram_quantile(0.5, sum by (le) (rate("
                            f"orchestrator_monitor_ingest_duration_seconds_bucket{{{POD}}}"
                            f"[$__rate_interval])))",
                            "p50",
                        ),
                        q(
                            f"histogram_quantile(0.99, sum by (le) (rate("
                            f"orchestrator_monitor_ingest_duration_seconds_bucket{{{POD}}}"
                            f"[$__rate_interval])))",
                            "p99",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Report bytes received",
                    (
                        q(
                            f"sum(rate(orchestrator_monitor_report_bytes_total{{{POD}}}"
                            f"[$__rate_interval]))",
                            "bytes",
                        ),
                    ),
                    unit="Bps",
                ),
                Panel(
                    "Probes by app pod",
                    (q(f"sum by (pod) (orchestrator_monitor_probes{{{POD}}})", "{{pod}}"),),
                ),
            ),
        ),
        Row(
            "Topologies and viewers",
            (
                Panel(
                    "Nodes per topology",
                    (
                        q(
                            f"max by (topology) (orchestrator_monitor_topology_nodes{{{POD}}})",
                            "{{topology}}",
                        ),
                    ),
                ),
                Panel(
                    "Diffs sent to viewers",
                    (
                        q(
                            f"sum(rate(orchestrator_monitor_websocket_diffs_total{{{POD}}}"
                            f"[$__rate_interval]))",
                            "diffs",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Controls by action and result",
                    (
                        q(
                            f"sum by (action, result) (rate(orchestrator_monitor_controls_total"
                            f"{{{POD}}}[$__rate_interval]))",
                            "{{action}} {{result}}",
                        ),
                    ),
                    unit="ops",
                    width=24,
                ),
            ),
        ),
    ),
)

DASHBOARDS = {
    "orchestrator-operator.json": OPERATOR,
    "orchestrator-zk-sync.json": SYNC,
    "orchestrator-monitoring.json": FLEET,
}


def rendered() -> dict[str, str]:
    return {
        name: json.dumps(render(dashboard), indent=2, sort_keys=True) + "\n"
        for name, dashboard in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the JSON is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = HERE / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
