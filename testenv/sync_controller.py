"""`orchestrator zk-sync controller` as a real subprocess against a cluster (tests)."""

from __future__ import annotations

import re
from pathlib import Path

from .kube import KubeTestEnv
from .operator import ServedProcess


class SyncControllerProcess(ServedProcess):
    """The sync controller (the operator pod's second container) against the testenv
    cluster: ``extra_args`` e.g. ``--namespace x --state-dir d --connect-timeout 3``."""

    what = "sync controller"

    def __init__(self, env: KubeTestEnv, log_path: Path, *extra_args: str) -> None:
        super().__init__(env, log_path, "zk-sync", "controller", *extra_args)

    def metrics(self) -> str:
        code, body = self.get("/metrics")
        assert code == 200, (code, body[:500])
        return body

    def metric_samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Samples of ``name`` from /metrics whose labels include ``labels``."""
        found = []
        for line in self.metrics().splitlines():
            match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
            if not match:
                continue
            have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            if all(have.get(k) == v for k, v in labels.items()):
                found.append((have, float(match.group(2))))
        return found
