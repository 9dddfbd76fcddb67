"""Benchmark: the MesosCluster operator at 100 clusters on 3 nodes, and at 5,000 nodes.

    .venv/bin/python -m bench.mesoscluster [--clusters 100] [--large-nodes 5000]

Against the real control plane (testenv) and a real 1-server ZooKeeper (every cluster uses
it as its external ensemble, each under its own path), with the operator as a subprocess:

- apply-to-created: from the POST of one MesosCluster to the moment all of its children
  (9 with an external ZooKeeper: 7 workloads, Services and PDBs, and 2 NetworkPolicies)
  exist; clusters are created one after another while the earlier ones keep being
  observed;
  beside it, the baseline: the same manifests server-side-applied straight from this
  process (the API server's own floor for those writes);
- status lag: from a new leader's znode in ZooKeeper to `status.leadingMaster` naming it,
  with the operator's ZooKeeper watches (status follows events); beside it, the baseline:
  the same clusters under an operator restarted with `--no-status-watches` (a poll of every
  cluster every second, as before), then under one restarted with the watches again (both
  figures after a restart and the same wait);
  with `--sim-masters` also from a real simulated master's znode (sim/, quorum 1) to
  `leadingMaster` and to `LeaderElected` True (the master elected and its registry recovered);
- the operator's resident memory, and Kubernetes API requests per reconcile (by verb);
- at 5,000 nodes: one MesosCluster whose agent DaemonSet covers every node.

Every time is taken from watches, not polling: one watch per child kind (all namespaces)
is open before the first apply, and each child's first ADDED event is timestamped as it
arrives; `status` figures come from a watch on MesosClusters. So the bench adds no
LISTs or GETs of its own while it waits, and the baseline is timed the same way as the
operator (from the first write to the watch delivering the last child).

Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import ssl
import statistics
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml
from kazoo.client import KazooClient

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.cluster import build_children
from sim.procs import SimProcess, free_ports
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.zookeeper import ZkEnsemble

CHILD_KINDS = (
    ("api/v1", "configmaps"), ("api/v1", "services"), ("apis/policy/v1", "poddisruptionbudgets"),
    ("apis/apps/v1", "statefulsets"), ("apis/apps/v1", "daemonsets"),
    ("apis/apps/v1", "deployments"), ("apis/networking.k8s.io/v1", "networkpolicies"),
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


class Watch:
    """One watch on one collection: LIST once for a resourceVersion, then WATCH from it.

    `on_event(type, object, seen)` runs on the watch's thread for every object the LIST
    returns ("ADDED") and every event after it, with `seen` the `time.perf_counter()` when
    the event's line arrived. The watch resumes from the last resourceVersion it saw (a
    BOOKMARK included) when the server ends it, and LISTs again on 410 Gone.
    """

    def __init__(
        self,
        env: KubeTestEnv,
        path: str,
        on_event: Callable[[str, dict[str, Any], float], None],
    ) -> None:
        config = yaml.safe_load(env.kubeconfig.read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        self._context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self._context.load_cert_chain(user["client-certificate"], user["client-key"])
        server = urllib.parse.urlsplit(cluster["server"])
        self._host, self._port = server.hostname or "127.0.0.1", server.port or 443
        self.path = path
        self._on_event = on_event
        self._resource_version = ""
        self._connection: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._watching = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)
        self.error: BaseException | None = None

    def start(self, timeout: float = 30) -> None:
        """Returns once the WATCH request is answered, so nothing later is missed or late."""
        self._list()
        self._thread.start()
        if not self._watching.wait(timeout):
            raise TimeoutError(f"watch on {self.path}: {self.error!r}")

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):  # already closed
                connection.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read
        if self._thread.ident is not None:
            self._thread.join(timeout=10)

    def _request(self, query: str) -> tuple[http.client.HTTPSConnection, Any]:
        connection = http.client.HTTPSConnection(self._host, self._port, context=self._context)
        with self._lock:  # connected under the lock, so stop() can always shut it down
            if self._stopped.is_set():
                raise RuntimeError("stopped")
            connection.connect()
            self._connection = connection
        connection.request("GET", f"{self.path}?{query}", headers={"Accept": "application/json"})
        return connection, connection.getresponse()

    def _list(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            connection, response = self._request("resourceVersion=")
            try:
                body = json.loads(response.read())
            finally:
                connection.close()
            if response.status == 200:
                break
            # 429 while a new CRD's storage initializes: retry as the server asks
            if response.status != 429 or time.monotonic() > deadline:
                raise RuntimeError(f"LIST {self.path}: {response.status} {body}")
            time.sleep(float(response.getheader("Retry-After") or 1))
        seen = time.perf_counter()
        for item in body["items"]:
            self._on_event("ADDED", item, seen)
        self._resource_version = body["metadata"]["resourceVersion"]

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._watch_once()
            except Exception as error:  # a dropped connection: resume from the last version
                if self._stopped.is_set():
                    return
                self.error = error
                time.sleep(0.2)

    def _watch_once(self) -> None:
        query = urllib.parse.urlencode(
            {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "1800",
             "resourceVersion": self._resource_version}
        )  # fmt: skip
        connection, response = self._request(query)
        try:
            if response.status == 410:
                self._list()
                return
            if response.status != 200:
                raise RuntimeError(f"WATCH {self.path}: {response.status} {response.read()!r}")
            self._watching.set()
            for line in response:
                seen = time.perf_counter()
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:  # too old: LIST again, then watch from there
                        self._list()
                        return
                    raise RuntimeError(f"WATCH {self.path}: {obj}")
                self._resource_version = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    self._on_event(kind, obj, seen)
        finally:
            connection.close()


class ChildWatches:
    """One watch per child kind (all namespaces): when each labelled child first appeared."""

    def __init__(self, env: KubeTestEnv) -> None:
        self._changed = threading.Condition()
        # (namespace, instance label) -> (plural, name) -> first time seen
        self._first_seen: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
        self._watches = [
            Watch(env, f"/{prefix}/{plural}", lambda t, o, s, p=plural: self._record(p, t, o, s))  # type: ignore[misc]
            for prefix, plural in CHILD_KINDS
        ]

    def __enter__(self) -> ChildWatches:
        try:
            for watch in self._watches:
                watch.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for watch in self._watches:
            watch.stop()

    def _record(self, plural: str, kind: str, obj: dict[str, Any], seen: float) -> None:
        meta = obj["metadata"]
        instance = (meta.get("labels") or {}).get("app.kubernetes.io/instance")
        if kind == "DELETED" or not instance:
            return
        with self._changed:
            children = self._first_seen.setdefault((meta["namespace"], instance), {})
            if (plural, meta["name"]) not in children:
                children[(plural, meta["name"])] = seen
                self._changed.notify_all()

    def wait_for(self, namespace: str, instance: str, count: int, timeout: float) -> float:
        """The time the `count`-th child of `instance` first appeared (waits for it)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                times = sorted(self._first_seen.get((namespace, instance), {}).values())
                if len(times) >= count:
                    return times[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    errors = [w.error for w in self._watches if w.error]
                    raise TimeoutError(f"{len(times)}/{count} children of {instance}: {errors}")
                self._changed.wait(left)


class ClusterWatch:
    """A watch on the MesosClusters of one namespace, keeping every version with its time."""

    def __init__(self, env: KubeTestEnv, namespace: str) -> None:
        self._changed = threading.Condition()
        self._versions: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        path = f"/apis/orchestrator.dev/v1alpha1/namespaces/{namespace}/mesosclusters"
        self._watch = Watch(env, path, self._record)

    def __enter__(self) -> ClusterWatch:
        self._watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def _record(self, kind: str, obj: dict[str, Any], seen: float) -> None:
        with self._changed:
            self._versions.setdefault(obj["metadata"]["name"], []).append((seen, obj))
            self._changed.notify_all()

    def latest(self, name: str) -> dict[str, Any]:
        """The status of the last version seen."""
        with self._changed:
            versions = self._versions.get(name) or [(0.0, {})]
            return dict(versions[-1][1].get("status") or {})

    def wait_for(
        self, name: str, since: float, check: Callable[[dict[str, Any]], bool], timeout: float
    ) -> float | None:
        """The arrival time of the first version after `since` that passes `check`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for seen, obj in self._versions.get(name, []):
                    if seen >= since and check(obj):
                        return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)


def ensure_namespace(env: KubeTestEnv, name: str) -> None:
    env.kubectl_run("create", "namespace", name)


def baseline_apply(env: KubeTestEnv, watches: ChildWatches, clusters: int, zk: str) -> list[float]:
    """Seconds from server-side-applying each cluster's children straight from a client to
    the watches seeing the last of them (the same end point as the operator's figure)."""
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
        durations.append(watches.wait_for(namespace, name, len(children), 60) - started)
    return durations


def _object_path(child: dict[str, Any]) -> str:
    from orchestrator_operator.common.kube_api import object_path

    meta = child["metadata"]
    return object_path(child["apiVersion"], child["kind"], meta["namespace"], meta["name"])


def operator_apply(env: KubeTestEnv, watches: ChildWatches, clusters: int, zk: str) -> list[float]:
    """Seconds from creating each MesosCluster to the watches seeing all of its children."""
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
        latencies.append(watches.wait_for(namespace, name, wanted, 60) - started)
    return latencies


def status_lag(
    clusters: ClusterWatch, zk_hosts: str, names: list[str], first_port: int = 30000
) -> list[float]:
    """Seconds from a master registering in ZooKeeper to the watch seeing the cluster's
    status name it (each sample a new address, from `first_port` on)."""
    lags = []
    for port, name in enumerate(names, start=first_port):
        session = KazooClient(hosts=zk_hosts)
        session.start(timeout=15)
        info = {"id": name, "hostname": "127.0.0.1", "port": port,
                "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": port}}  # fmt: skip
        started = time.perf_counter()
        session.create(f"/bench/{name}/mesos/json.info_", json.dumps(info).encode(),
                       ephemeral=True, sequence=True, makepath=True)  # fmt: skip
        leader = f"127.0.0.1:{port}"
        seen = clusters.wait_for(
            name, started, lambda o, q=leader: (o.get("status") or {}).get("leadingMaster") == q,  # type: ignore[misc]
            30,
        )  # fmt: skip
        if seen is None:
            raise TimeoutError(f"status of {name}")
        lags.append(seen - started)
        session.stop()
        session.close()
    return lags


def _condition_true(obj: dict[str, Any], type_: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def sim_status_lag(
    clusters: ClusterWatch, zk_hosts: str, names: list[str], base_dir: Path
) -> tuple[list[float], list[float]]:
    """With a real simulated master per sampled cluster (quorum 1, a fresh replicated log):
    seconds from its `json.info_` znode appearing in ZooKeeper (a watch of this process) to
    the watch seeing `status.leadingMaster` name it, and to `LeaderElected` True, which
    waits for the master to report itself elected and its registry recovered."""
    leading, elected = [], []
    session = KazooClient(hosts=zk_hosts)
    session.start(timeout=15)
    try:
        for name in names:
            path = f"/bench/{name}/mesos"
            session.ensure_path(path)
            appeared = threading.Event()
            at: list[float] = []

            def on_children(
                children: list[str], at: list[float] = at, appeared: threading.Event = appeared
            ) -> bool:
                if any(c.startswith("json.info_") for c in children):
                    at.append(time.perf_counter())
                    appeared.set()
                    return False  # stop watching
                return True

            session.ChildrenWatch(path, on_children)
            port = free_ports(1)[0]
            master = SimProcess(
                f"master-{name}",
                ["master", f"--zk=zk://{zk_hosts}{path}", f"--port={port}", "--quorum=1",
                 f"--work_dir={base_dir / name}"],
                base_dir / "logs" / f"master-{name}.log",
            )  # fmt: skip
            master.start()
            try:
                if not appeared.wait(30):
                    raise TimeoutError(f"no json.info_ znode for {name}:\n{master.log_tail()}")
                started = at[0]
                leader = f"127.0.0.1:{port}"
                seen = clusters.wait_for(
                    name, started,
                    lambda o, q=leader: (o.get("status") or {}).get("leadingMaster") == q,  # type: ignore[misc]
                    30,
                )  # fmt: skip
                done = clusters.wait_for(
                    name, started,
                    lambda o, q=leader: (o.get("status") or {}).get("leadingMaster") == q  # type: ignore[misc]
                    and _condition_true(o, "LeaderElected"),
                    60,
                )  # fmt: skip
                if seen is None or done is None:
                    last = clusters.latest(name)
                    raise TimeoutError(
                        f"status of {name}: leadingMaster {leader} seen: {seen is not None},"
                        f" LeaderElected: {done is not None}; last status {last}\n"
                        f"{master.log_tail()}"
                    )
                leading.append(seen - started)
                elected.append(done - started)
            finally:
                master.stop(grace=5.0)
    finally:
        session.stop()
        session.close()
    return leading, elected


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


def run_many_clusters(clusters: int, sim_masters: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ZkEnsemble(1, base_dir=Path(tmp) / "zk") as zk, \
            KubeTestEnv(nodes=3) as env:  # fmt: skip
        env.install_crds()
        with ChildWatches(env) as watches, ClusterWatch(env, "bench-operator") as cluster_watch:
            baseline = baseline_apply(env, watches, clusters, zk.connect_string)
            operator = OperatorProcess(env, Path(tmp) / "operator.log")
            try:
                operator.wait_ready()
                latencies = operator_apply(env, watches, clusters, zk.connect_string)
                time.sleep(10)  # let the observers run over all clusters a few times
                names = [f"c{i}" for i in range(0, clusters, max(1, clusters // 20))]
                lags = status_lag(cluster_watch, zk.connect_string, names)
                sim_lags = None
                if sim_masters:
                    sim_lags = sim_status_lag(
                        cluster_watch, zk.connect_string, names, Path(tmp) / "sim"
                    )
                rss = psutil.Process(operator.process.pid).memory_info().rss
                requests = api_requests(operator)
            finally:
                operator.stop()
            # The baseline in the same run: the same clusters observed by an operator that
            # polls every cluster every second (no ZooKeeper or workload watches); then
            # the events again on a restarted operator, so that both figures come after a
            # restart (Kopf resumes every cluster: 100 reconciles) and the same wait.
            restarted: dict[str, list[float]] = {}
            for mode, args, first_port in (
                ("poll", ("--no-status-watches",), 31000), ("events", (), 32000)
            ):  # fmt: skip
                operator = OperatorProcess(env, Path(tmp) / f"operator-{mode}.log", *args)
                try:
                    operator.wait_ready()
                    time.sleep(20)  # the resumes done, observers run over all clusters
                    restarted[mode] = status_lag(
                        cluster_watch, zk.connect_string, names, first_port
                    )
                finally:
                    operator.stop()
    reconciles = sum(v for k, v in requests.items() if k.startswith("orchestrator_reconcile_total"))
    applies = sum(v for k, v in requests.items() if 'verb="apply"' in k)
    lists = sum(v for k, v in requests.items() if 'verb="list"' in k and 'kind="Pod"' in k)
    gets = sum(v for k, v in requests.items() if 'verb="get"' in k)
    return {
        "clusters": clusters,
        "apply_to_created": summarize(latencies),
        "baseline_direct_apply": summarize(baseline),
        "status_lag": summarize(lags),
        "baseline_status_lag_1s_poll": summarize(restarted["poll"]),
        "status_lag_restarted": summarize(restarted["events"]),
        **(
            {
                "sim_status_lag": summarize(sim_lags[0]),
                "sim_leader_elected_lag": summarize(sim_lags[1]),
            }
            if sim_lags
            else {}
        ),
        "operator_rss_mib": round(rss / 2**20, 1),
        "apply_requests_per_reconcile": round(applies / max(reconciles, 1), 1),
        # the children's owners read before the first write (operator/ownership.py)
        "get_requests_per_reconcile": round(gets / max(reconciles, 1), 1),
        "pod_list_requests": lists,
    }


def run_many_nodes(nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ZkEnsemble(1, base_dir=Path(tmp) / "zk") as zk, \
            KubeTestEnv(nodes=nodes) as env:  # fmt: skip
        env.install_crds()
        ensure_namespace(env, "bench-large")
        operator = OperatorProcess(env, Path(tmp) / "operator.log")
        try:
            operator.wait_ready(timeout=300)
            with ChildWatches(env) as watches, ClusterWatch(env, "bench-large") as cluster_watch:
                started = time.perf_counter()
                manifest = cluster_manifest("large", "bench-large", zk.connect_string, 0)
                wanted = expected_children(manifest)
                env.api("POST", "/apis/orchestrator.dev/v1alpha1/namespaces/bench-large/"
                        "mesosclusters", manifest)  # fmt: skip
                created = watches.wait_for("bench-large", "large", wanted, 120) - started

                def agents_ready(obj: dict[str, Any]) -> bool:
                    agents = (obj.get("status") or {}).get("agents") or {}
                    return bool(agents.get("desired") == nodes and agents.get("ready") == nodes)

                ready = cluster_watch.wait_for("large", started, agents_ready, 900)
                all_agents = (ready if ready is not None else time.perf_counter()) - started
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
    parser.add_argument(
        "--sim-masters",
        action="store_true",
        help="also time the status lag with a real simulated master per sampled cluster"
        " (to leadingMaster, and to LeaderElected True: elected and registry recovered)",
    )
    args = parser.parse_args()
    many = run_many_clusters(args.clusters, args.sim_masters)
    print(f"{args.clusters} MesosClusters on 3 nodes:")
    keys = [
        "apply_to_created",
        "baseline_direct_apply",
        "status_lag",
        "baseline_status_lag_1s_poll",
        "status_lag_restarted",
    ]
    keys += ["sim_status_lag", "sim_leader_elected_lag"] if args.sim_masters else []
    for key in keys:
        print(f"  {key:<27} p50 {many[key]['p50_ms']:>7} ms  p99 {many[key]['p99_ms']:>7} ms")
    print(f"  operator RSS             {many['operator_rss_mib']} MiB")
    applies, lists = many["apply_requests_per_reconcile"], many["pod_list_requests"]
    gets = many["get_requests_per_reconcile"]
    print(f"  applies per reconcile    {applies}; GETs {gets}; LISTs of pods: {lists}")
    large = run_many_nodes(args.large_nodes) if args.large_nodes else None
    if large:
        print(f"1 MesosCluster on {large['nodes']} nodes:")
        print(f"  apply to children        {large['apply_to_created_ms']} ms")
        print(f"  all agents ready in status {large['status_shows_all_agents_ready_s']} s")
        print(f"  operator RSS             {large['operator_rss_mib']} MiB")
    print(json.dumps({"bench": "mesoscluster", "many_clusters": many, "many_nodes": large}))


if __name__ == "__main__":
    main()
