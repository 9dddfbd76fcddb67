"""The operator's log over several reconcile ticks of the examples a newcomer applies
(issue 18, point 3): no warning repeated every tick (Kopf's "Merge-patching finished with
inconsistencies" came on every ZkMigration and ProbeFleet status write, kazoo's "Cannot
resolve" on every retry), no INFO line per timer run, and `--log-format json` gives one
JSON object per line."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import eventually, get_json

pytestmark = pytest.mark.kube
REPO = Path(__file__).resolve().parents[2]
TICKS = 6  # ProbeFleet observations to wait for (one /healthz request each, every 2 s)


class _AppHealth(BaseHTTPRequestHandler):
    """The monitoring app's /healthz as the operator asks it on every ProbeFleet tick."""

    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        body = json.dumps({"probes": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app_health() -> Iterator[tuple[int, type[_AppHealth]]]:
    handler = type("AppHealth", (_AppHealth,), {"requests": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def _examples(app_port: int) -> str:
    documents = []
    for name in ("mesoscluster", "zkmigration", "probefleet"):
        document = yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())
        if document["kind"] == "ProbeFleet":  # its app is this test's listener
            document["spec"]["app"]["port"] = app_port
        documents.append(document)
    return yaml.safe_dump_all(documents)


def test_reconcile_ticks_of_the_examples_leave_no_repeated_warning_and_no_timer_info(
    kube_env: KubeTestEnv, operator: OperatorProcess, app_health: tuple[int, type[_AppHealth]]
) -> None:
    port, app = app_health
    start = operator.log_path.stat().st_size
    applied = kube_env.kubectl_run("apply", "-f", "-", input=_examples(port))
    assert applied.returncode == 0, applied.stderr

    def migration_recorded_its_phases() -> bool:
        status = (get_json(kube_env, "zkmigration", "demo-to-zk-b") or {}).get("status", {})
        return len(status.get("phases") or []) == 6

    # The phases' records carry null times: the status write that warned before the fix.
    eventually(migration_recorded_its_phases, 90, "the ZkMigration's six phase records")
    baseline = app.requests
    eventually(lambda: app.requests >= baseline + TICKS, 120, f"{TICKS} ProbeFleet ticks")
    conditions = (get_json(kube_env, "probefleet", "scope") or {}).get("status", {})["conditions"]
    assert {c["type"] for c in conditions} >= {"AppReady", "ProbesReporting"}

    with operator.log_path.open("rb") as log:
        log.seek(start)
        lines = log.read().decode(errors="replace").splitlines()
    assert not [line for line in lines if "Merge-patching finished with inconsistencies" in line]
    timer_info = [line for line in lines if " INFO " in line and "Timer '" in line]
    assert [line for line in timer_info if line.endswith("succeeded.")] == []
    # Any warning or error said twice word for word (the time stripped) is noise.
    said = collections.Counter(
        line.split(" ", 2)[2]
        for line in lines
        if line[:2] == "20" and line.split(" ", 3)[2] in ("WARNING", "ERROR")
    )
    assert [line for line, count in said.items() if count > 1] == []


def test_json_logs_are_one_object_per_line(kube_env: KubeTestEnv, tmp_path: Path) -> None:
    # Watching an empty namespace: it handles nothing the shared operator handles.
    kube_env.kubectl_run("create", "namespace", "logs-json")
    process = OperatorProcess(
        kube_env, tmp_path / "operator.log", "--namespace", "logs-json", "--log-format", "json"
    )
    try:
        process.wait_ready()
    finally:
        process.stop()
    lines = [line for line in process.log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # each line a whole JSON object
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["logger"].startswith("kopf") and e["level"] == "INFO" for e in entries)
