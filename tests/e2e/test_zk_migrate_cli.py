"""`orchestrator zk-migrate` as a user runs it: a subprocess against the real API server of
testenv (CRDs installed, no operator: the status the commands read is written here through
the status subresource, as the operator would)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kazoo.client import KazooClient
from kazoo.security import make_acl

from orchestrator_operator.operator.zkmigration import archive
from orchestrator_operator.zk.reader import read_tree
from testenv.kube import KubeTestEnv
from testenv.zookeeper import ZkEnsemble

pytestmark = pytest.mark.kube
NS = "default"
SOURCE = "zk-a-0.zk:2181,zk-a-1.zk:2181,zk-a-2.zk:2181"
TARGET = "zk-b-0.zk:2181,zk-b-1.zk:2181,zk-b-2.zk:2181"
REPO = Path(__file__).resolve().parents[2]


def cli(env: KubeTestEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator_operator.cli", "zk-migrate", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": str(env.kubeconfig)},
        timeout=120,
    )


def kubectl_json(env: KubeTestEnv, *args: str) -> Any:
    result = env.kubectl_run(*args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def migrations(env: KubeTestEnv) -> list[str]:
    items = kubectl_json(env, "get", "zkmigrations", "-n", NS)["items"]
    return [item["metadata"]["name"] for item in items]


def write_status(env: KubeTestEnv, name: str, status: dict[str, Any]) -> None:
    result = env.kubectl_run(
        "patch", "zkmigration", name, "-n", NS, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _operators_of(env: KubeTestEnv) -> list[int]:
    """Pids of `orchestrator run` processes pointed at this control plane."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        running = b"orchestrator_operator.cli" in argv and b"run" in argv
        if running and f"KUBECONFIG={env.kubeconfig}".encode() in environ:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def operator_frozen(kube_env: KubeTestEnv) -> Iterator[None]:
    """These tests write a ZkMigration's status themselves; the session's operator, when an
    earlier test started it, would drive the migration and overwrite that status. SIGSTOP it
    meanwhile (its watches resume after SIGCONT)."""
    pids = _operators_of(kube_env)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def cluster(kube_env: KubeTestEnv) -> str:
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": "demo", "namespace": NS},
        "spec": {
            "zookeeper": {"external": {"connectString": SOURCE}},
            "masters": {"replicas": 3},
        },
    }
    result = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr
    return "demo"


def test_dry_run_prints_the_plan_and_creates_nothing(kube_env: KubeTestEnv, cluster: str) -> None:
    result = cli(
        kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
        "--target-connect", TARGET, "--manual", "--dry-run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for number, name in enumerate(
        ["SyncTarget", "MastersOnTarget", "RetireSourceMasters", "AgentsOnTarget",
         "DrainSource", "RetireSource"], start=1,
    ):  # fmt: skip
        assert f"phase {number} {name}" in out
    assert f"source A  {SOURCE} (the ensemble the cluster uses now)" in out
    assert f"target B  {TARGET} (external)" in out
    assert "masters on A: 1, on B: 2" in out  # a quorum on B after phase 2, moved one for one
    # The server filled the defaults in (it validated the object), and stored nothing.
    assert "paths     /mesos, /marathon" in out and "archive of A kept 72h" in out
    assert "server-side dry run: ZkMigration mig accepted" in out
    assert migrations(kube_env) == []


def test_dry_run_of_a_missing_cluster_is_a_clear_error(kube_env: KubeTestEnv) -> None:
    result = cli(kube_env, "start", "mig", "-n", NS, "--cluster", "nope",
                 "--target-connect", TARGET, "--dry-run")  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "zk-migrate start: MesosCluster nope not found in namespace default"
    )
    assert "Traceback" not in result.stderr


def test_start_creates_the_migration(kube_env: KubeTestEnv, cluster: str) -> None:
    result = cli(
        kube_env, "start", "mig", "-n", NS, "--cluster", cluster, "--target-managed-replicas",
        "3", "--path", "/mesos", "--path", "/marathon", "--manual", "--strategy", "LastWriteWins",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ZkMigration mig created" in result.stdout
    spec = kubectl_json(kube_env, "get", "zkmigration", "mig", "-n", NS)["spec"]
    assert spec["clusterRef"] == "demo"
    assert spec["target"]["managed"]["replicas"] == 3
    assert spec["paths"] == ["/mesos", "/marathon"]
    assert spec["approval"] == {"mode": "Manual", "approvedThroughPhase": 0}
    assert spec["conflictStrategy"] == "LastWriteWins"
    assert spec["rollbackRetention"] == "72h"  # the schema's default
    again = cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
                "--target-connect", TARGET)  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr


def test_target_equal_to_source_is_refused(kube_env: KubeTestEnv, cluster: str) -> None:
    # Given as the source: the CRD's CEL rule refuses it, in its words.
    result = cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
                 "--source", TARGET, "--target-connect", TARGET)  # fmt: skip
    assert result.returncode == 2
    assert "source and target must be different ZooKeeper ensembles" in result.stderr
    assert "the API server refused (422)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # The cluster's own ensemble as the target: the CLI sees it (the CEL rule cannot).
    for extra in ((), ("--dry-run",)):
        result = cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
                     "--target-connect", SOURCE, *extra)  # fmt: skip
        assert result.returncode == 2
        assert "source and target must be different ZooKeeper ensembles" in result.stderr
    assert migrations(kube_env) == []


@pytest.mark.usefixtures("operator_frozen")
def test_advance_and_rollback_patch_the_spec(kube_env: KubeTestEnv, cluster: str) -> None:
    assert cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
               "--target-connect", TARGET, "--manual").returncode == 0  # fmt: skip
    write_status(kube_env, "mig", {"phase": "AwaitingApproval", "currentPhase": 1})

    def spec() -> dict[str, Any]:
        result: dict[str, Any] = kubectl_json(kube_env, "get", "zkmigration", "mig", "-n", NS)[
            "spec"
        ]
        return result

    result = cli(kube_env, "advance", "mig", "-n", NS)
    assert result.returncode == 0, result.stderr
    assert spec()["approval"] == {"mode": "Manual", "approvedThroughPhase": 1}
    assert cli(kube_env, "advance", "mig", "-n", NS, "--through", "3").returncode == 0
    assert spec()["approval"]["approvedThroughPhase"] == 3

    write_status(kube_env, "mig", {"phase": "Running", "currentPhase": 3})
    refused = cli(kube_env, "rollback", "mig", "-n", NS, "--to", "3")
    assert refused.returncode == 2 and "below the current phase 3" in refused.stderr
    assert cli(kube_env, "rollback", "mig", "-n", NS, "--to", "0").returncode == 0
    assert spec()["rollbackToPhase"] == 0
    assert cli(kube_env, "rollback", "mig", "-n", NS, "--cancel").returncode == 0
    assert "rollbackToPhase" not in spec()


def test_advance_is_refused_in_automatic_mode(kube_env: KubeTestEnv, cluster: str) -> None:
    assert cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
               "--target-connect", TARGET).returncode == 0  # fmt: skip
    result = cli(kube_env, "advance", "mig", "-n", NS, "--through", "2")
    assert result.returncode == 2
    assert "approval mode Automatic" in result.stderr
    spec = kubectl_json(kube_env, "get", "zkmigration", "mig", "-n", NS)["spec"]
    assert spec["approval"] == {"mode": "Automatic", "approvedThroughPhase": 0}


@pytest.mark.usefixtures("operator_frozen")
def test_status_validate_and_report_read_the_status(kube_env: KubeTestEnv, cluster: str) -> None:
    assert cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
               "--target-connect", TARGET).returncode == 0  # fmt: skip
    running = {
        "phase": "Running",
        "currentPhase": 2,
        "sourceConnectString": SOURCE,
        "targetConnectString": TARGET,
        "phases": [
            {"number": 1, "name": "SyncTarget", "state": "Succeeded",
             "startedAt": "2026-11-28T00:00:00Z", "finishedAt": "2026-11-28T00:00:20Z"},
            {"number": 2, "name": "MastersOnTarget", "state": "Running",
             "startedAt": "2026-11-28T00:00:20Z"},
        ],
        "checks": ["masters on B: 1 ready, want 3"],
        "leader": {"id": "m1", "address": "10.0.0.1:5050", "changes": 0},
        "sync": {"state": "Running", "bootstrapped": True, "lagP99Seconds": 0.02,
                 "digestsEqual": True, "differences": 0, "conflicts": 0},
    }  # fmt: skip
    write_status(kube_env, "mig", running)

    status = cli(kube_env, "status", "mig", "-n", NS, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["checks"] == ["masters on B: 1 ready, want 3"]
    table = cli(kube_env, "status", "mig", "-n", NS)
    assert table.returncode == 0, table.stderr
    assert "MastersOnTarget" in table.stdout and "masters on B: 1 ready, want 3" in table.stdout

    failing = cli(kube_env, "validate", "mig", "-n", NS)
    assert failing.returncode == 1
    assert "FAIL masters on B: 1 ready, want 3" in failing.stdout
    write_status(kube_env, "mig", {"checks": []})
    passing = cli(kube_env, "validate", "mig", "-n", NS)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "digests of A and B are equal" in passing.stdout

    unfinished = cli(kube_env, "report", "mig", "-n", NS, "--json")
    assert unfinished.returncode == 1
    assert json.loads(unfinished.stdout)["succeeded"] is False

    names = ["SyncTarget", "MastersOnTarget", "RetireSourceMasters", "AgentsOnTarget",
             "DrainSource", "RetireSource"]  # fmt: skip
    finished = {
        "phase": "Succeeded",
        "currentPhase": 6,
        "phases": [
            {"number": n, "name": name, "state": "Succeeded",
             "startedAt": f"2026-11-28T00:0{n}:00Z", "finishedAt": f"2026-11-28T00:0{n}:10Z"}
            for n, name in enumerate(names, start=1)
        ],
        "baseline": {"recordedAt": "2026-11-28T00:01:00Z", "taskCount": 200,
                     "taskDigest": "0123456789abcdef"},
        "archive": ["mig-archive-0"],
        "archiveExpiresAt": "2026-12-01T00:06:10Z",
        "report": "ZkMigration report\nall good",
    }  # fmt: skip
    write_status(kube_env, "mig", finished)
    report = cli(kube_env, "report", "mig", "-n", NS, "--json")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["succeeded"] is True
    assert doc["cutoverSeconds"] == 250.0  # 00:02:00 to 00:06:10
    assert [p["seconds"] for p in doc["phases"]] == [10.0] * 6
    assert doc["baseline"]["taskCount"] == 200
    assert doc["archive"]["configMaps"] == ["mig-archive-0"]
    human = cli(kube_env, "report", "mig", "-n", NS)
    assert human.returncode == 0 and human.stdout.strip() == "ZkMigration report\nall good"
    watched = cli(kube_env, "status", "mig", "-n", NS, "--watch")  # ends: Succeeded
    assert watched.returncode == 0, watched.stderr
    assert "ZkMigration mig: Succeeded" in watched.stdout


def test_errors_are_one_line_and_exit_2(kube_env: KubeTestEnv, tmp_path: Path) -> None:
    missing = cli(kube_env, "status", "ghost", "-n", NS)
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == "zk-migrate status: ZkMigration ghost not found in namespace default"
    )
    no_config = subprocess.run(
        [sys.executable, "-m", "orchestrator_operator.cli", "zk-migrate", "validate", "x"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "KUBECONFIG": str(tmp_path / "absent")},
    )  # fmt: skip
    assert no_config.returncode == 2
    assert "no Kubernetes credentials" in no_config.stderr
    assert "Traceback" not in no_config.stderr


@pytest.mark.zookeeper
@pytest.mark.usefixtures("operator_frozen")
def test_restore_writes_the_archive_back(
    kube_env: KubeTestEnv, cluster: str, zk_ensemble: ZkEnsemble
) -> None:
    """Phase 6's archive of A (real ZooKeeper, real ConfigMaps, three parts) written back
    after A lost a subtree and one znode changed."""
    zk = KazooClient(hosts=zk_ensemble.connect_string)
    zk.start(timeout=15)
    try:
        zk.create("/rt/mesos/log", b"entries", makepath=True)
        for i in range(30):  # incompressible, so the archive takes several ConfigMaps
            zk.create(f"/rt/mesos/log/{i:02}", os.urandom(60_000))
        zk.create("/rt/marathon/state", b"v1", makepath=True)
        zk.create("/rt/marathon/frozen", b"ro", acl=[make_acl("world", "anyone", read=True)])
        tree = read_tree(zk, ["/rt/mesos", "/rt/marathon"], leaf_children=True)
        blob = archive.archive_lines(tree)

        assert cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
                   "--target-connect", TARGET).returncode == 0  # fmt: skip
        mig = kubectl_json(kube_env, "get", "zkmigration", "mig", "-n", NS)
        owner = {"apiVersion": mig["apiVersion"], "kind": "ZkMigration", "name": "mig",
                 "uid": mig["metadata"]["uid"]}  # fmt: skip
        parts = archive.archive_configmaps("mig", NS, owner, blob, datetime.now(UTC))
        assert len(parts) >= 2
        applied = kube_env.kubectl_run("create", "-f", "-",
                                       input=yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                             "items": parts}))  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        names = [p["metadata"]["name"] for p in parts]
        write_status(
            kube_env,
            "mig",
            {
                "phase": "Succeeded",
                "archive": names,
                "sourceConnectString": zk_ensemble.connect_string,
            },
        )

        zk.delete("/rt/mesos", recursive=True)  # lost on A
        zk.set("/rt/marathon/state", b"v2")  # changed since

        dry = cli(kube_env, "restore", "mig", "-n", NS, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "35 znodes" in dry.stdout and "2 already equal, 32 to create" in dry.stdout
        assert "1 differ and are kept" in dry.stdout and "/rt/marathon/state" in dry.stdout
        assert not zk.exists("/rt/mesos")

        restored = cli(kube_env, "restore", "mig", "-n", NS)
        assert restored.returncode == 0, restored.stderr
        assert "written: 32 znodes" in restored.stdout
        assert zk.get("/rt/mesos/log")[0] == b"entries"
        assert sorted(zk.get_children("/rt/mesos/log")) == [f"{i:02}" for i in range(30)]
        assert zk.get("/rt/marathon/state")[0] == b"v2"  # kept
        assert zk.get_acls("/rt/marathon/frozen")[0] == [make_acl("world", "anyone", read=True)]

        again = cli(kube_env, "restore", "mig", "-n", NS, "--overwrite")
        assert again.returncode == 0, again.stderr
        assert "34 already equal" in again.stdout and "1 to overwrite" in again.stdout
        assert zk.get("/rt/marathon/state")[0] == b"v1"

        kube_env.kubectl_run("delete", "configmap", names[1], "-n", NS)
        gone = cli(kube_env, "restore", "mig", "-n", NS, "--to", zk_ensemble.connect_string)
        assert gone.returncode == 2
        assert gone.stderr.strip() == (
            f"zk-migrate restore: archive ConfigMaps not found (expired or deleted): {names[1]}"
        )
    finally:
        kube_env.kubectl_run("delete", "configmap", "-n", NS,
                             "-l", "orchestrator.dev/zkmigration=mig")  # fmt: skip
        zk.delete("/rt", recursive=True)
        zk.stop()
        zk.close()


@pytest.mark.usefixtures("operator_frozen")
def test_restore_without_an_archive_says_why(kube_env: KubeTestEnv, cluster: str) -> None:
    assert cli(kube_env, "start", "mig", "-n", NS, "--cluster", cluster,
               "--target-connect", TARGET).returncode == 0  # fmt: skip
    result = cli(kube_env, "restore", "mig", "-n", NS)
    assert result.returncode == 2
    assert "no archive: it is written in phase 6" in result.stderr
