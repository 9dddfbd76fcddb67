"""Sequence counters carried from A to B: a sequential create on B never gets a suffix that A
has already issued under the same parent (real ZooKeeper 3.8 ensembles).

Mesos elects its leader by the lowest `json.info_` sequence and Marathon's leader latch is a
sequential znode: a counter on B behind A's can hand out a name A already used, and elect
the wrong contender after a move. The next suffix of a parent is measured here on the real
server (`test_the_next_suffix_is_the_number_of_creates_so_far`) rather than assumed.
"""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient

from orchestrator_operator.zk.model import next_sequence
from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import ZkPair, engine_for, unique_root, wait_until

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
    with engine_for(pair, [root]) as engine:
        engine.start()
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
    with engine_for(pair, [root]) as engine:
        engine.start()
        # contenders come and go faster than any reconcile: B never sees most of them
        for _ in range(12):
            made = ca.create(f"{parent}/latch-", ephemeral=True, sequence=True)
            ca.delete(made)
        survivor = ca.create(f"{parent}/latch-", ephemeral=True, sequence=True)
        assert suffix(survivor) == 12
        wait_until(lambda: counter(cb, parent) >= counter(ca, parent), 20, "B's counter")
        assert probe_next(cb, parent) > suffix(survivor)
