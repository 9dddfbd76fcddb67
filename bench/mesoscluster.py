"""Benchmark: the MesosCluster operator at 100 clusters on 3 nodes, and at 5,000 nodes.

    .venv/bin/python -m bench.mesoscluster [--clusters 100] [--large-nodes 5000]

Against the real control plane (testenv) and a real 1-server ZooKeeper (every cluster uses
it as its external ensemble, each under its own path), with the operator as a subprocess:

- apply-to-created: from the POST of one MesosCluster to the moment all of its children
  (7 with an external ZooKeeper) exist; clusters are created one after another while the
  earlier ones keep being observed;
  beside it, the baseline: the same manifests server-side-applied straight from this
  process (the API server's own floor for those writes);
- status lag: from a new leader's znode in ZooKeeper to `status.leadingMaster` naming it;
- the operator's resident memory, and Kubernetes API requests per reconcile (by verb);
- at 5,000 nodes: one MesosCluster whose agent DaemonSet covers every node.

Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from kazoo.client import KazooClient

from orchestrator_operator.builders.cluster import build_children
from orchestrator_operator.builders.meta import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.zookeeper import ZkEnsemble

CHILD_KINDS = (
    ("api/v1", "configmaps"), ("api/v1", "services"), ("apis/policy/v1", "poddisruptionbudgets"),
    ("apis/apps/v1", "statefulsets"), ("apis/apps/v1", "daemonsets"),
    ("apis/apps/v1", "deployments"),
)  # fmt: skip


def expected_children(manifest: dict[str, Any]) -> int:
    spec = MesosClusterSpec.model_validate(manifest["spec"])
    meta = manifest["metadata"]
    return len(build_children(Owner(meta["name"], meta["namespace"], uid="x"), spec))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cluster_manifest(name: str, namespace: str, zk: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "zookeeper": {"external": {"connectString": zk}},
            "masters": {"replicas": 3, "zkPath": f"/bench/{name}/mesos"},
            "marathon": {"replicas": 1, "zkPath": f"/bench/{name}/marathon"},
            "agents": {"port": 20000 + index},  # clusters sharing nodes need their own port
        },
    }


def children_present(env: KubeTestEnv, namespace: str) -> dict[str, int]:
    """instance label -> number of its children that exist."""
    counts: dict[str, int] = {}
    for prefix, plural in CHILD_KINDS:
        items = env.api("GET", f"/{prefix}/namespaces/{namespace}/{plural}")["items"]
        for item in items:
            instance = item["metadata"].get("labels", {}).get("app.kubernetes.io/instance")
            if instance:
                counts[instance] = counts.get(instance, 0) + 1
    return counts


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def ensure_namespace(env: KubeTestEnv, name: str) -> None:
    env.kubectl_run("create", "namespace", name)


def baseline_apply(env: KubeTestEnv, clusters: int, zk: str) -> list[float]:
    """Seconds to server-side-apply each cluster's children straight from a client."""
    namespace = "bench-baseline"
    ensure_namespace(env, namespace)
    durations = []
    for i in range(clusters):
        name = f"b{i}"
        spec = MesosClusterSpec.model_validate(cluster_manifest(name, namespace, zk, i)["spec"])
        children = build_children(Owner(name, namespace, uid="none"), spec)
        started = time.perf_counter()
        for child in children:
            del child["metadata"]["ownerReferences"]  # no owner: nothing to garbage-collect
            path = _object_path(child)
            env.api_patch_apply(path, child)
        durations.append(time.perf_counter() - started)
    return durations


def _object_path(child: dict[str, Any]) -> str:
    from orchestrator_operator.kube_api import object_path

    meta = child["metadata"]
    return object_path(child["apiVersion"], child["kind"], meta["namespace"], meta["name"])


def operator_apply(env: KubeTestEnv, clusters: int, zk: str) -> list[float]:
    """Seconds from creating each MesosCluster to all of its children existing."""
    namespace = "bench-operator"
    ensure_namespace(env, namespace)
    latencies = []
    for i in range(clusters):
        name = f"c{i}"
        started = time.perf_counter()
        manifest = cluster_manifest(name, namespace, zk, i)
        wanted = expected_children(manifest)
        env.api("POST", f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/mesosclusters",
                manifest)  # fmt: skip
        wait_until(lambda n=name, w=wanted: children_present(env, namespace).get(n, 0) >= w,  # type: ignore[misc]
                   60, f"children of {name}")  # fmt: skip
        latencies.append(time.perf_counter() - started)
    return latencies


def status_lag(env: KubeTestEnv, zk_hosts: str, names: list[str], namespace: str) -> list[float]:
    """Seconds from a master registering in ZooKeeper to the cluster's status naming it."""
    lags = []
    for port, name in enumerate(names, start=30000):
        session = KazooClient(hosts=zk_hosts)
        session.start(timeout=15)
        info = {"id": name, "hostname": "127.0.0.1", "port": port,
                "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": port}}  # fmt: skip
        started = time.perf_counter()
        session.create(f"/bench/{name}/mesos/json.info_", json.dumps(info).encode(),
                       ephemeral=True, sequence=True, makepath=True)  # fmt: skip
        path = f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/mesosclusters/{name}"
        wait_until(lambda p=path, q=port: env.api("GET", p).get("status", {}).get("leadingMaster")  # type: ignore[misc]
                   == f"127.0.0.1:{q}", 30, f"status of {name}")  # fmt: skip
        lags.append(time.perf_counter() - started)
        session.stop()
        session.close()
    return lags


def api_requests(operator: OperatorProcess) -> dict[str, float]:
    _, body = operator.get("/metrics")
    totals: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith(
            ("orchestrator_kube_api_requests_total{", "orchestrator_reconcile_total{")
        ):
            key, value = line.rsplit(" ", 1)
            totals[key] = float(value)
    return totals


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def run_many_clusters(clusters: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ZkEnsemble(1, base_dir=Path(tmp) / "zk") as zk, \
            KubeTestEnv(nodes=3) as env:  # fmt: skip
        env.install_crds()
        baseline = baseline_apply(env, clusters, zk.connect_string)
        operator = OperatorProcess(env, Path(tmp) / "operator.log")
        try:
            operator.wait_ready()
            latencies = operator_apply(env, clusters, zk.connect_string)
            time.sleep(10)  # let the observers run over all clusters a few times
            names = [f"c{i}" for i in range(0, clusters, max(1, clusters // 20))]
            lags = status_lag(env, zk.connect_string, names, "bench-operator")
            rss = psutil.Process(operator.process.pid).memory_info().rss
            requests = api_requests(operator)
        finally:
            operator.stop()
    reconciles = sum(v for k, v in requests.items() if k.startswith("orchestrator_reconcile_total"))
    applies = sum(v for k, v in requests.items() if 'verb="apply"' in k)
    lists = sum(v for k, v in requests.items() if 'verb="list"' in k and 'kind="Pod"' in k)
    return {
        "clusters": clusters,
        "apply_to_created": summarize(latencies),
        "baseline_direct_apply": summarize(baseline),
        "status_lag": summarize(lags),
        "operator_rss_mib": round(rss / 2**20, 1),
        "apply_requests_per_reconcile": round(applies / max(reconciles, 1), 1),
        "pod_list_requests": lists,
    }


def run_many_nodes(nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ZkEnsemble(1, base_dir=Path(tmp) / "zk") as zk, \
            KubeTestEnv(nodes=nodes) as env:  # fmt: skip
        env.install_crds()
        operator = OperatorProcess(env, Path(tmp) / "operator.log")
        try:
            operator.wait_ready(timeout=300)
            ensure_namespace(env, "bench-large")
            started = time.perf_counter()
            manifest = cluster_manifest("large", "bench-large", zk.connect_string, 0)
            wanted = expected_children(manifest)
            env.api("POST", "/apis/orchestrator.dev/v1alpha1/namespaces/bench-large/mesosclusters",
                    manifest)  # fmt: skip
            wait_until(lambda: children_present(env, "bench-large").get("large", 0) >= wanted,
                       120, "children")  # fmt: skip
            created = time.perf_counter() - started
            path = "/apis/orchestrator.dev/v1alpha1/namespaces/bench-large/mesosclusters/large"

            def agents_ready() -> bool:
                agents = env.api("GET", path).get("status", {}).get("agents") or {}
                return bool(agents.get("desired") == nodes and agents.get("ready") == nodes)

            deadline = time.monotonic() + 900
            while time.monotonic() < deadline and not agents_ready():
                time.sleep(1)
            all_agents = time.perf_counter() - started
            rss = psutil.Process(operator.process.pid).memory_info().rss
        finally:
            operator.stop()
    return {
        "nodes": nodes,
        "apply_to_created_ms": round(created * 1000, 1),
        "status_shows_all_agents_ready_s": round(all_agents, 1),
        "operator_rss_mib": round(rss / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--large-nodes", type=int, default=5000, help="0 to skip")
    args = parser.parse_args()
    many = run_many_clusters(args.clusters)
    print(f"{args.clusters} MesosClusters on 3 nodes:")
    for key in ("apply_to_created", "baseline_direct_apply", "status_lag"):
        print(f"  {key:<24} p50 {many[key]['p50_ms']:>7} ms  p99 {many[key]['p99_ms']:>7} ms")
    print(f"  operator RSS             {many['operator_rss_mib']} MiB")
    applies, lists = many["apply_requests_per_reconcile"], many["pod_list_requests"]
    print(f"  applies per reconcile    {applies}; LISTs of pods: {lists}")
    large = run_many_nodes(args.large_nodes) if args.large_nodes else None
    if large:
        print(f"1 MesosCluster on {large['nodes']} nodes:")
        print(f"  apply to children        {large['apply_to_created_ms']} ms")
        print(f"  all agents ready in status {large['status_shows_all_agents_ready_s']} s")
        print(f"  operator RSS             {large['operator_rss_mib']} MiB")
    print(json.dumps({"bench": "mesoscluster", "many_clusters": many, "many_nodes": large}))


if __name__ == "__main__":
    main()
