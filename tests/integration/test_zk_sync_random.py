"""Randomized replication test: random creates, sets, deletes, ACL changes and ephemerals
from short-lived sessions, while a ZooKeeper server of each ensemble and the engine itself
(a real ``zk-sync run`` process, SIGKILLed) are killed and restarted. After quiescing, the
digests of both sides are equal."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import (
    DIGEST_ACL_VARIANTS,
    DIGEST_USER,
    EngineProcess,
    RandomWorkload,
    ZkPair,
    counters_behind,
    tree_as_read,
    unique_root,
    wait_in_sync,
    wait_until,
    zk_client,
)

pytestmark = pytest.mark.zookeeper

zk_pair = support.zk_pair
pair = support.pair


@pytest.mark.parametrize(
    ("bidirectional", "seed"),
    # bidirectional: a source-wins resolution can close a parent's ACL (no CREATE) over a
    # child made on B; the child must still reach A (issue 4: it used to stay on B only)
    [(False, 4242), (True, 1717)],
    ids=["one-way", "bidirectional"],
)
def test_random_workload_with_failures(
    pair: ZkPair, tmp_path: Path, bidirectional: bool, seed: int
) -> None:
    rng = random.Random(seed)
    root = unique_root("random")
    hosts = [pair.a.connect_string]
    if bidirectional:
        hosts.append(pair.b.connect_string)
    work = RandomWorkload(hosts, root, rng)
    args = [
        "--source", pair.a.connect_string,
        "--target", pair.b.connect_string,
        "--path", root,
        "--state-file", str(tmp_path / "state.json"),
        "--metrics-port", "0",
        "--reconcile-interval", "5",
        "--session-timeout", "4",
        "--log-level", "INFO",
    ]  # fmt: skip
    if bidirectional:
        args += ["--bidirectional", "--conflict-strategy", "source-wins"]
    engine = EngineProcess(args, tmp_path / "engine.log")
    try:
        work.seed(150)
        engine.start()
        work.run(150)
        # a server of each ensemble dies (the source's leader), writes go on
        leader = pair.a.leader_index()
        pair.a.kill_server(leader if leader is not None else 0)
        pair.b.kill_server(rng.randrange(3))
        work.run(100)
        pair.a.ensure_all_running()
        pair.b.ensure_all_running()
        work.run(80)
        # the engine itself is killed mid-run and restarted from its state file
        engine.kill()
        work.run(80)
        engine.start()
        work.run(120)
        work.close_sessions()
        # one live session at the end: its ephemeral must be mirrored as an ephemeral
        with zk_client(hosts[-1]) as owner:
            live = owner.create(f"{root}/json.info_", b"live", ephemeral=True, sequence=True)
            assert engine.alive(), engine.log_tail()
            with zk_client(pair.a.connect_string) as ca, zk_client(pair.b.connect_string) as cb:
                try:
                    report = wait_in_sync(ca, cb, [root], timeout=120)
                except AssertionError as exc:
                    log = engine.log_tail()
                    raise AssertionError(f"{exc}\n--- engine log ---\n{log}") from exc
                (digest,) = report.roots
                assert digest.source_znodes >= 2  # at least the root and the live ephemeral
                mirror = ca if bidirectional else cb  # the owner is on B when bidirectional
                stat = mirror.exists(live)
                assert stat is not None and stat.ephemeralOwner != 0
                # no sequential suffix issued on A can be issued again on B; bidirectional,
                # B's counters run ahead of A's under sequential parents (a band each, so
                # the two sides never hand out the same name), so A's is not carried to B's
                wait_until(
                    lambda: not counters_behind(ca, cb, root), 30, "every sequence counter carried"
                )
        assert sum(work.counts.values()) == 530
        assert engine.terminate() == 0, engine.log_tail()
    finally:
        work.close()
        if engine.alive():
            engine.kill()


def test_random_workload_with_digest_acls_and_credentials(pair: ZkPair, tmp_path: Path) -> None:
    """Issue 15's must-show: digest-only, world-read + digest, mixed and ip ACLs, sequential
    parents with sparse, emptied and live children, the engine authenticated as the digest
    user on both sides and killed once: the trees end identical to a walker that reads as
    that user, ACL ids included, and every counter of B ahead of A's."""
    rng = random.Random(2718)
    root = unique_root("random-auth")
    sequential = f"{root}-seq"  # out of the random workload's reach, which deletes at random
    auth_file = tmp_path / "digest"
    auth_file.write_text(":".join(DIGEST_USER) + "\n")
    auth_file.chmod(0o600)
    work = RandomWorkload(
        [pair.a.connect_string], root, rng, acl_variants=DIGEST_ACL_VARIANTS, auth=DIGEST_USER
    )
    args = [
        "--source", pair.a.connect_string,
        "--target", pair.b.connect_string,
        "--path", root,
        "--path", sequential,
        "--source-auth-file", str(auth_file),
        "--target-auth-file", str(auth_file),
        "--state-file", str(tmp_path / "state.json"),
        "--metrics-port", "0",
        "--reconcile-interval", "5",
        "--session-timeout", "4",
        "--log-level", "INFO",
    ]  # fmt: skip
    engine = EngineProcess(args, tmp_path / "engine.log")
    try:
        work.seed(120)
        a = work.clients[0]
        # Sequential parents: sparse (only the last of 30 kept), emptied, and live.
        digest_only = DIGEST_ACL_VARIANTS[0]
        a.create(sequential, b"", acl=digest_only)
        for name, keep in (("sparse", 1), ("emptied", 0), ("live", 30)):
            parent = f"{sequential}/{name}"
            a.create(parent, b"", acl=digest_only)
            made = [a.create(f"{parent}/job-", b"j", sequence=True) for _ in range(30)]
            for path in made[: len(made) - keep]:
                a.delete(path)
        engine.start()
        work.run(150)
        engine.kill()
        work.run(60)
        engine.start()
        for _ in range(5):
            a.create(f"{sequential}/live/job-", b"j", sequence=True)
        work.run(90)
        work.close_sessions()
        assert engine.alive(), engine.log_tail()
        auth = [("digest", ":".join(DIGEST_USER))]
        with (
            zk_client(pair.a.connect_string, auth_data=auth) as ca,
            zk_client(pair.b.connect_string, auth_data=auth) as cb,
        ):
            try:
                wait_in_sync(ca, cb, [root, sequential], timeout=120)
                wait_until(
                    lambda: all(
                        tree_as_read(ca, r) == tree_as_read(cb, r) for r in (root, sequential)
                    ),
                    60,
                    "both trees identical to the digest user's walker",
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n--- engine log ---\n{engine.log_tail()}") from exc
            tree = {**tree_as_read(cb, root), **tree_as_read(cb, sequential)}
            ids = {acl for _, acls in tree.values() for acl in acls}
            assert any(acl.startswith("digest:alice:") for acl in ids), ids
            assert not any(acl.startswith("digest:alice:x:") for acl in ids), ids  # redacted
            assert len([p for p in tree if p.startswith(f"{sequential}/sparse/")]) == 1
            assert not [p for p in tree if p.startswith(f"{sequential}/emptied/")]
            assert len([p for p in tree if p.startswith(f"{sequential}/live/")]) == 35
            wait_until(
                lambda: (
                    not counters_behind(ca, cb, root) and not counters_behind(ca, cb, sequential)
                ),
                30,
                "every sequence counter carried",
            )
        assert engine.terminate() == 0, engine.log_tail()
    finally:
        work.close()
        if engine.alive():
            engine.kill()
