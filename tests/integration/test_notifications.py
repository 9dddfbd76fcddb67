"""Alert notifications end to end: a real Prometheus (Debian's) evaluates the repo's alert rule
against a firing series and sends the alert to a real Alertmanager (Debian's
prometheus-alertmanager) running deploy/monitoring/alertmanager/alertmanager.yaml, which posts
to Slack; "Slack" is a webhook receiver in this test, whose URL Alertmanager reads from a file
(`slack_api_url_file`) as it reads the mounted Secret in a cluster. `amtool` (same package)
checks the configuration and which receiver each of the repo's alerts is routed to.

Two changes to the repo's files for time, both named where they are made: the rule's `for`
is 0s (its 2 minutes would only be waited out), and the route's group_wait/group_interval are
1s (30s and 5m). Everything else (the rule's expression and annotations, routes, receivers,
the Slack templates) is the repo's."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.processes import ManagedProcess, free_port
from testenv.prometheus import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy/monitoring/alertmanager/alertmanager.yaml"
RULES = REPO / "deploy/monitoring/prometheusrule.yaml"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
SLACK_PATH = "/services/T000/B000/test-webhook"  # the secret part of a Slack webhook URL


def _amtool() -> str:
    path = shutil.which("amtool")
    assert path, "amtool not found: install the Debian package prometheus-alertmanager"
    return path


def _alerts() -> list[dict[str, Any]]:
    rule = yaml.safe_load(RULES.read_text())
    return [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]


# -- the configuration --------------------------------------------------------------------


def test_amtool_accepts_the_configuration() -> None:
    result = subprocess.run(
        [_amtool(), "check-config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_slack_webhook_is_read_from_a_file_never_written_in_the_configuration() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    assert "slack_api_url" not in config["global"]
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack, receiver["name"]
    assert "hooks.slack.com" not in CONFIG.read_text().replace("hooks.slack.com/services/...", "")


def test_every_alert_rule_is_routed_to_slack_by_its_severity() -> None:
    """Each alert of the PrometheusRule, with its labels, resolves to the receiver its severity
    names (amtool evaluates the real routing tree)."""
    expected = {"critical": "slack-critical", "warning": "slack", "info": "slack"}
    alerts = _alerts()
    assert alerts
    for alert in alerts:
        severity = alert["labels"]["severity"]
        assert severity in expected, f"{alert['alert']}: severity {severity} has no route"
        result = subprocess.run(
            [_amtool(), "config", "routes", "test", f"--config.file={CONFIG}",
             f"--verify.receivers={expected[severity]}",
             f"alertname={alert['alert']}", f"severity={severity}",
             "namespace=mesos", "name=demo"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{alert['alert']}: {result.stdout}{result.stderr}"


# -- a real Prometheus -> Alertmanager -> webhook ------------------------------------------


class SlackReceiver:
    """A local stand-in for Slack's incoming webhook: records each JSON POST."""

    def __init__(self) -> None:
        self.posts: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                received.put((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_post(self, timeout: float, what: str) -> tuple[str, dict[str, Any]]:
        try:
            return self.posts.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no Slack post within {timeout} s: {what}") from None


class Series:
    """A /metrics endpoint whose exposition text the test sets."""

    def __init__(self) -> None:
        self.text = ""
        series = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = series.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Alertmanager(ManagedProcess):
    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        path = directory / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        super().__init__(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={path}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip port: a single instance
            ],
            directory,
        )

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False


class AlertingPrometheus(PrometheusServer):
    """testenv's Prometheus, sending its alerts to the given Alertmanager."""

    def __init__(
        self, directory: Path, rule_groups: dict[str, Any], job: str, port: int, am_port: int
    ) -> None:
        super().__init__(directory, rule_groups, {job: (port, {})})
        config_path = directory / "prometheus.yml"
        config = yaml.safe_load(config_path.read_text())
        config["alerting"] = {
            "alertmanagers": [
                {"api_version": "v2", "static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
            ]
        }
        config_path.write_text(yaml.safe_dump(config))


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


def _wait(what: str, check: Any, process: ManagedProcess, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert process.running(), f"{process.name} exited:\n{process.log_tail(40)}"
        assert time.monotonic() < deadline, f"{what}:\n{process.log_tail(40)}"
        time.sleep(0.2)


def test_a_firing_rule_reaches_slack_with_the_alert_and_the_cluster_then_resolves(
    slack: SlackReceiver, tmp_path: Path
) -> None:
    # Alertmanager with the repo's configuration; the webhook URL in a file, as the Secret.
    url_file = tmp_path / "webhook-url"
    url_file.write_text(f"http://127.0.0.1:{slack.port}{SLACK_PATH}\n")
    url_file.chmod(0o600)
    config = yaml.safe_load(CONFIG.read_text())
    config["global"]["slack_api_url_file"] = str(url_file)
    config["route"]["group_wait"] = "1s"  # for time (the repo's: 30s)
    config["route"]["group_interval"] = "1s"  # for time (the repo's: 5m)
    (tmp_path / "am").mkdir()
    alertmanager = Alertmanager(tmp_path / "am", config)

    # The repo's MesosNoLeader rule, firing for mesos/demo and not for mesos/healthy.
    rule = next(r for r in _alerts() if r["alert"] == "MesosNoLeader")
    rule = {**rule, "for": "0s"}  # for time (the repo's: 2m)
    series = Series()
    metric = 'orchestrator_mesoscluster_condition{namespace="mesos",condition="LeaderElected",'
    series.text = (
        "# TYPE orchestrator_mesoscluster_condition gauge\n"
        f'{metric}name="demo"}} 0\n'
        f'{metric}name="healthy"}} 1\n'
    )
    (tmp_path / "prom").mkdir()
    prometheus = AlertingPrometheus(
        tmp_path / "prom",
        {"groups": [{"name": "mesos", "rules": [rule]}]},
        "orchestrator-metrics",
        series.port,
        alertmanager.port,
    )
    alertmanager.start()
    try:
        _wait("Alertmanager ready", alertmanager.ready, alertmanager)
        prometheus.start()
        try:
            path, post = slack.next_post(90, "the firing MesosNoLeader")
            assert path == SLACK_PATH  # the URL came from the file
            assert post["channel"] == "#orchestrator-alerts"
            [attachment] = post["attachments"]
            assert attachment["title"].startswith("[FIRING:1] MesosNoLeader mesos/demo")
            assert attachment["pretext"] == "<!here> critical"  # the critical route
            assert attachment["color"] == "danger"
            text = attachment["text"]
            assert "*MesosNoLeader* (critical)" in text
            assert "cluster: mesos/demo" in text
            # The summary as Prometheus rendered it from the rule's annotation.
            assert "MesosCluster mesos/demo has no leading master." in text
            assert "healthy" not in json.dumps(post)

            # The cluster elects a leader: the rule stops firing, Slack hears it resolved.
            series.text = series.text.replace('name="demo"} 0', 'name="demo"} 1')
            path, post = slack.next_post(90, "the resolved MesosNoLeader")
            [attachment] = post["attachments"]
            assert attachment["title"].startswith("[RESOLVED] MesosNoLeader mesos/demo")
            assert "cluster: mesos/demo" in attachment["text"]
        finally:
            prometheus.stop()
    finally:
        alertmanager.stop()
        series.close()


# -- ArgoCD notifications (deploy/argocd/notifications-cm.yaml) ----------------------------
#
# ArgoCD notifies about Applications; our resources appear in an Application's
# status.resources with the health our Lua scripts give them. The samples below are built
# that way: each custom resource's health comes from running the Lua script argocd-cm maps
# its kind to (lupa, Lua 5.1 as gopher-lua) on a status the operator writes. The triggers
# and templates are then evaluated by a small Go program with the notifications engine's own
# libraries and versions (expr for `when`/`oncePer`, text/template with sprig for the
# bodies; tests/integration/argocd_notifications/), built from the Go module proxy.

ARGOCD = REPO / "deploy/argocd"
CHECKER = Path(__file__).resolve().parent / "argocd_notifications"


def _lua_scripts() -> dict[str, str]:
    """Kind -> its health script, as deploy/argocd/kustomization.yaml maps them into argocd-cm."""
    kustomization = yaml.safe_load((ARGOCD / "kustomization.yaml").read_text())
    scripts: dict[str, str] = {}
    for generator in kustomization["configMapGenerator"]:
        for entry in generator.get("files", []):
            key, _, path = entry.partition("=")
            prefix = "resource.customizations.health.orchestrator.dev_"
            if key.startswith(prefix):
                scripts[key[len(prefix) :]] = (ARGOCD / path).read_text()
    return scripts


def _health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    import lupa.lua51 as lua51  # type: ignore[import-untyped]

    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals()["obj"] = runtime.table_from(obj, recursive=True)
    result = runtime.execute(script)
    return {str(k): str(v) for k, v in result.items()}


def _condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-12-01T00:00:00Z", "observedGeneration": 2}  # fmt: skip


def _resource(kind: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """One status.resources entry of an Application, its health from our Lua script."""
    obj = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "mesos", "generation": 2},
        "spec": {},
        "status": {"observedGeneration": 2, **status},
    }
    health = _health(_lua_scripts()[kind], obj)
    return {"group": "orchestrator.dev", "version": "v1alpha1", "kind": kind,
            "namespace": "mesos", "name": name, "status": "Synced", "health": health}  # fmt: skip


READY_CLUSTER = {
    "phase": "Ready",
    "conditions": [
        _condition("Accepted", "True", "Valid"),
        _condition("Ready", "True", "Ready", "all ready"),
    ],
}
DEGRADED_CLUSTER = {
    "phase": "Degraded",
    "conditions": [
        _condition("Accepted", "True", "Valid"),
        _condition("Degraded", "True", "NoLeader", "no Mesos master is leading"),
    ],
}


def _migration(phase: str, checks: list[str]) -> dict[str, Any]:
    accepted = _condition("Accepted", "True", "Valid", "; ".join(checks) or "accepted")
    return {"phase": phase, "checks": checks, "conditions": [accepted]}


def _marathon_app(rollout_phase: str) -> dict[str, Any]:
    return {
        "conditions": [
            _condition("Accepted", "True", "Valid"),
            _condition("Available", "True", "Available", "3 of 3 healthy"),
        ],
        "rollout": {"strategy": "canary", "phase": rollout_phase, "step": 2,
                    "message": "analysis failed: 5xx share 0.12 over 0.05"},
    }  # fmt: skip


def _application(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "app": {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "platform", "namespace": "argocd"},
            "status": {
                "health": {"status": "Healthy"},
                "resources": [
                    {
                        "group": "",
                        "version": "v1",
                        "kind": "ConfigMap",
                        "namespace": "mesos",
                        "name": "no-health",
                        "status": "Synced",
                    },
                    *resources,
                ],
            },
        },
        "context": {"argocdUrl": "https://argocd.example", "notificationType": "slack"},
    }


def _samples() -> dict[str, dict[str, Any]]:
    return {
        "new-application": {
            "app": {"metadata": {"name": "platform"}, "status": {}},
            "context": {"argocdUrl": "https://argocd.example"},
        },
        "all-healthy": _application(
            _resource("MesosCluster", "demo", READY_CLUSTER),
            _resource("MarathonApp", "web", _marathon_app("Promoted")),
        ),
        "cluster-degraded": _application(
            _resource("MesosCluster", "demo", DEGRADED_CLUSTER),
            _resource("MesosCluster", "other", READY_CLUSTER),
        ),
        "migration-running": _application(
            _resource("ZkMigration", "move", _migration("Running", []))
        ),
        "migration-pending": _application(
            _resource("ZkMigration", "move", _migration("Pending", ["LeaderElected is False"]))
        ),
        "migration-awaiting-approval": _application(
            _resource("ZkMigration", "move", _migration("AwaitingApproval", []))
        ),
        "canary-rolled-back": _application(
            _resource("MarathonApp", "web", _marathon_app("RolledBack"))
        ),
        "canary-aborted": _application(_resource("MarathonApp", "web", _marathon_app("Aborted"))),
    }


def _notifications_config() -> tuple[dict[str, Any], dict[str, str]]:
    """The triggers (name -> conditions) and the webhook body templates of the ConfigMap."""
    cm = yaml.safe_load((ARGOCD / "notifications-cm.yaml").read_text())
    data = cm["data"]
    triggers = {k[len("trigger.") :]: yaml.safe_load(v) for k, v in data.items()
                if k.startswith("trigger.")}  # fmt: skip
    bodies: dict[str, str] = {}
    for key, value in data.items():
        if key.startswith("template."):
            template = yaml.safe_load(value)
            bodies[key[len("template.") :]] = template["webhook"]["orchestrator-slack"]["body"]
    return triggers, bodies


@pytest.fixture(scope="module")
def notifications_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go program, built with the module cache delivery_crds.py uses."""
    from .delivery_crds import cache_root

    out = tmp_path_factory.mktemp("argocd-notifications") / "check"
    env = {**os.environ, "GOMODCACHE": str(cache_root() / "gomod"), "GOFLAGS": "-modcacherw",
           "GO111MODULE": "on"}  # fmt: skip
    result = subprocess.run(
        ["go", "build", "-o", str(out), "."], cwd=CHECKER, env=env,
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, f"go build (needs Go and the Go module proxy): {result.stderr}"
    return out


def test_argocd_notification_config_is_wired_to_the_slack_webhook_secret() -> None:
    cm = yaml.safe_load((ARGOCD / "notifications-cm.yaml").read_text())
    assert cm["metadata"]["name"] == "argocd-notifications-cm"
    data = cm["data"]
    service = yaml.safe_load(data["service.webhook.orchestrator-slack"])
    assert service["url"] == "$slack-webhook-url"  # from argocd-notifications-secret
    triggers, bodies = _notifications_config()
    [subscription] = yaml.safe_load(data["subscriptions"])
    assert subscription["recipients"] == ["orchestrator-slack"]
    assert sorted(subscription["triggers"]) == sorted(triggers)
    for name, conditions in triggers.items():
        for condition in conditions:
            for template in condition["send"]:
                assert template in bodies, f"trigger {name} sends the unknown template {template}"
    kustomization = yaml.safe_load((ARGOCD / "kustomization.yaml").read_text())
    assert "notifications-cm.yaml" in kustomization["resources"]


def test_argocd_triggers_fire_on_the_kinds_health_and_the_slack_bodies_render(
    notifications_checker: Path,
) -> None:
    triggers, bodies = _notifications_config()
    samples = _samples()
    result = subprocess.run(
        [str(notifications_checker)],
        input=json.dumps({"triggers": triggers, "templates": bodies, "vars": samples}),
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # every expression compiles and runs
    out = json.loads(result.stdout)

    def fired(sample: str) -> set[str]:
        return {t for t, rs in out[sample]["triggers"].items() if any(r["triggered"] for r in rs)}

    assert fired("new-application") == set()
    assert fired("all-healthy") == set()
    assert fired("cluster-degraded") == {"on-mesoscluster-degraded"}
    assert fired("migration-running") == {"on-zkmigration-phase-changed"}
    assert fired("migration-pending") == {"on-zkmigration-phase-changed", "on-zkmigration-held"}
    assert fired("migration-awaiting-approval") == {
        "on-zkmigration-phase-changed", "on-zkmigration-held"
    }  # fmt: skip
    assert fired("canary-rolled-back") == {"on-marathonapp-rolled-back"}
    assert fired("canary-aborted") == {"on-marathonapp-rolled-back"}

    # oncePer: a new notification when what is wrong changes, not on every resync
    [degraded] = out["cluster-degraded"]["triggers"]["on-mesoscluster-degraded"]
    assert degraded["oncePer"] == "mesos/demo=Degraded: no Mesos master is leading"
    phases = {
        s: out[s]["triggers"]["on-zkmigration-phase-changed"][0]["oncePer"]
        for s in ("migration-running", "migration-pending", "migration-awaiting-approval")
    }
    assert len(set(phases.values())) == 3, phases

    # The Slack bodies are JSON naming the resource and what the health says.
    def body(sample: str, template: str) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(out[sample]["templates"][template])
        return parsed

    slack = body("cluster-degraded", "orchestrator-mesoscluster-degraded")
    [attachment] = slack["attachments"]
    assert attachment["text"] == "MesosCluster mesos/demo: Degraded: no Mesos master is leading"
    assert attachment["title_link"] == "https://argocd.example/applications/platform"
    assert "platform" in slack["text"]
    held = body("migration-pending", "orchestrator-zkmigration-held")["attachments"][0]["text"]
    assert held.startswith("ZkMigration mesos/move is held: Pending")
    assert "LeaderElected is False" in held
    phase = body("migration-awaiting-approval", "orchestrator-zkmigration-phase")
    assert "AwaitingApproval" in phase["attachments"][0]["text"]
    rolled = body("canary-rolled-back", "orchestrator-marathonapp-rolled-back")
    assert rolled["attachments"][0]["text"] == (
        "MarathonApp mesos/web: Rollout RolledBack: analysis failed: 5xx share 0.12 over 0.05"
    )
