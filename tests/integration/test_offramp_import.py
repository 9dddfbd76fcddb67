"""Issue 21's must-shows for the import and the readiness report: a simulated Marathon (real
ZooKeeper, sim/ master, agent and Marathon, tasks as real processes) running 20 apps of
varied shapes, `orchestrator marathon import` run against the MesosCluster that names it
(the leader found in ZooKeeper as the operator finds it), the manifests applied with
`kubectl apply` to a real API server where the real operator runs: every app is adopted with
zero restarts (task ids unchanged) and zero changes in Marathon (no PUT reached it: no
api_post_event, no deployment, versions unchanged). Then `orchestrator marathon plan` on the
same 20 apps names each feature the move to Kubernetes cannot map by itself.

Marathon behaviour relied on (sim/marathon/routes.py pins it, following Marathon's
`GroupVersioningUtil.scala` and `AppsResource.scala`): an app's `version` changes with
every accepted PUT that changes it, and every PUT publishes an `api_post_event`
(`core/event/Events.scala`, ApiPostEvent), so their absence proves the operator sent none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.processes import free_ports
from testenv.traffic import echo_command
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import EventStream

pytestmark = [pytest.mark.zookeeper, pytest.mark.kube, pytest.mark.timeout(300)]

CLUSTER = "legacy"
SLEEP = "sleep 3600"
SMALL = {"cpus": 0.05, "mem": 16}


def _apps(fixed_port: int) -> list[dict[str, Any]]:
    """20 apps: running ones (commands, real processes) and, with instances 0, the shapes
    the simulated agent cannot run here (Docker images, volumes, fetched files)."""
    http = {"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 30,
            "intervalSeconds": 2, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}  # fmt: skip
    docker = {"image": "registry.example.org/shop/web:1.4", "network": "BRIDGE",
              "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}]}  # fmt: skip
    return [
        {"id": "/web", "cmd": echo_command(), "instances": 2, **SMALL,
         "portDefinitions": [{"port": 0, "name": "http"}], "healthChecks": [http],
         "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.org"},
         "env": {"MODE": "prod"}},
        {"id": "/shop/api", "cmd": echo_command(), **SMALL,
         "portDefinitions": [{"port": 0}], "constraints": [["hostname", "UNIQUE"]],
         "healthChecks": [{"protocol": "TCP", "portIndex": 0}],
         "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5},
         "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "10080"}},
        {"id": "/shop/worker", "cmd": SLEEP, "instances": 2, **SMALL,
         "env": {"QUEUE": "orders", "API_TOKEN": "tok-21-secret",
                 "DATABASE_URL": "postgres://shop:pw-21@db:5432/shop"}},
        {"id": "/shop/cron", "cmd": SLEEP, **SMALL,
         "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]},
        {"id": "/batch/etl/loader", "cmd": SLEEP, "cpus": 0.1, "mem": 32, "disk": 10,
         "backoffSeconds": 2, "backoffFactor": 1.5, "maxLaunchDelaySeconds": 60,
         "killSelection": "OLDEST_FIRST"},
        {"id": "/batch/etl/spread", "cmd": SLEEP, "instances": 2, **SMALL,
         "constraints": [["hostname", "LIKE", "127[.]0.*"], ["hostname", "MAX_PER", "2"],
                         ["hostname", "GROUP_BY"]]},
        {"id": "/metrics", "cmd": echo_command(), **SMALL, "requirePorts": True,
         "portDefinitions": [{"port": fixed_port, "name": "metrics"}]},
        {"id": "/partition-aware", "cmd": SLEEP, **SMALL,
         "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120}},
        {"id": "/labelled", "cmd": SLEEP, **SMALL,
         "labels": {f"team.example.org/k{i}": f"v{i}" for i in range(10)}},
        {"id": "/paused", "cmd": SLEEP, "instances": 0, **SMALL},
        {"id": "/deps/db", "cmd": SLEEP, **SMALL},
        {"id": "/deps/app", "cmd": SLEEP, **SMALL, "dependencies": ["/deps/db"]},
        {"id": "/graceful", "cmd": SLEEP, **SMALL, "taskKillGracePeriodSeconds": 3},
        {"id": "/docker/web", "instances": 0, **SMALL, "container": {"type": "DOCKER",
         "docker": docker}, "healthChecks": [{**http, "protocol": "MESOS_HTTP"}]},
        {"id": "/docker/hostport", "instances": 0, **SMALL, "container": {"type": "DOCKER",
         "docker": {**docker, "portMappings": [{"containerPort": 80, "hostPort": 8080}]}}},
        {"id": "/docker/db", "instances": 0, **SMALL, "container": {"type": "DOCKER",
         "docker": {"image": "postgres:16", "network": "HOST"},
         "volumes": [{"containerPath": "pgdata", "mode": "RW", "persistent": {"size": 1024}}]}},
        {"id": "/docker/gpu", "instances": 0, **SMALL, "gpus": 1, "user": "nobody",
         "container": {"type": "DOCKER", "docker": {"image": "cuda:12", "network": "HOST"}}},
        {"id": "/fetcher", "cmd": "./run.sh", "instances": 0, **SMALL,
         "fetch": [{"uri": "https://artifacts.example.org/run.sh", "executable": True}]},
        {"id": "/mesos-ucr", "instances": 0, **SMALL, "cmd": "nginx -g 'daemon off;'",
         "container": {"type": "MESOS", "docker": {"image": "nginx:1.27"}}},
        {"id": "/legacy/privileged", "instances": 0, **SMALL, "container": {"type": "DOCKER",
         "docker": {"image": "ops/agent:3", "network": "HOST", "privileged": True}}},
    ]  # fmt: skip


def wait_for(what: str, check: Callable[[], Any], timeout: float, log: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{log()}")


def _cli(kube_env: KubeTestEnv, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kube_env.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator_operator.cli", "marathon", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.fixture
def legacy(
    _zk_ensemble_module: ZkEnsemble, kube_env: KubeTestEnv, tmp_path: Path
) -> Iterator[tuple[SimCluster, str, int]]:
    namespace = f"offramp-{int(time.time()) % 100000}"
    assert kube_env.kubectl_run("create", "namespace", namespace).returncode == 0
    ports = free_ports(30)
    agent_ports = ",".join(f"{p}-{p}" for p in ports)
    try:
        with SimCluster(
            _zk_ensemble_module.connect_string, masters=1, agents=1, marathons=1,
            base_dir=tmp_path / "sim", agent_flags=["--hostname=127.0.0.1"],
            agent_resources=f"cpus:8;mem:8192;disk:10240;ports:[{agent_ports}]",
        ) as sim:  # fmt: skip
            cluster = {
                "apiVersion": "orchestrator.dev/v1alpha1",
                "kind": "MesosCluster",
                "metadata": {"name": CLUSTER, "namespace": namespace},
                "spec": {
                    "zookeeper": {"external": {"connectString": sim.zk_hosts}},
                    "masters": {"replicas": 1, "zkPath": sim.mesos_path},
                    "marathon": {"replicas": 1, "zkPath": sim.marathon_path},
                },
            }
            applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(cluster))
            assert applied.returncode == 0, applied.stderr
            yield sim, namespace, ports[-1]  # a port the agent offers, for /metrics
            # The imported apps are Orphan: their deletion leaves Marathon alone.
            kube_env.kubectl_run("delete", "marathonapps", "--all", "-n", namespace,
                                 "--timeout=60s")  # fmt: skip
    finally:
        kube_env.kubectl_run("delete", "mesosclusters", "--all", "-n", namespace, "--timeout=60s")
        kube_env.kubectl_run("delete", "namespace", namespace, "--wait=false")


def _snapshot(marathon: str) -> dict[str, tuple[str, dict[str, Any], list[str]]]:
    """app id -> (version, versionInfo, sorted task ids)."""
    apps = httpx.get(marathon + "/v2/apps", params={"embed": "apps.tasks"}, timeout=10).json()
    return {
        a["id"]: (a["version"], a.get("versionInfo") or {}, sorted(t["id"] for t in a["tasks"]))
        for a in apps["apps"]
    }


def test_import_adopts_20_apps_without_a_restart_and_the_plan_names_each_feature(
    legacy: tuple[SimCluster, str, int],
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    sim, namespace, fixed = legacy
    marathon = sim.marathon_url()
    apps = _apps(fixed)
    assert len(apps) == 20
    # /metrics requires one fixed host port; Marathon gives other apps' dynamic ports from the
    # same offers in a random order, so it runs first, before any other app can take its port.
    first = [app for app in apps if app["id"] == "/metrics"]
    for app in first + [app for app in apps if app["id"] != "/metrics"]:
        posted = httpx.post(marathon + "/v2/apps", json=app, timeout=10)
        assert posted.status_code == 201, (app["id"], posted.text)
        if app in first:
            wait_for(
                "/metrics running on its fixed port",
                lambda: (
                    httpx.get(marathon + "/v2/apps/metrics", timeout=5).json()["app"][
                        "tasksRunning"
                    ]
                    == 1
                ),
                60,
                lambda: httpx.get(marathon + "/v2/queue", timeout=5).text,
            )

    def settled() -> bool:
        if httpx.get(marathon + "/v2/deployments", timeout=5).json():
            return False
        listed = httpx.get(marathon + "/v2/apps", timeout=5).json()["apps"]
        return all(
            a["tasksRunning"] == a["instances"]
            and (not a["healthChecks"] or a["tasksHealthy"] == a["instances"])
            for a in listed
        )

    def unsettled() -> str:
        listed = httpx.get(marathon + "/v2/apps", timeout=5).json()["apps"]
        deployments = httpx.get(marathon + "/v2/deployments", timeout=5).json()
        return json.dumps({
            "deployments": [d.get("affectedApps") for d in deployments],
            "apps": {a["id"]: [a["instances"], a["tasksRunning"], a["tasksHealthy"]]
                     for a in listed if a["tasksRunning"] != a["instances"]
                     or (a["healthChecks"] and a["tasksHealthy"] != a["instances"])},
        })  # fmt: skip

    wait_for("the 20 apps running and healthy", settled, 240, unsettled)
    before = _snapshot(marathon)
    assert sum(len(tasks) for _, _, tasks in before.values()) == 15

    out = tmp_path / "gitops"
    args = ["--cluster", CLUSTER, "-n", namespace]
    with EventStream(marathon + "/v2/events") as events:
        # A dry run writes nothing and says what would be new.
        dry = _cli(kube_env, "import", *args, "--out", str(out), "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.count("new ") == 19, dry.stdout
        assert "skipped   /legacy/privileged: " in dry.stdout
        assert not out.exists()

        done = _cli(kube_env, "import", *args, "--out", str(out))
        assert done.returncode == 0, done.stderr
        print(done.stdout)
        files = sorted(p.name for p in out.glob("*.yaml"))
        assert len(files) == 19 and "shop-worker.yaml" in files and "batch-etl-loader.yaml" in files
        worker = (out / "shop-worker.yaml").read_text()
        assert "tok-21-secret" not in worker and "pw-21" not in worker
        assert "NEEDS A PERSON: Secret shop-worker-env" in done.stdout
        manifest = yaml.safe_load((out / "web.yaml").read_text())
        assert manifest["spec"]["app"]["labels"]["HAPROXY_0_VHOST"] == "web.example.org"
        loader = yaml.safe_load((out / "batch-etl-loader.yaml").read_text())
        assert loader["metadata"]["labels"] == {"orchestrator.dev/marathon-group": "batch.etl"}
        assert "applying it changes" not in done.stdout  # every manifest adopts as it is

        again = _cli(kube_env, "import", *args, "--out", str(out), "--dry-run")
        assert again.stdout.count("unchanged ") == 19, again.stdout

        # The person's part: the Secret named in the manifest, with Marathon's values.
        secret = {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shop-worker-env", "namespace": namespace,
                         "labels": {"orchestrator.dev/marathonapp-env": "true"}},
            "stringData": {"API_TOKEN": "tok-21-secret",
                           "DATABASE_URL": "postgres://shop:pw-21@db:5432/shop"},
        }  # fmt: skip
        made = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(secret))
        assert made.returncode == 0, made.stderr
        applied = kube_env.kubectl_run("apply", "-f", str(out))
        assert applied.returncode == 0, applied.stderr

        def statuses() -> dict[str, dict[str, Any]]:
            found = kube_env.kubectl_run("get", "mapp", "-n", namespace, "-o", "json")
            items = json.loads(found.stdout)["items"] if found.returncode == 0 else []
            return {i["metadata"]["name"]: i for i in items}

        def adopted() -> bool:
            items = statuses()
            return len(items) == 19 and all(
                (i.get("status") or {}).get("observedGeneration") == i["metadata"]["generation"]
                and i["status"].get("phase") == "Ready"
                and (i["status"].get("marathon") or {}).get("version")
                for i in items.values()
            )

        wait_for("the 19 MarathonApps Ready and applied", adopted, 120,
                 lambda: json.dumps({k: v.get("status") for k, v in statuses().items()})[:4000]
                 + operator.log_tail())  # fmt: skip
        # A few more seconds of the operator's sync: still nothing sent.
        time.sleep(3)
        after = _snapshot(marathon)
        posts = events.of_type("api_post_event")
        deployments = events.of_type("deployment_info") + events.of_type("deployment_success")

    assert posts == [], [p.get("uri") for p in posts]
    assert deployments == []
    assert after == before  # versions, versionInfo and task ids: nothing restarted or changed
    items = statuses()
    assert all(not (i["status"].get("drift") or {}).get("detected") for i in items.values())
    verdicts = {n: i["status"]["readiness"]["verdict"] for n, i in items.items()}
    assert verdicts["docker-db"] == "Blocked"
    assert verdicts["shop-cron"] == "Blocked"  # a command with no image, and a command check
    assert verdicts["docker-web"] == "Ready"

    # The readiness report on the same 20 apps.
    plan = _cli(kube_env, "plan", *args, "--json")
    assert plan.returncode == 0, plan.stderr
    rows = {r["appId"]: r for r in json.loads(plan.stdout)["apps"]}
    assert len(rows) == 20

    def named(app_id: str) -> set[str]:
        return {f["feature"] for f in rows[app_id]["findings"] if f["severity"] != "Info"}

    assert "constraint without a clean affinity equivalent" in named("/batch/etl/spread")
    assert "persistent volume" in named("/docker/db")
    assert "host port" in named("/metrics") and "host port" in named("/docker/hostport")
    assert "executor-specific feature" in named("/shop/cron")
    assert "Mesos-only feature" in named("/partition-aware")
    assert "command health check" in named("/shop/cron")
    assert "fetch URI" in named("/fetcher")
    assert "secret in env" in named("/shop/worker")
    assert "dependency" in named("/deps/app")
    assert {"GPUs", "user"} <= named("/docker/gpu")
    assert "not importable" in named("/legacy/privileged")
    assert rows["/docker/web"]["verdict"] == "Ready"
    assert rows["/shop/api"]["findings"][0]["feature"] == "executor-specific feature"
    table = _cli(kube_env, "plan", *args)
    assert table.returncode == 0, table.stderr
    print(table.stdout)
    assert "20 apps: " in table.stdout
    assert "/docker/db" in table.stdout and "persistent volume" in table.stdout
