"""``orchestrator zk-sync`` from the command line: bad input gets a clear error and a
non-zero exit (or a counted error), never silent data loss; verify; /healthz of a real
process."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kazoo.security import ACL, Id, make_digest_acl

from orchestrator_operator.sync.engine import SyncConfig, SyncEngine
from orchestrator_operator.sync.main import main
from testenv.processes import free_port
from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import EngineProcess, ZkPair, unique_root, wait_until, zk_client

pytestmark = pytest.mark.zookeeper

zk_pair = support.zk_pair
pair = support.pair


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["zk-sync", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_source_path_is_an_error(pair: ZkPair, capsys: pytest.CaptureFixture[str]) -> None:
    root = unique_root("absent")
    code, _, err = run_cli(
        capsys,
        "--source", pair.a.connect_string, "--target", pair.b.connect_string,
        "--path", root, "--metrics-port", "0",
    )  # fmt: skip
    assert code == 2
    assert f"source path(s) {root} do not exist" in err
    with zk_client(pair.b.connect_string) as cb:
        assert cb.exists(root) is None


def test_unreachable_ensemble_is_an_error(pair: ZkPair, capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    for args in (
        ["--source", dead, "--target", pair.b.connect_string],
        ["--source", pair.a.connect_string, "--target", dead],
    ):
        started = time.monotonic()
        code, _, err = run_cli(
            capsys, *args, "--path", "/x", "--connect-timeout", "2", "--metrics-port", "0"
        )
        assert code == 2
        assert f"ensemble {dead} unreachable" in err
        assert time.monotonic() - started < 60
    code, _, err = run_cli(capsys, "verify", *args, "--path", "/x", "--connect-timeout", "2")
    assert code == 2 and "unreachable" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "127.0.0.1:1", "--path", "/x"], "missing required option(s): --source"),
        (["--source", "127.0.0.1:1", "--target", "127.0.0.1:1"], "--path"),
        (["--source", "nohost", "--target", "127.0.0.1:1", "--path", "/x"], "not host:port"),
        (["--source", "127.0.0.1:1", "--target", "127.0.0.1:1", "--path", "x"], "absolute"),
        (
            ["--source", "127.0.0.1:1", "--target", "127.0.0.1:1", "--path", "/zookeeper"],
            "ZooKeeper's own subtree",
        ),
        (
            ["--source", "127.0.0.1:1", "--target", "127.0.0.2:1", "--path", "/x",
             "--acl-sweep-rate", "-1"],
            "--acl-sweep-rate must be from 0 (off) to 100000 znodes/s, got -1",
        ),
        (
            ["--source", "127.0.0.1:1", "--target", "127.0.0.2:1", "--path", "/x",
             "--acl-sweep-rate", "1e9"],
            "--acl-sweep-rate must be a whole number, got '1e9'",
        ),
        (
            ["--source", "127.0.0.1:1", "--target", "127.0.0.2:1", "--path", "/x",
             "--acl-sweep-rate", "100001"],
            "to 100000 znodes/s, got 100001",
        ),
    ],
)  # fmt: skip
def test_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, *argv, "--metrics-port", "0", "--connect-timeout", "1")
    assert code == 2
    assert message in err


def test_unreadable_znode_is_counted_and_never_deleted(
    pair: ZkPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root = unique_root("acl")
    with zk_client(pair.a.connect_string) as ca, zk_client(pair.b.connect_string) as cb:
        ca.create(f"{root}/secret/inner", b"precious", makepath=True)
        ca.create(f"{root}/plain", b"p")
        config = SyncConfig(pair.a.connect_string, pair.b.connect_string, [root])
        with SyncEngine(config) as engine:
            wait_until(lambda: cb.exists(f"{root}/secret/inner") is not None, 30, "copy")
            # Lock the engine out of the source's /secret subtree.
            ca.set_acls(f"{root}/secret", [make_digest_acl("alice", "pw", all=True)])
            ca.set(f"{root}/plain", b"p2")
            engine.request_full_reconcile()
            wait_until(
                lambda: (
                    (
                        engine.metrics.registry.get_sample_value(
                            "orchestrator_zk_sync_errors_total", {"kind": "unreadable"}
                        )
                        or 0
                    )
                    > 0
                ),
                30,
                "counted unreadable error",
            )
            wait_until(lambda: cb.get(f"{root}/plain")[0] == b"p2", 30, "other nodes still sync")
            assert engine.wait_idle(30)
            # what the engine cannot read on the source is left alone on the target
            assert cb.get(f"{root}/secret/inner")[0] == b"precious"
            _healthy, detail = engine.health()
            assert f"{root}/secret" in str(detail["unreadable"])
        code, out, _ = run_cli(
            capsys, "verify", "--source", pair.a.connect_string,
            "--target", pair.b.connect_string, "--path", root,
        )  # fmt: skip
        assert code == 1
        assert f"cannot read {root}/secret on source" in out


def test_verify_reports_differences(pair: ZkPair, capsys: pytest.CaptureFixture[str]) -> None:
    root = unique_root("verify")
    with zk_client(pair.a.connect_string) as ca, zk_client(pair.b.connect_string) as cb:
        for client in (ca, cb):
            client.create(f"{root}/same", b"1", makepath=True)
        common = ["--source", pair.a.connect_string, "--target", pair.b.connect_string]
        code, out, _ = run_cli(capsys, "verify", *common, "--path", root)
        assert code == 0 and "in sync" in out
        ca.create(f"{root}/only-a", b"")
        cb.set(f"{root}/same", b"2")
        code, out, _ = run_cli(capsys, "verify", *common, "--path", root, "--json")
        assert code == 1
        report = json.loads(out)
        assert report["in_sync"] is False
        kinds = {(d["path"], d["kind"]) for d in report["differences"]}
        assert kinds == {(f"{root}/only-a", "missing_on_target"), (f"{root}/same", "data")}


def test_run_process_serves_healthz_and_stops_on_sigterm(pair: ZkPair, tmp_path: Path) -> None:
    root = unique_root("proc")
    port = free_port()
    with zk_client(pair.a.connect_string) as ca, zk_client(pair.b.connect_string) as cb:
        ca.create(f"{root}/x", b"1", makepath=True)
        engine = EngineProcess(
            [
                "--source",
                pair.a.connect_string,
                "--target",
                pair.b.connect_string,
                "--path",
                root,
                "--metrics-port",
                str(port),
            ],
            tmp_path / "engine.log",
        )
        engine.start()
        try:

            def healthy() -> bool:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as resp:
                        return bool(resp.status == 200)
                except (urllib.error.URLError, ConnectionError):
                    return False

            wait_until(healthy, 60, "healthz 200")
            wait_until(lambda: cb.exists(f"{root}/x") is not None, 30, "copy")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
                assert b"orchestrator_zk_sync_operations_total" in resp.read()
        finally:
            code = engine.terminate()
        assert code == 0, engine.log_tail()


def health(port: int) -> dict[str, Any]:
    """The /healthz document of a running engine process ({} while it is not serving)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # 503 has the same body
        body = exc.read()
    except (urllib.error.URLError, ConnectionError):
        return {}
    doc: dict[str, Any] = json.loads(body)
    return doc


@pytest.mark.parametrize("rate", [50, 0], ids=["50 per second", "off"])
def test_acl_sweep_rate_flag(pair: ZkPair, tmp_path: Path, rate: int) -> None:
    """`--acl-sweep-rate N` is the engine's sweep: with a rate an ACL-only change reaches B
    (ZooKeeper fires no watch for it) and /healthz gives the sweep's duration; with 0 there
    is no sweep, and the change waits for the full reconcile (an hour here) while a later
    data change arrives."""
    root = unique_root("sweep")
    port = free_port()
    closed = [ACL(31, Id("ip", "127.0.0.1"))]
    with zk_client(pair.a.connect_string) as ca, zk_client(pair.b.connect_string) as cb:
        ca.create(f"{root}/acl", b"1", makepath=True)
        ca.create(f"{root}/data", b"1")
        engine = EngineProcess(
            ["--source", pair.a.connect_string, "--target", pair.b.connect_string,
             "--path", root, "--metrics-port", str(port), "--reconcile-interval", "3600",
             "--acl-sweep-rate", str(rate)],
            tmp_path / "engine.log",
        )  # fmt: skip
        engine.start()
        try:
            wait_until(lambda: health(port).get("worker_alive") is True, 60, "/healthz")
            wait_until(lambda: cb.exists(f"{root}/data") is not None, 30, "bootstrap copy")
            ca.set_acls(f"{root}/acl", closed)
            ca.set(f"{root}/data", b"2")
            wait_until(lambda: cb.get(f"{root}/data")[0] == b"2", 30, "the data change")
            if rate:
                wait_until(lambda: cb.get_acls(f"{root}/acl")[0] == closed, 30, "the ACL")
                wait_until(lambda: "a" in health(port)["acl_sweep_seconds"], 30, "a sweep")
            else:
                assert cb.get_acls(f"{root}/acl")[0] != closed
                assert health(port)["acl_sweep_seconds"] == {}
        finally:
            code = engine.terminate()
        assert code == 0, engine.log_tail()
