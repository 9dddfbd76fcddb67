"""A real Prometheus (Debian package `prometheus`) for tests: the alert rules given, one
static scrape job per target, and its HTTP API."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from testenv.processes import ManagedProcess, free_port

# job name -> (port on 127.0.0.1, target labels)
Targets = dict[str, tuple[int, dict[str, str]]]


def prometheus_config(rule_file: str, targets: Targets) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [rule_file],
        "scrape_configs": [
            {
                "job_name": job,
                "honor_labels": True,  # as the ServiceMonitors' honorLabels
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": labels}],
            }
            for job, (port, labels) in targets.items()
        ],
    }


class PrometheusServer(ManagedProcess):
    def __init__(self, directory: Path, rule_groups: dict[str, Any], targets: Targets) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: install the Debian package `prometheus`"
        (directory / "rules.yaml").write_text(yaml.safe_dump(rule_groups))
        config = directory / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config("rules.yaml", targets)))
        self.port = free_port()
        super().__init__(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            directory,
        )

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

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except OSError:
                pass  # not listening yet
            assert self.running(), self.log_tail(40)
            assert time.monotonic() < deadline, f"{what}; log:\n{self.log_tail(40)}"
            time.sleep(0.5)
