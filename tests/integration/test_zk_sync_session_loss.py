"""The sync engine copies again after losing its target session while changes keep coming
(issue 20): two real 3-server ensembles, an in-process engine, a random workload on the source,
and the engine's session with the target ensemble expired by the server, again and again.

The chaos scenario (tests/chaos/test_zk_sync_chaos.py) reported "copies nothing for 120 s"
after a partition from ensemble B longer than the engine's session: the znode it waited for
had been deleted on A by the scenario's own random workload before the engine, reconnecting,
could copy it, so it could never reach B (docs/reliability.md). Here the markers live under a
root the workload does not touch, so each one tells whether copying resumed."""

from __future__ import annotations

import random
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from orchestrator_operator.sync.engine import SyncEngine
from orchestrator_operator.zk.model import Side
from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import (
    RandomWorkload,
    ZkPair,
    engine_for,
    unique_root,
    wait_in_sync,
    wait_until,
)

zk_pair = support.zk_pair
pair = support.pair
clients = support.clients

pytestmark = pytest.mark.zookeeper

EXPIRIES = 6


def expire(hosts: str, client_id: tuple[int, bytes] | None) -> None:
    """Take session ``client_id`` over and close it; one the server has already expired
    (the engine lost it some other way meanwhile) refuses the take-over, which is as good."""
    assert client_id is not None
    thief = KazooClient(hosts=hosts, client_id=client_id)
    try:
        thief.start(timeout=15)
    except KazooTimeoutError:
        return  # start() stopped and closed it
    thief.stop()
    thief.close()


def expire_target_session(engine: SyncEngine, hosts: str) -> None:
    """Expire the engine's session with ensemble B until it has another one: the engine may
    win the race back to its session before the thief's close (the session then lives on)."""
    old = engine.clients[Side.B].client_id
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        expire(hosts, old)
        try:
            wait_until(lambda: engine.clients[Side.B].client_id not in (None, old), 10)
            return
        except AssertionError:
            continue
    raise AssertionError("the engine's target session was not replaced within 90 s")


def test_copying_resumes_after_each_target_session_expiry_under_writes(
    pair: ZkPair, clients: tuple[KazooClient, KazooClient]
) -> None:
    ca, cb = clients
    work_root, mark_root = unique_root("work"), unique_root("marks")
    ca.ensure_path(mark_root)
    rng = random.Random(9)
    work = RandomWorkload([pair.a.connect_string], work_root, rng)
    work.seed(60)
    stop = threading.Event()

    def writes() -> None:
        while not stop.is_set():
            work.run(10, pause=0.005)

    writer = threading.Thread(target=writes, name="workload", daemon=True)
    with engine_for(pair, [work_root, mark_root], reconcile_interval=600.0) as engine:
        wait_in_sync(ca, cb, [work_root, mark_root], timeout=60)
        writer.start()
        try:
            for round_ in range(EXPIRIES):
                expire_target_session(engine, pair.b.connect_string)
                marker = ca.create(f"{mark_root}/after-expiry-{round_}", b"m")
                wait_until(
                    lambda: cb.exists(marker) is not None,  # noqa: B023 (used at once)
                    90,
                    f"{marker}, written to A after expiry {round_ + 1}, copied to B",
                )
        finally:
            stop.set()
            writer.join(timeout=60)
            work.close()
        # the workload's ephemerals went with its sessions: both trees equal
        wait_in_sync(ca, cb, [work_root, mark_root], timeout=90)
        healthy, detail = engine.health()
        assert healthy, detail
