"""``zk-sync run`` refuses an ensemble given as both source and target (the same connect
string, its servers in another order, by another name, or disjoint servers of it): exit 2,
one line on stderr, before any session, and the clients' ephemerals are all still there.
Two different ensembles are still synced (test_zk_sync_cli.py runs the process)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient

from orchestrator_operator.sync.engine import SyncConfig, SyncEngine
from orchestrator_operator.sync.main import main
from orchestrator_operator.zk.identity import (
    SameEnsembleError,
    check_distinct,
    read_ensemble,
    same_ensemble,
)
from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import REPO, ZkPair, unique_root, zk_client
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = pytest.mark.zookeeper

zk_pair = support.zk_pair
pair = support.pair

REFUSAL = "refusing to sync an ensemble onto itself"


def servers(connect: str) -> list[str]:
    return connect.split(",")


VARIANTS: dict[str, Callable[[str], tuple[str, str, str]]] = {
    # name: connect string of A -> (source, target, the reason in the message)
    "identical": lambda a: (a, a, f"server {servers(a)[0]} answers for both"),
    "another order": lambda a: (
        a,
        ",".join(reversed(servers(a))),
        f"server {servers(a)[0]} answers for both",
    ),
    "localhost": lambda a: (
        a,
        a.replace("127.0.0.1", "localhost"),
        f"server {servers(a)[0]}, named {servers(a)[0].replace('127.0.0.1', 'localhost')} "
        "in the target, answers for both",
    ),
    "disjoint servers": lambda a: (
        servers(a)[0],
        ",".join(servers(a)[1:]),
        "as a member",
    ),
}


def with_ephemerals(client: KazooClient, root: str) -> dict[str, int]:
    """A client's znodes under ``root``: persistent ones and ephemerals it owns."""
    client.create(f"{root}/services/web", b"persistent", makepath=True)
    for i in range(5):
        client.create(f"{root}/services/web/instance-{i}", f"{i}".encode(), ephemeral=True)
    client.create(f"{root}/leader", b"me", ephemeral=True)
    return owners(client, root)


def owners(client: KazooClient, root: str) -> dict[str, int]:
    found = {}
    for path in [f"{root}/leader"] + [
        f"{root}/services/web/{c}" for c in client.get_children(f"{root}/services/web")
    ]:
        stat = client.exists(path)
        if stat is not None:
            found[path] = stat.ephemeralOwner
    return found


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_run_refuses_the_same_ensemble(pair: ZkPair, variant: str) -> None:
    source, target, reason = VARIANTS[variant](pair.a.connect_string)
    root = unique_root("self")
    with zk_client(pair.a.connect_string) as client:
        before = with_ephemerals(client, root)
        assert len(before) == 6 and set(before.values()) == {client.client_id[0]}
        for args in (["--bidirectional"], []):  # both ways and one-way
            # a process of its own: stderr is what the user sees, not other tests' threads
            result = subprocess.run(
                [sys.executable, "-m", "orchestrator_operator.cli", "zk-sync", "run",
                 "--source", source, "--target", target, "--path", root,
                 "--metrics-port", "0", "--connect-timeout", "5", *args],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            code, err = result.returncode, result.stderr
            assert code == 2, err
            lines = err.strip().splitlines()
            assert len(lines) == 1, err
            assert lines[0].startswith(
                "zk-sync: error: source and target are the same ZooKeeper ensemble ("
            )
            assert reason in lines[0] and lines[0].endswith(REFUSAL), lines[0]
        # the clients' ephemerals, still theirs, and nothing else written
        assert owners(client, root) == before
        assert set(client.get_children(root)) == {"services", "leader"}
        assert client.get(f"{root}/services/web")[0] == b"persistent"


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
def test_the_engine_itself_refuses_one_ensemble_twice(pair: ZkPair, bidirectional: bool) -> None:
    """Every user of the engine gets the refusal, not only `zk-sync run` and the
    controller: SyncEngine.start on one ensemble given twice raises before any session,
    and the clients' ephemerals are untouched (before: the engine started and took them)."""
    a = pair.a.connect_string
    root = unique_root("self-engine")
    with zk_client(a) as client:
        before = with_ephemerals(client, root)
        target = ",".join(reversed(servers(a)))
        engine = SyncEngine(
            SyncConfig(a, target, [root], bidirectional=bidirectional, connect_timeout=5.0)
        )
        try:
            with pytest.raises(SameEnsembleError, match=REFUSAL):
                engine.start()
            assert engine.clients == {}  # no session was opened
        finally:
            engine.stop()
        assert owners(client, root) == before
        assert set(client.get_children(root)) == {"services", "leader"}


def test_refusal_as_a_process_exits_2_with_one_line(pair: ZkPair) -> None:
    a = pair.a.connect_string
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator_operator.cli", "zk-sync", "run",
         "--source", a, "--target", a, "--path", "/mesos", "--metrics-port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"zk-sync: error: source and target are the same ZooKeeper ensemble "
        f"(server {servers(a)[0]} answers for both); {REFUSAL}"
    )


def test_verify_of_an_ensemble_against_itself_is_allowed(
    pair: ZkPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root = unique_root("self-verify")
    a = pair.a.connect_string
    with zk_client(a) as client:
        with_ephemerals(client, root)
        code = main(["zk-sync", "verify", "--source", a, "--target", a, "--path", root])
        out, _ = capsys.readouterr()
        assert code == 0 and "in sync" in out


def test_the_servers_tell_two_ensembles_apart(pair: ZkPair) -> None:
    a, b = pair.a.connect_string, pair.b.connect_string
    verdict = check_distinct(a, b)
    assert not verdict.same and verdict.confirmed and not verdict.notes
    # one server of A down: the others still say who they are
    pair.a.stop_server(0)
    verdict = same_ensemble(read_ensemble(servers(a)[0]), read_ensemble(",".join(servers(a)[1:])))
    assert verdict.same and not verdict.confirmed
    assert verdict.reason.startswith(f"source server {servers(a)[0]} is server.1=")
    assert "unreachable" in verdict.notes[0]


def test_without_conf_the_connect_strings_are_compared_and_the_log_says_so(
    zk_ensemble_factory: ZkEnsembleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    zk = zk_ensemble_factory(size=1, extra_config={"4lw.commands.whitelist": "srvr,ruok,mntr"})
    a = zk.connect_string
    root = unique_root("self-no-conf")
    with zk_client(a) as client:
        before = with_ephemerals(client, root)
        code = main(
            ["zk-sync", "run", "--source", a, "--target", a.replace("127.0.0.1", "localhost"),
             "--path", root, "--metrics-port", "0"]
        )  # fmt: skip
        _, err = capsys.readouterr()
        assert code == 2
        assert "compared the resolved host:port of the connect strings only" in err
        assert "4lw.commands.whitelist" in err
        assert err.strip().splitlines()[-1].endswith(REFUSAL)
        assert owners(client, root) == before
