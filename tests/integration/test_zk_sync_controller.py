"""``orchestrator zk-sync controller`` as a real process against testenv's API server and
real ZooKeeper ensembles: ZkMigrations are created and their status.syncRequest written
here, as the operator's handlers would (the operator does not run in these tests)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kazoo.security import make_acl

from testenv.kube import KubeTestEnv
from tests.fixtures.sync_controller import SyncControllerFactory
from tests.fixtures.zk_sync import zk_client
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper]

GROUP_PATH = "/apis/orchestrator.dev/v1alpha1"
T = TypeVar("T")


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    name = f"zk-sync-ctl-{uuid.uuid4().hex[:6]}"
    kube_env.api("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    kube_env.kubectl_run("delete", "namespace", name, "--wait=false")


def create_migration(env: KubeTestEnv, namespace: str, name: str, target: str) -> None:
    env.api(
        "POST",
        f"{GROUP_PATH}/namespaces/{namespace}/zkmigrations",
        {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "ZkMigration",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterRef": "demo", "target": {"external": {"connectString": target}}},
        },
    )


def request_sync(env: KubeTestEnv, namespace: str, name: str, **request: Any) -> None:
    """Write status.syncRequest through the status subresource, as the operator does."""
    body = json.dumps({"status": {"syncRequest": request}})
    result = env.kubectl_run(
        "patch", "zkmigration", name, "-n", namespace, "--subresource=status",
        "--type=merge", "-p", body,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def sync_status(env: KubeTestEnv, namespace: str, name: str) -> dict[str, Any]:
    obj = env.api("GET", f"{GROUP_PATH}/namespaces/{namespace}/zkmigrations/{name}")
    sync: dict[str, Any] = (obj.get("status") or {}).get("sync") or {}
    return sync


def wait_for(check: Callable[[], T | None], timeout: float, what: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s: {what()}")


def test_controller_syncs_reports_stops_and_survives_an_unreachable_ensemble(
    kube_env: KubeTestEnv,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
) -> None:
    a = zk_ensemble_factory(size=1)
    b = zk_ensemble_factory(size=1)
    controller = sync_controller_factory(
        "--namespace", namespace, "--connect-timeout", "3", "--interval", "0.5"
    )
    with zk_client(a.connect_string) as ca, zk_client(b.connect_string) as cb:
        ca.create("/mesos/seed", b"seed", makepath=True)
        ca.create("/marathon/state", b"s", makepath=True)

        create_migration(kube_env, namespace, "m1", b.connect_string)
        request = {
            "active": True,
            "source": a.connect_string,
            "target": b.connect_string,
            "paths": ["/mesos", "/marathon"],
            "strategy": "SourceWins",
        }
        request_sync(kube_env, namespace, "m1", **request)

        def status(name: str = "m1") -> dict[str, Any]:
            return sync_status(kube_env, namespace, name)

        def explain(name: str = "m1") -> Callable[[], str]:
            return lambda: f"status.sync {status(name)}\ncontroller log:\n{controller.log_tail()}"

        running = wait_for(
            lambda: (s := status()).get("state") == "Running" and s.get("bootstrapped") and s,
            60,
            explain(),
        )
        assert running["bootstrapZnodes"] >= 4  # /mesos, /mesos/seed, /marathon, /marathon/state
        assert running["bootstrapSeconds"] >= 0
        assert "lastReconcileTime" in running and "updatedAt" in running
        assert cb.get("/mesos/seed")[0] == b"seed"

        # A -> B, then the report: digests equal, no differences, a lag p99 from the events.
        for i in range(10):
            ca.create(f"/mesos/n{i}", f"v{i}".encode())
        wait_for(lambda: cb.exists("/mesos/n9") is not None, 30, explain())
        settled = wait_for(  # a verify that saw the new znodes
            lambda: (
                (s := status()).get("znodesSource") == 14
                and s.get("digestsEqual") is True
                and s.get("differences") == 0
                and s.get("lagP99Seconds") is not None
                and s
            ),
            30,
            explain(),
        )
        assert settled["state"] == "Running"
        assert settled["znodesTarget"] == 14
        assert settled["conflicts"] == 0
        assert 0 <= settled["lagP99Seconds"] < 30
        assert "lastVerifyTime" in settled

        # B -> A: the controller runs the engine bidirectionally.
        cb.create("/marathon/from-b", b"b")
        wait_for(lambda: ca.exists("/marathon/from-b") is not None, 30, explain())

        # An unreachable source: Retrying with a clear message (not Failed: issue 18), and
        # m1 goes on.
        create_migration(kube_env, namespace, "m2", b.connect_string)
        request_sync(kube_env, namespace, "m2", **{**request, "source": "127.0.0.1:1"})
        failed = wait_for(
            lambda: (s := status("m2")).get("state") == "Retrying" and s, 60, explain("m2")
        )
        assert "source ensemble 127.0.0.1:1 unreachable" in failed["message"], failed
        assert "retrying in" in failed["message"]
        before = status()["updatedAt"]
        ca.create("/mesos/while-m2-fails", b"x")
        wait_for(lambda: cb.exists("/mesos/while-m2-fails") is not None, 30, explain())
        wait_for(lambda: status()["updatedAt"] != before, 10, explain())
        assert status()["state"] == "Running"
        assert controller.get("/healthz")[0] == 200
        assert controller.get("/readyz")[0] == 200

        # /metrics: the engine's metrics, labelled per migration.
        lag = controller.metric_samples(
            "orchestrator_zk_sync_replication_lag_seconds_count",
            namespace=namespace,
            migration="m1",
            direction="a_to_b",
        )
        assert lag and lag[0][1] >= 10, lag
        assert (
            controller.metric_samples(
                "orchestrator_zk_sync_connected", namespace=namespace, migration="m1", side="b"
            )[0][1]
            == 1
        )
        failed_gauge = controller.metric_samples(
            "orchestrator_zk_sync_controller_migrations", state="Retrying"
        )
        assert failed_gauge and failed_gauge[0][1] == 1

        # Inactive: Stopped, and changes stop flowing.
        request_sync(kube_env, namespace, "m1", **{**request, "active": False})
        stopped = wait_for(lambda: (s := status()).get("state") == "Stopped" and s, 30, explain())
        assert "syncRequest.active is false" in stopped["message"]
        assert stopped["bootstrapped"] is False
        assert "lagP99Seconds" not in stopped
        ca.create("/mesos/after-stop", b"x")
        cb.create("/marathon/after-stop", b"x")
        time.sleep(4)
        assert cb.exists("/mesos/after-stop") is None
        assert ca.exists("/marathon/after-stop") is None
        assert not controller.metric_samples(
            "orchestrator_zk_sync_replication_lag_seconds_count", migration="m1"
        )

        # Deleting the failing migration ends its retries.
        kube_env.api("DELETE", f"{GROUP_PATH}/namespaces/{namespace}/zkmigrations/m2")
        wait_for(
            lambda: (
                controller.metric_samples(
                    "orchestrator_zk_sync_controller_migrations", state="Retrying"
                )[0][1]
                == 0
            ),
            30,
            lambda: controller.log_tail(),
        )
        assert controller.process.poll() is None


def test_changed_request_restarts_the_engine_and_deletion_forgets_its_state(
    kube_env: KubeTestEnv,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
    tmp_path: Path,
) -> None:
    a, b, c = (zk_ensemble_factory(size=1) for _ in range(3))
    controller = sync_controller_factory("--namespace", namespace, "--interval", "0.5")
    state_file = tmp_path / "sync-state-0" / f"{namespace}_m.json"
    with zk_client(a.connect_string) as ca, zk_client(c.connect_string) as cc:
        ca.create("/mesos/one", b"1", makepath=True)
        create_migration(kube_env, namespace, "m", b.connect_string)
        request = {"active": True, "source": a.connect_string, "target": b.connect_string,
                   "paths": ["/mesos"], "strategy": "Manual"}  # fmt: skip
        request_sync(kube_env, namespace, "m", **request)

        def status() -> dict[str, Any]:
            return sync_status(kube_env, namespace, "m")

        def explain() -> str:
            return f"status.sync {status()}\ncontroller log:\n{controller.log_tail()}"

        wait_for(lambda: status().get("state") == "Running", 60, explain)
        assert "(bidirectional, Manual)" in status()["message"]
        wait_for(state_file.exists, 10, explain)

        # Another target: the engine for B stops, one for C starts and bootstraps C.
        request_sync(kube_env, namespace, "m", **{**request, "target": c.connect_string})
        wait_for(lambda: cc.exists("/mesos/one") is not None, 60, explain)
        wait_for(
            lambda: (
                (s := status()).get("state") == "Running"
                and c.connect_string in s.get("message", "")
            ),
            30,
            explain,
        )
        ca.create("/mesos/two", b"2")
        wait_for(lambda: cc.exists("/mesos/two") is not None, 30, explain)
        with zk_client(b.connect_string) as cb:
            assert cb.exists("/mesos/one") is not None and cb.exists("/mesos/two") is None

        # Deleted: the engine stops and its state file goes.
        kube_env.api("DELETE", f"{GROUP_PATH}/namespaces/{namespace}/zkmigrations/m")
        wait_for(lambda: not state_file.exists(), 30, explain)
        ca.create("/mesos/three", b"3")
        time.sleep(3)
        assert cc.exists("/mesos/three") is None
        assert controller.process.poll() is None


def test_controller_refuses_to_sync_an_ensemble_onto_itself(
    kube_env: KubeTestEnv,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
) -> None:
    a, b = zk_ensemble_factory(size=1), zk_ensemble_factory(size=1)
    controller = sync_controller_factory("--namespace", namespace, "--interval", "0.5")
    same = a.connect_string.replace("127.0.0.1", "localhost")  # A by another name
    with zk_client(a.connect_string) as ca:
        ca.create("/mesos/agents", b"", makepath=True)
        for i in range(3):
            ca.create(f"/mesos/agents/agent-{i}", b"up", ephemeral=True)
        ca.create("/mesos/leader", b"me", ephemeral=True)

        def owners() -> dict[str, int]:
            paths = ["/mesos/leader"] + [
                f"/mesos/agents/{c}" for c in ca.get_children("/mesos/agents")
            ]
            return {p: s.ephemeralOwner for p in paths if (s := ca.exists(p)) is not None}

        before = owners()
        assert len(before) == 4

        create_migration(kube_env, namespace, "self", same)
        request = {"active": True, "source": a.connect_string, "target": same,
                   "paths": ["/mesos"], "strategy": "SourceWins"}  # fmt: skip
        request_sync(kube_env, namespace, "self", **request)

        def status() -> dict[str, Any]:
            return sync_status(kube_env, namespace, "self")

        def explain() -> str:
            return f"status.sync {status()}\ncontroller log:\n{controller.log_tail()}"

        failed = wait_for(lambda: (s := status()).get("state") == "Failed" and s, 60, explain)
        server = a.connect_string
        assert failed["message"] == (
            "source and target are the same ZooKeeper ensemble (server "
            f"{server}, named {same} in the target, answers for both); "
            "refusing to sync an ensemble onto itself"
        ), failed
        assert failed["bootstrapped"] is False
        # no retries: the report stays as it is, and the runner counts as Failed
        time.sleep(5)
        assert status() == failed, explain()
        assert controller.log_path.read_text().count("same ZooKeeper ensemble") == 1, explain()
        gauge = controller.metric_samples(
            "orchestrator_zk_sync_controller_migrations", state="Failed"
        )
        assert gauge and gauge[0][1] == 1
        assert owners() == before
        with zk_client(b.connect_string) as cb:
            assert cb.exists("/mesos") is None

        # Another target: a new runner, which syncs.
        request_sync(kube_env, namespace, "self", **{**request, "target": b.connect_string})
        wait_for(lambda: status().get("state") == "Running", 60, explain)
        with zk_client(b.connect_string) as cb:
            wait_for(lambda: cb.exists("/mesos/leader") is not None, 30, explain)
        assert owners() == before
        assert controller.process.poll() is None


def test_controller_passes_its_acl_sweep_rate_to_each_engine(
    kube_env: KubeTestEnv,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
) -> None:
    # ZooKeeper fires no watch for setACL: only the sweep finds an ACL-only change before
    # the full reconcile (an hour here). --acl-sweep-rate 0 turns the sweep off, as for
    # `zk-sync run`; the default would copy the ACL within a sweep.
    a, b = zk_ensemble_factory(size=1), zk_ensemble_factory(size=1)
    controller = sync_controller_factory(
        "--namespace", namespace, "--interval", "0.5",
        "--reconcile-interval", "3600", "--acl-sweep-rate", "0",
    )  # fmt: skip
    with zk_client(a.connect_string) as ca, zk_client(b.connect_string) as cb:
        ca.create("/mesos/acl", b"a", makepath=True)
        ca.create("/mesos/later", b"1")
        create_migration(kube_env, namespace, "sweep", b.connect_string)
        request = {"active": True, "source": a.connect_string, "target": b.connect_string,
                   "paths": ["/mesos"], "strategy": "SourceWins"}  # fmt: skip
        request_sync(kube_env, namespace, "sweep", **request)

        def explain() -> str:
            status = sync_status(kube_env, namespace, "sweep")
            return f"status.sync {status}\ncontroller log:\n{controller.log_tail()}"

        wait_for(lambda: cb.exists("/mesos/later") is not None, 60, explain)
        read_only = [make_acl("world", "anyone", read=True)]
        ca.set_acls("/mesos/acl", read_only)
        ca.set("/mesos/later", b"2")  # a watched change, copied after the ACL change
        wait_for(lambda: cb.get("/mesos/later")[0] == b"2", 30, explain)
        time.sleep(3)  # several sweep steps of 0.25 s, had the sweep been on
        assert cb.get_acls("/mesos/acl")[0] != read_only, explain()
        assert "aclLagSeconds" not in sync_status(kube_env, namespace, "sweep"), explain()
