"""Whether two connect strings are the same ensemble (zk/identity.py): the parsing of
``conf`` and the pure decision over what was read; and the sync controller's runner, which
refuses such a request for good instead of retrying."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator_operator.models.vocabulary import SyncState
from orchestrator_operator.sync.controller import runner as runner_module
from orchestrator_operator.sync.controller.options import ControllerOptions
from orchestrator_operator.sync.controller.runner import MigrationRunner
from orchestrator_operator.sync.controller.status import SyncSpec
from orchestrator_operator.zk.identity import (
    EnsembleReading,
    Member,
    SameEnsembleError,
    ServerConf,
    ServerReading,
    Verdict,
    check_distinct,
    parse_conf,
    parse_member,
    same_ensemble,
)

CONF = """clientPort=50807
secureClientPort=-1
dataDir=/tmp/zk1/data/version-2
tickTime=1000
serverId=1
electionPort=45925
quorumPort=55645
peerType=0
membership: 
server.1=127.0.0.1:55645:45925:participant;127.0.0.1:50807
server.2=127.0.0.1:47273:60287:participant;127.0.0.1:40715
server.3=127.0.0.1:39345:53243:participant;127.0.0.1:52161
version=100000000
"""  # noqa: W291 (the server writes "membership: " with a trailing space)

LOCAL = frozenset({"127.0.0.1"})
LOCALHOST = frozenset({"127.0.0.1", "::1"})


# ----------------------------------------------------------------------------- parsing
def test_conf_gives_server_id_client_port_and_membership() -> None:
    conf = parse_conf(CONF)
    assert conf is not None
    assert (conf.server_id, conf.client_port) == (1, 50807)
    assert [m.server_id for m in conf.members] == [1, 2, 3]
    assert conf.members[1] == Member(2, "127.0.0.1", 47273, 60287, "127.0.0.1", 40715)


def test_a_refused_conf_is_no_conf() -> None:
    assert parse_conf("conf is not executed because it is not in the whitelist.\n") is None
    assert parse_conf("") is None


def test_standalone_conf_has_no_members() -> None:
    conf = parse_conf("clientPort=2181\ndataDir=/data\nserverId=0\n")
    assert conf == ServerConf(0, 2181, ())


@pytest.mark.parametrize(
    ("line", "member"),
    [
        ("server.1=zk-0.hs:2888:3888;2181", Member(1, "zk-0.hs", 2888, 3888, None, 2181)),
        ("server.2=zk-1:2888:3888:observer;0.0.0.0:2181",
         Member(2, "zk-1", 2888, 3888, "0.0.0.0", 2181)),
        ("server.3=zk-2:2888:3888", Member(3, "zk-2", 2888, 3888)),
        ("server.4=[::1]:2888:3888:participant;[::1]:2181",
         Member(4, "::1", 2888, 3888, "::1", 2181)),
        ("server.5=zk-4", None),
        ("serverId=1", None),
        ("server.6=zk:a:b", None),
    ],
)  # fmt: skip
def test_server_lines(line: str, member: Member | None) -> None:
    assert parse_member(line) == member


# ----------------------------------------------------------------------------- decision
def members(*lines: str) -> tuple[Member, ...]:
    parsed = [parse_member(line) for line in lines]
    assert all(parsed)
    return tuple(m for m in parsed if m is not None)


def server(
    host: str,
    port: int,
    addresses: frozenset[str] | None = None,
    conf: ServerConf | None = None,
    problem: str | None = None,
) -> ServerReading:
    if addresses is None:
        addresses = frozenset({host})
    return ServerReading(host, port, addresses, conf, problem)


def ensemble(*servers: ServerReading, **resolved: frozenset[str]) -> EnsembleReading:
    connect = ",".join(s.endpoint for s in servers)
    names = {"127.0.0.1": LOCAL, "0.0.0.0": frozenset({"0.0.0.0"}), **resolved}
    return EnsembleReading(connect, tuple(servers), names)


QUORUM = members(
    "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181",
    "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182",
    "server.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183",
)


def quorum_server(index: int, host: str = "127.0.0.1") -> ServerReading:
    addresses = LOCALHOST if host == "localhost" else LOCAL
    conf = ServerConf(index + 1, 2181 + index, QUORUM)
    return server(host, 2181 + index, addresses, conf)


def test_identical_connect_strings_are_the_same_ensemble() -> None:
    a = ensemble(quorum_server(0), quorum_server(1), quorum_server(2))
    verdict = same_ensemble(a, a)
    assert verdict == Verdict(True, "server 127.0.0.1:2181 answers for both", True, ())
    assert verdict.message() == (
        "source and target are the same ZooKeeper ensemble (server 127.0.0.1:2181 answers "
        "for both); refusing to sync an ensemble onto itself"
    )


def test_another_order_is_the_same_ensemble() -> None:
    a = ensemble(quorum_server(0), quorum_server(1), quorum_server(2))
    b = ensemble(quorum_server(2), quorum_server(0), quorum_server(1))
    assert same_ensemble(a, b).same


def test_another_name_for_the_same_address_is_the_same_ensemble() -> None:
    a = ensemble(quorum_server(0), quorum_server(1))
    b = ensemble(quorum_server(0, "localhost"), quorum_server(1, "localhost"))
    verdict = same_ensemble(a, b)
    assert verdict.same
    assert (
        verdict.reason
        == "server 127.0.0.1:2181, named localhost:2181 in the target, answers for both"
    )


def test_disjoint_servers_of_one_ensemble_share_their_membership() -> None:
    a = ensemble(quorum_server(0))
    b = ensemble(quorum_server(1), quorum_server(2))
    verdict = same_ensemble(a, b)
    assert verdict.same and verdict.confirmed
    assert verdict.reason == "both list server.1=127.0.0.1:2888 as a member"


def test_a_member_named_by_the_other_side_without_conf_is_the_same_ensemble() -> None:
    a = ensemble(quorum_server(0))
    b = ensemble(server("127.0.0.1", 2183, LOCAL, problem="`conf` not allowed"))
    verdict = same_ensemble(a, b)
    assert verdict.same and not verdict.confirmed
    assert verdict.reason == "target server 127.0.0.1:2183 is server.3=127.0.0.1:2890 of the source"
    assert verdict.notes == ("target 127.0.0.1:2183: `conf` not allowed",)


def test_different_ensembles_are_different() -> None:
    other = members(
        "server.1=127.0.0.1:3888:4888:participant;127.0.0.1:3181",
        "server.2=127.0.0.1:3889:4889:participant;127.0.0.1:3182",
    )
    a = ensemble(quorum_server(0), quorum_server(1))
    b = ensemble(
        server("127.0.0.1", 3181, conf=ServerConf(1, 3181, other)),
        server("127.0.0.1", 3182, conf=ServerConf(2, 3182, other)),
    )
    assert same_ensemble(a, b) == Verdict(False, "", True, ())


def test_without_conf_only_the_connect_strings_are_compared() -> None:
    refused = "`conf` not allowed by 4lw.commands.whitelist"
    a = ensemble(server("127.0.0.1", 2181, problem=refused))
    b = ensemble(server("127.0.0.1", 2182, problem="unreachable"))
    verdict = same_ensemble(a, b)
    assert not verdict.same and not verdict.confirmed
    assert verdict.notes == (
        f"source 127.0.0.1:2181: {refused}",
        "target 127.0.0.1:2182: unreachable",
    )
    assert same_ensemble(a, a).same  # still refused: the same address


def test_names_that_do_not_resolve_compare_as_written() -> None:
    a = ensemble(server("zk-a", 2181, frozenset(), problem="does not resolve"))
    b = ensemble(server("ZK-A", 2181, frozenset(), problem="does not resolve"))
    c = ensemble(server("zk-b", 2181, frozenset(), problem="does not resolve"))
    assert same_ensemble(a, b).same
    assert not same_ensemble(a, c).same


def test_wildcard_and_unresolved_members_are_not_compared() -> None:
    # Two clusters' servers that name themselves 0.0.0.0, or by the same relative names that
    # do not resolve here, with the same ports: nothing says they are the same servers.
    lines = members("server.1=0.0.0.0:2888:3888;2181", "server.2=zk-1.zk-hs:2888:3888;2181")
    a = ensemble(server("10.0.0.1", 2181, conf=ServerConf(1, 2181, lines)))
    b = ensemble(server("10.0.1.1", 2181, conf=ServerConf(1, 2181, lines)))
    assert not same_ensemble(a, b).same


def test_loopback_members_count_only_for_servers_on_this_host() -> None:
    lines = members("server.1=127.0.0.1:2888:3888;2181")
    remote_a = ensemble(server("10.0.0.1", 2181, conf=ServerConf(1, 2181, lines)))
    remote_b = ensemble(server("10.0.1.1", 2181, conf=ServerConf(1, 2181, lines)))
    assert not same_ensemble(remote_a, remote_b).same
    local_a = ensemble(server("127.0.0.1", 2181, conf=ServerConf(1, 2181, lines)))
    local_b = ensemble(server("localhost", 2181, LOCALHOST, conf=ServerConf(1, 2181, lines)))
    assert same_ensemble(local_a, local_b).same


def test_resolved_member_names_are_compared_by_address() -> None:
    a_lines = members("server.1=zk-0.a.svc.cluster.local:2888:3888;2181")
    b_lines = members("server.1=10.1.0.5:2888:3888;2181")
    a = ensemble(
        server("zk-client.a.svc", 2181, frozenset({"10.96.0.10"}), ServerConf(1, 2181, a_lines)),
        **{"zk-0.a.svc.cluster.local": frozenset({"10.1.0.5"})},
    )
    b = ensemble(
        server("10.1.0.5", 2181, conf=ServerConf(1, 2181, b_lines)),
        **{"10.1.0.5": frozenset({"10.1.0.5"})},
    )
    verdict = same_ensemble(a, b)
    assert verdict.same
    assert verdict.reason == "both list server.1=zk-0.a.svc.cluster.local:2888 as a member"


def test_standalone_servers_compare_by_address_and_port() -> None:
    standalone = ServerConf(0, 2181, ())
    a = ensemble(server("127.0.0.1", 2181, conf=standalone))
    b = ensemble(server("localhost", 2181, LOCALHOST, conf=standalone))
    c = ensemble(server("127.0.0.1", 2182, conf=ServerConf(0, 2182, ())))
    assert same_ensemble(a, b).same
    assert same_ensemble(a, c) == Verdict(False, "", True, ())


def test_check_distinct_validates_the_connect_strings_first() -> None:
    with pytest.raises(Exception, match="not host:port"):
        check_distinct("nohost", "127.0.0.1:1")


def test_check_distinct_refuses_one_unreachable_address_given_twice() -> None:
    with pytest.raises(SameEnsembleError, match=r"server 127.0.0.1:1 answers for both"):
        check_distinct("127.0.0.1:1", "127.0.0.1:1", timeout=0.2)
    assert not check_distinct("127.0.0.1:1", "127.0.0.1:2", timeout=0.2).same


# ----------------------------------------------------------------------------- controller
def test_runner_refuses_the_same_ensemble_once_and_does_not_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = "source and target are the same ZooKeeper ensemble (x); refusing to sync"

    class Refusing:
        """An engine whose start refuses, as SyncEngine.start does for one ensemble."""

        starts = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.clients: dict[str, Any] = {}

        def start(self) -> None:
            Refusing.starts += 1
            raise SameEnsembleError(message)

    monkeypatch.setattr(runner_module, "SyncEngine", Refusing)
    reports: list[dict[str, Any]] = []
    options = ControllerOptions(backoff_initial=0.01, backoff_max=0.01)
    spec = SyncSpec("127.0.0.1:1", "localhost:1", ("/mesos",))
    runner = MigrationRunner(("ns", "m"), spec, options, lambda key, doc: reports.append(doc))
    runner.start()
    deadline = time.monotonic() + 10
    while not any(r["state"] == SyncState.FAILED for r in reports):
        assert time.monotonic() < deadline, reports
        time.sleep(0.01)
    time.sleep(0.3)  # a retry would report again within 0.01 s
    assert [r["state"] for r in reports] == [SyncState.STARTING, SyncState.FAILED]
    assert Refusing.starts == 1
    assert reports[-1]["message"] == message
    assert runner.state == SyncState.FAILED and runner.alive
    runner.stop("status.syncRequest changed")
    runner.join(5)
    assert not runner.alive
    assert reports[-1]["state"] == SyncState.STOPPED
