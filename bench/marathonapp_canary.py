"""Benchmark: from a new version applied to a MarathonApp to 100% of traffic on it, with a
canary of zero-pause steps (the default 10 -> 25 -> 50 -> 75 -> 100).

    .venv/bin/python -m bench.marathonapp_canary [--rollouts 3]

Against the real control plane (testenv), a real 1-server ZooKeeper, the simulator's Mesos
and Marathon (one master, one agent, one Marathon; tasks are testenv/echo_server.py
answering their version), the operator as a subprocess (it runs the canary: its
MarathonApp timer ticks every second), and the load balancer (`orchestrator lb` with
Debian's HAProxy, following the traffic ConfigMap) with a steady client load through it.

Each rollout: a merge patch of spec.app (env VERSION=n) at t0; the figure is the time from
t0 to the last answer of the previous version the client received (from then on every
answer is the new one), and, beside it, to the first answer of the new version and to
status.rollout.phase Promoted (the stable app runs the new version and serves again; the
canary removed). Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.processes import ManagedProcess, free_port, free_ports
from testenv.traffic import SteadyLoad, echo_app, echo_command
from testenv.zookeeper import ZkEnsemble

NAMESPACE = "bench-canary"
CLUSTER = "bench"
API = f"/apis/orchestrator.dev/v1alpha1/namespaces/{NAMESPACE}/marathonapps"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout} s (last: {last!r})")


def app(port: int, version: int) -> dict[str, Any]:
    return echo_app("/shop", port, version=str(version), cmd=echo_command(text="$VERSION"))


def rollout_phase(env: KubeTestEnv) -> dict[str, Any]:
    found = env.api("GET", f"{API}/shop")
    return dict((found.get("status") or {}).get("rollout") or {})


def run(rollouts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ZkEnsemble(1, base_dir=Path(tmp) / "zk") as zk, \
            KubeTestEnv(nodes=1) as env:  # fmt: skip
        env.install_crds()
        ports = ",".join(f"{p}-{p}" for p in free_ports(40))
        with SimCluster(
            zk.connect_string, masters=1, agents=1, marathons=1, base_dir=Path(tmp) / "sim",
            agent_resources=f"cpus:8;mem:8192;disk:10240;ports:[{ports}]",
            agent_flags=["--hostname=127.0.0.1"],
        ) as sim:  # fmt: skip
            sim.wait_for_marathon()
            env.api("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
            cluster = {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "MesosCluster",
                "metadata": {"name": CLUSTER, "namespace": NAMESPACE},
                "spec": {
                    "zookeeper": {"external": {"connectString": zk.connect_string}},
                    "masters": {"replicas": 1, "zkPath": sim.mesos_path},
                    "marathon": {"replicas": 1, "zkPath": sim.marathon_path},
                },
            }
            env.api("POST", f"/apis/orchestrator.dev/v1alpha1/namespaces/{NAMESPACE}/mesosclusters",
                    cluster)  # fmt: skip
            metrics_port, stats_port, log_port = free_ports(3)
            (Path(tmp) / "lb").mkdir()
            lb = ManagedProcess(
                "lb",
                [
                    sys.executable, "-m", "orchestrator_operator.cli", "lb",
                    "--marathon", sim.marathon_url(),
                    "--namespace", NAMESPACE, "--cluster", CLUSTER,
                    "--run-dir", str(Path(tmp) / "lb"), "--bind-address", "127.0.0.1",
                    "--http-port", "0", "--https-port", "0", "--stats-port", str(stats_port),
                    "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics_port),
                    "--log-port", str(log_port), "--haproxy-binary", "/usr/sbin/haproxy",
                ],
                Path(tmp),
                env={**os.environ, "KUBECONFIG": str(env.kubeconfig)},
            )  # fmt: skip
            lb.start()
            operator = OperatorProcess(env, Path(tmp) / "operator.log")
            try:
                wait_for(
                    "the load balancer",
                    lambda: httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").status_code == 200,
                )
                operator.wait_ready()
                return measure(env, rollouts)
            except BaseException:
                print(lb.log_tail(30), file=sys.stderr)
                print(operator.log_path.read_text()[-4000:], file=sys.stderr)
                raise
            finally:
                operator.stop()
                lb.stop()


def measure(env: KubeTestEnv, rollouts: int) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MarathonApp",
        "metadata": {"name": "shop", "namespace": NAMESPACE},
        "spec": {"cluster": CLUSTER, "app": app(port, 1), "strategy": {"type": "canary"}},
    }
    env.api("POST", API, manifest)

    def serving(version: int) -> bool:
        answers = {httpx.get(url, timeout=2).text.strip() for _ in range(20)}
        return answers == {str(version)}

    wait_for("version 1 served", lambda: serving(1))
    to_all: list[float] = []
    to_first: list[float] = []
    to_promoted: list[float] = []
    with SteadyLoad(url, clients=2) as load:
        for version in range(2, rollouts + 2):
            load.wait_for_requests(100)
            before = rollout_phase(env).get("revision")
            t0 = time.monotonic()
            patch_spec(env, app(port, version))
            wait_for(f"version {version} promoted", promoted_after(env, before), timeout=300)
            done = time.monotonic()
            load.wait_for_requests(100)
            old = [r.at for r in load.results if r.at >= t0 and r.who == str(version - 1)]
            new = [r.at for r in load.results if r.at >= t0 and r.who == str(version)]
            last_old = max(old) if old else t0
            to_all.append(last_old - t0)
            to_first.append((min(new) if new else done) - t0)
            to_promoted.append(done - t0)
            print(
                f"version {version}: first answer {to_first[-1]:.1f} s, 100% {to_all[-1]:.1f} s,"
                f" promoted {to_promoted[-1]:.1f} s after the patch"
            )
    failures = len(load.failures())
    return {
        "rollouts": rollouts,
        "to_100_percent_s": summary(to_all),
        "to_first_answer_s": summary(to_first),
        "to_promoted_s": summary(to_promoted),
        "client_requests": len(load.results),
        "client_failures": failures,
    }


def patch_spec(env: KubeTestEnv, spec_app: dict[str, Any]) -> None:
    current = env.api("GET", f"{API}/shop")
    current["spec"]["app"] = spec_app
    env.api("PUT", f"{API}/shop", current)


def promoted_after(env: KubeTestEnv, previous_revision: str | None) -> Callable[[], bool]:
    """Whether the rollout of a new revision finished: the stable app serves it, the canary
    is gone."""

    def check() -> bool:
        rollout = rollout_phase(env)
        return (
            rollout.get("revision") != previous_revision
            and rollout.get("phase") == "Promoted"
            and rollout.get("stage") == "Idle"
        )

    return check


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rollouts", type=int, default=3)
    args = parser.parse_args()
    result = run(args.rollouts)
    for key in ("to_100_percent_s", "to_first_answer_s", "to_promoted_s"):
        figures = result[key]
        print(f"{key}: median {figures['median']} s (min {figures['min']}, max {figures['max']})")
    print(f"client: {result['client_requests']} requests, {result['client_failures']} failed")
    print(json.dumps({"bench": "marathonapp_canary", **result}))


if __name__ == "__main__":
    main()
