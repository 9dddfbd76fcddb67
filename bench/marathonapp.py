"""Benchmark: 100 MarathonApps applied, time to their Marathon deployment started.

    .venv/bin/python -m bench.marathonapp [--apps 100]

Against the real control plane (testenv), a real 1-server ZooKeeper, and the simulator's
Mesos and Marathon (sim/: one master, two agents, one Marathon; tasks as real processes),
with the operator as a subprocess. The MesosCluster names the simulator's ZooKeeper paths
(its external ensemble), so the operator finds that Marathon as it finds any cluster's.

- apply-to-deployment-started: from the POST of one MarathonApp (one after another, as
  fast as the API server takes them) to Marathon's `deployment_info` event for its app,
  after one warm-up app (the operator's watches open, the cluster's Marathon found);
- beside it, in the same run and on the same Marathon, the baseline: a client POSTing the
  same app definitions straight to Marathon's /v2/apps (ids /direct-<i>), timed the same
  way (from its POST to the event).

Times come from Marathon's event stream (`GET /v2/events?event_type=deployment_info`, read
by a thread that timestamps each event as it arrives), so the bench adds no polling.
Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.zookeeper import ZkEnsemble

NAMESPACE = "bench-mapp"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def app_definition(app_id: str) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 3600", "instances": 1, "cpus": 0.01, "mem": 8}


class DeploymentEvents:
    """The first `deployment_info` event of each app, timestamped on arrival."""

    def __init__(self, marathon: str) -> None:
        self.marathon = marathon
        self.first: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._attached = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DeploymentEvents:
        self._thread.start()
        if not self._attached.wait(30):
            raise RuntimeError("Marathon's event stream did not attach")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        headers = {"Accept": "text/event-stream"}
        params = {"event_type": "deployment_info"}
        while not self._stop.is_set():
            try:
                with httpx.stream("GET", self.marathon + "/v2/events", headers=headers,
                                  params=params, timeout=None) as response:  # fmt: skip
                    self._attached.set()
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.startswith("data:"):
                            self._record(json.loads(line[5:]))
            except (httpx.HTTPError, ValueError):
                time.sleep(0.2)

    def _record(self, event: dict[str, Any]) -> None:
        arrived = time.monotonic()
        for step in (event.get("plan") or {}).get("steps") or []:
            for action in step.get("actions") or []:
                app = action.get("app")
                if isinstance(app, str):
                    with self._lock:
                        self.first.setdefault(app, arrived)

    def wait_for(self, apps: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(app in self.first for app in apps):
                    return
            time.sleep(0.1)
        missing = [app for app in apps if app not in self.first]
        raise TimeoutError(f"no deployment_info for {len(missing)} apps, e.g. {missing[:3]}")


def direct_posts(marathon: str, events: DeploymentEvents, apps: int) -> list[float]:
    sent: dict[str, float] = {}
    with httpx.Client(base_url=marathon, timeout=30) as client:
        for i in range(apps):
            app_id = f"/direct-{i}"
            sent[app_id] = time.monotonic()
            client.post("/v2/apps", json=app_definition(app_id)).raise_for_status()
    events.wait_for(list(sent), 120)
    return [events.first[app] - started for app, started in sent.items()]


def operator_applies(
    env: KubeTestEnv, events: DeploymentEvents, apps: int, prefix: str = "mapp"
) -> list[float]:
    path = f"/apis/orchestrator.dev/v1alpha1/namespaces/{NAMESPACE}/marathonapps"
    sent: dict[str, float] = {}
    for i in range(apps):
        app_id = f"/{prefix}-{i}"
        manifest = {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MarathonApp",
            "metadata": {"name": f"{prefix}-{i}", "namespace": NAMESPACE},
            "spec": {"cluster": "bench", "app": app_definition(app_id)},
        }
        sent[app_id] = time.monotonic()
        env.api("POST", path, manifest)
    events.wait_for(list(sent), 300)
    return [events.first[app] - started for app, started in sent.items()]


def run(apps: int, keep_log: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ZkEnsemble(1, base_dir=Path(tmp) / "zk") as zk, \
            KubeTestEnv(nodes=1) as env:  # fmt: skip
        env.install_crds()
        with SimCluster(
            zk.connect_string, masters=1, agents=2, marathons=1, base_dir=Path(tmp) / "sim",
            agent_resources="cpus:16;mem:65536;disk:10240",
        ) as sim:  # fmt: skip
            sim.wait_for_marathon()
            env.api("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
            cluster = {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "MesosCluster",
                "metadata": {"name": "bench", "namespace": NAMESPACE},
                "spec": {
                    "zookeeper": {"external": {"connectString": zk.connect_string}},
                    "masters": {"replicas": 1, "zkPath": sim.mesos_path},
                    "marathon": {"replicas": 1, "zkPath": sim.marathon_path},
                },
            }
            env.api(
                "POST", f"/apis/orchestrator.dev/v1alpha1/namespaces/{NAMESPACE}/mesosclusters",
                cluster,
            )  # fmt: skip
            with DeploymentEvents(sim.marathon_url()) as events:
                baseline = direct_posts(sim.marathon_url(), events, apps)
                operator = OperatorProcess(env, Path(tmp) / "operator.log")
                try:
                    operator.wait_ready()
                    # One app first: Kopf has its watches open and the cluster's Marathon
                    # found before the clock starts, as for an operator that has been running.
                    warmup = operator_applies(env, events, 1, prefix="warmup")
                    latencies = operator_applies(env, events, apps)
                finally:
                    operator.stop()
                    if keep_log is not None:
                        shutil.copyfile(Path(tmp) / "operator.log", keep_log)
    return {
        "apps": apps,
        "warmup_ms": round(warmup[0] * 1000, 1),
        "min_ms": round(min(latencies) * 1000, 1),
        "apply_to_deployment_started": summarize(latencies),
        "baseline_direct_post_to_deployment_started": summarize(baseline),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--keep-operator-log", type=Path, help="copy the operator's log there")
    args = parser.parse_args()
    result = run(args.apps, args.keep_operator_log)
    for key in ("apply_to_deployment_started", "baseline_direct_post_to_deployment_started"):
        figures = result[key]
        print(
            f"{key}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms"
            f" (mean {figures['mean_ms']}, max {figures['max_ms']}, n={figures['count']})"
        )
    print(json.dumps({"bench": "marathonapp", **result}))


if __name__ == "__main__":
    main()
