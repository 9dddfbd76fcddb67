"""The sync engine with and without credentials against real ZooKeeper 3.8 ensembles: ACLs
are copied with their real digest ids or not at all (issue 15, points 1 and 2).

ZooKeeper 3.8 shows a digest id as `user:x` to a reader without ADMIN on the znode; copied
so, the user is locked out on B. Without a credential that can read them, such znodes are
reported unreadable (health, verify, the migration's status) and left alone; their
ancestors and siblings are synced all the same.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, make_digest_acl

from orchestrator_operator.sync.verify import verify
from orchestrator_operator.zk.clients import ZkClientPool, zk_credentials
from orchestrator_operator.zk.model import Side, acl_from_kazoo, redacted_ids
from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import ZkPair, engine_for, unique_root, zk_client

zk_pair = support.zk_pair
pair = support.pair

pytestmark = pytest.mark.zookeeper

ALICE = ("digest", "alice:secret")
WORLD_READ = ACL(1, Id("world", "anyone"))


@pytest.fixture
def tree(pair: ZkPair) -> Iterator[str]:
    """On A: digest ACLs of every kind beside open znodes, under a root with data."""
    root = unique_root("creds")
    with zk_client(pair.a.connect_string) as ca:
        ca.create(root, b"root-data", makepath=True)
        ca.create(f"{root}/plain", b"p")
        everything = make_digest_acl("alice", "secret", all=True)
        ca.create(f"{root}/digest-only", b"d", acl=[everything])
        with zk_client(pair.a.connect_string, auth_data=[ALICE]) as alice:
            alice.create(f"{root}/digest-only/child", b"c", acl=[everything])
        ca.create(f"{root}/world-read", b"w", acl=[everything, WORLD_READ])
        readwrite = make_digest_acl("alice", "secret", read=True, write=True)
        ca.create(f"{root}/mixed", b"m", acl=[readwrite, ACL(31, Id("world", "anyone"))])
        ca.create(f"{root}/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
    yield root


def test_without_credentials_a_redacted_acl_is_never_copied(pair: ZkPair, tree: str) -> None:
    with engine_for(pair, [tree]) as engine, zk_client(pair.b.connect_string) as cb:
        # what the engine can read is synced, ancestors of unreadable znodes included
        assert cb.get(tree)[0] == b"root-data"
        assert cb.get(f"{tree}/plain")[0] == b"p"
        assert cb.get(f"{tree}/ip")[0] == b"i"
        assert not redacted_ids(acl_from_kazoo(cb.get_acls(f"{tree}/mixed")[0]))
        # what it cannot is left alone and said, with why
        assert cb.exists(f"{tree}/world-read") is None
        assert cb.exists(f"{tree}/digest-only") is None
        healthy, detail = engine.health()
        assert healthy
        unreadable = detail["unreadable"]
        assert isinstance(unreadable, dict)
        assert set(unreadable["a"]) == {f"{tree}/world-read", f"{tree}/digest-only"}
        assert "reads redacted (alice:x)" in engine.unreadable[Side.A][f"{tree}/world-read"]
    report = verify(pair.a.connect_string, pair.b.connect_string, [tree])
    assert not report.ok
    assert "reads redacted (alice:x)" in report.format()


def test_with_credentials_acls_are_copied_with_their_real_ids(pair: ZkPair, tree: str) -> None:
    with engine_for(pair, [tree], source_auth=[ALICE], target_auth=[ALICE]) as engine:
        assert not engine.health()[1]["unreadable"]
        with zk_client(pair.b.connect_string, auth_data=[ALICE]) as alice_b:
            for name in ("world-read", "digest-only", "digest-only/child", "mixed"):
                acl = acl_from_kazoo(alice_b.get_acls(f"{tree}/{name}")[0])
                assert not redacted_ids(acl), (name, acl)
            # the digest user can still do on B what it could on A
            alice_b.set(f"{tree}/world-read", b"written by alice on B")
            assert alice_b.get(f"{tree}/digest-only/child")[0] == b"c"
        with zk_client(pair.b.connect_string) as anonymous, pytest.raises(NoAuthError):
            anonymous.set(f"{tree}/world-read", b"nobody")
    report = verify(
        pair.a.connect_string, pair.b.connect_string, [tree],
        source_auth=[ALICE], target_auth=[ALICE],
    )  # fmt: skip
    assert not report.ok  # B's world-read now holds alice's write, A's does not
    assert [d.path for d in report.differences] == [f"{tree}/world-read"]


def test_credentials_come_from_a_file_and_bad_ones_are_refused(
    pair: ZkPair, tree: str, tmp_path: Path
) -> None:
    good, bad, wrong = tmp_path / "good", tmp_path / "bad", tmp_path / "wrong"
    good.write_text("# the engine's digest user\nalice:secret\n")
    bad.write_text("alice\n")
    wrong.write_text("alice:not-the-password\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator_operator.cli", "zk-sync", "verify",
             "--source", pair.a.connect_string, "--target", pair.a.connect_string,
             "--path", tree, *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    ok = cli("--source-auth-file", str(good), "--target-auth-file", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "alice:secret" not in ok.stdout + ok.stderr
    redacted = cli()
    assert redacted.returncode == 1 and "reads redacted (alice:x)" in redacted.stdout
    malformed = cli("--source-auth-file", str(bad))
    assert malformed.returncode == 2
    assert f"--source-auth-file {bad}, line 1: expected user:password" in malformed.stderr
    # a wrong password is not an error ZooKeeper reports: alice simply has no rights
    refused = cli("--source-auth-file", str(wrong), "--target-auth-file", str(wrong))
    assert refused.returncode == 1 and "reads redacted (alice:x)" in refused.stdout


def test_the_operators_pool_authenticates_per_connect_string(pair: ZkPair, tree: str) -> None:
    """zk/clients.py: a handler names the credentials of an ensemble once (zk_credentials);
    every session the pool hands out for it in that context authenticates with them, and
    sessions with other credentials (or none) are separate ones."""
    pool = ZkClientPool()
    hosts = pair.a.connect_string
    try:
        with pytest.raises(NoAuthError):
            pool.get(hosts).get(f"{tree}/digest-only")
        with zk_credentials({hosts: [ALICE]}):
            assert pool.get(hosts).get(f"{tree}/digest-only")[0] == b"d"
            acl = acl_from_kazoo(pool.get(hosts).get_acls(f"{tree}/world-read")[0])
            assert not redacted_ids(acl)  # ADMIN as alice: the real digest id
        with pytest.raises(NoAuthError):  # outside the block: the plain session again
            pool.get(hosts).get(f"{tree}/digest-only")
        assert pool.open_sessions() == [hosts, hosts]  # no secret in what it lists
    finally:
        pool.close()
