"""Sequence counters carried from A to B: a sequential create on B never gets a suffix that A
has already issued under the same parent (real ZooKeeper 3.8 ensembles).

Mesos elects its leader by the lowest `json.info_` sequence and Marathon's leader latch is a
sequential znode: a counter on B behind A's can hand out a name A already used, and elect
the wrong contender after a move. The next suffix of a parent is measured here on the real
server (`test_the_next_suffix_is_the_number_of_creates_so_far`) rather than assumed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from orchestrator_operator.zk.model import next_sequence
from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import ZkPair, engine_for, unique_root, wait_in_sync, wait_until

zk_pair = support.zk_pair
pair = support.pair
clients = support.clients

pytestmark = pytest.mark.zookeeper


def suffix(path: str) -> int:
    return int(path[-10:])


def probe_next(client: KazooClient, parent: str) -> int:
    """The suffix the next sequential create under `parent` really gets (probed by one)."""
    made = client.create(f"{parent}/probe-", b"", sequence=True)
    client.delete(made)
    return suffix(made)


def counter(client: KazooClient, parent: str) -> int:
    stat = client.exists(parent)
    assert stat is not None, parent
    return next_sequence(stat.cversion, stat.numChildren)


def test_the_next_suffix_is_the_number_of_creates_so_far(
    clients: tuple[KazooClient, KazooClient],
) -> None:
    """ZooKeeper 3.8 adds 1 to the parent's cversion per child created and per child
    deleted, and numbers a sequential child by the creates so far: (cversion +
    numChildren) / 2. The carrying below relies on it."""
    ca, _ = clients
    parent = unique_root("seq")
    ca.create(parent, makepath=True)
    made = [ca.create(f"{parent}/job-", sequence=True) for _ in range(5)]
    assert [suffix(p) for p in made] == [0, 1, 2, 3, 4]
    for path in made[:4]:
        ca.delete(path)
    ca.create(f"{parent}/plain")
    ca.delete(f"{parent}/plain")
    stat = ca.exists(parent)
    assert (stat.cversion, stat.numChildren) == (11, 1)
    assert counter(ca, parent) == 6
    assert probe_next(ca, parent) == 6


def test_sparse_and_emptied_parents_are_carried_at_bootstrap(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    ca, cb = clients
    root = unique_root("seq")
    sparse, emptied, busy = f"{root}/sparse", f"{root}/emptied", f"{root}/busy"
    for parent in (sparse, emptied, busy):
        ca.create(parent, makepath=True)
    made = [ca.create(f"{sparse}/job-", sequence=True) for _ in range(30)]
    for path in made[:-1]:
        ca.delete(path)  # only job-0000000029 is left
    for path in [ca.create(f"{emptied}/job-", sequence=True) for _ in range(10)]:
        ca.delete(path)  # nothing left; A has issued 0-9
    for _ in range(3):
        ca.create(f"{busy}/job-", sequence=True)  # never deleted: the copy alone keeps up
    wanted = {p: counter(ca, p) for p in (root, sparse, emptied, busy)}
    assert (wanted[sparse], wanted[emptied], wanted[busy]) == (30, 10, 3)
    with engine_for(pair, [root]):
        assert cb.exists(f"{sparse}/job-0000000029") is not None
        for parent, next_on_a in wanted.items():
            assert counter(cb, parent) >= next_on_a, parent
        # B's next sequential create under each parent is past every suffix A issued
        assert probe_next(cb, sparse) >= 30
        assert probe_next(cb, emptied) >= 10
        assert probe_next(cb, busy) >= 3


def test_live_creates_and_deletes_on_a_keep_b_ahead(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    ca, cb = clients
    root = unique_root("seq")
    parent = f"{root}/leader"
    ca.create(parent, makepath=True)
    with engine_for(pair, [root]):
        # contenders come and go faster than any reconcile: B never sees most of them
        for _ in range(12):
            made = ca.create(f"{parent}/latch-", ephemeral=True, sequence=True)
            ca.delete(made)
        survivor = ca.create(f"{parent}/latch-", ephemeral=True, sequence=True)
        assert suffix(survivor) == 12
        wait_until(lambda: counter(cb, parent) >= counter(ca, parent), 20, "B's counter")
        assert probe_next(cb, parent) > suffix(survivor)


# ------------------------------------------------------------------ bidirectional (point 7)
def test_bidirectional_sequential_creates_on_both_sides_never_share_a_name(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    """Clients on A and B join the same latch, round after round, without waiting for
    each other: every create gets its own name, and both sides end with all of them, each
    with the data its own client wrote (before: the counters were carried to equal values,
    so both sides handed out the same name and A's data replaced B's client's node)."""
    ca, cb = clients
    root = unique_root("seq")
    parent = f"{root}/latch"
    ca.create(f"{parent}/member-", b"first", sequence=True, makepath=True)
    # a small margin, so that A reaches B's band several times in 30 rounds
    with engine_for(pair, [root], bidirectional=True, sequence_margin=10) as engine:
        wait_until(lambda: len(cb.get_children(parent)) == 1, 30, "the first member on B")
        written: dict[str, bytes] = {}
        for i in range(30):
            on_a = ca.create_async(f"{parent}/member-", f"a-{i}".encode(), sequence=True)
            on_b = cb.create_async(f"{parent}/member-", f"b-{i}".encode(), sequence=True)
            made_a: str = on_a.get(timeout=10)
            made_b: str = on_b.get(timeout=10)
            assert made_a != made_b, f"round {i}: both sides issued {made_a}"
            written[made_a], written[made_b] = f"a-{i}".encode(), f"b-{i}".encode()

            def crossed(a: str = made_a, b: str = made_b) -> bool:
                return cb.exists(a) is not None and ca.exists(b) is not None

            wait_until(crossed, 30, f"round {i} on both sides")
        wait_in_sync(ca, cb, [root], timeout=60)
        assert len(ca.get_children(parent)) == 61
        for path, data in written.items():
            assert ca.get(path)[0] == data, path
            assert cb.get(path)[0] == data, path
        assert not engine.conflicts
        # B stays ahead: a sequential create on B never gets a name A has issued
        assert probe_next(cb, parent) > max(suffix(p) for p in written)


def test_a_sequential_name_issued_on_both_sides_is_a_conflict_with_both_values(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient], tmp_path: Path
) -> None:
    """A name that two clients got, one on each side (here while the engine was down),
    is never resolved by the strategy: both nodes stay as their clients wrote them, and the
    conflict record keeps both values (before: source-wins wrote A's data over B's node)."""
    ca, cb = clients
    root = unique_root("seq")
    parent = f"{root}/latch"
    ca.create(f"{parent}/member-", b"first", sequence=True, makepath=True)
    state = tmp_path / "state.json"
    with engine_for(pair, [root], bidirectional=True, state_file=state):
        wait_in_sync(ca, cb, [root], timeout=30)
    name = f"{parent}/member-0000000001"
    ca.create(name, b"from-a")
    cb.create(name, b"from-b")
    with engine_for(pair, [root], bidirectional=True, state_file=state) as engine:
        assert engine.wait_idle(30)
        assert ca.get(name)[0] == b"from-a"
        assert cb.get(name)[0] == b"from-b"
        record = engine.conflicts[name]
        assert record.reason == "sequential name issued on both sides"
        saved = json.loads(state.read_text("utf-8"))["conflicts"][name]
        assert base64.b64decode(saved["source_data"]) == b"from-a"
        assert base64.b64decode(saved["target_data"]) == b"from-b"
        # a person settles it (keeps B's client's node); the record goes
        ca.set(name, b"from-b")
        wait_until(lambda: name not in engine.conflicts, 30, "conflict resolved")
