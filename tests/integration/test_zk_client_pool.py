"""The operator's pool of ZooKeeper sessions against a real ensemble that goes away and
comes back: a handler asking for a client is never blocked for long, and gets a clear
ZkUnreachable while the ensemble is down."""

from __future__ import annotations

import time

import pytest

from orchestrator_operator.zk.clients import ZkClientPool, ZkUnreachable
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = pytest.mark.zookeeper


def test_a_lost_ensemble_gives_a_clear_error_quickly_and_a_new_session_once_back(
    zk_ensemble_factory: ZkEnsembleFactory,
) -> None:
    ensemble = zk_ensemble_factory(1)
    pool = ZkClientPool(connect_timeout=2.0, retry_after=1.0)
    try:
        assert pool.get(ensemble.connect_string).get_children("/") is not None
        ensemble.kill_server(0)
        time.sleep(1)
        for _ in range(3):  # the lost client, then the remembered failure, then a new try
            started = time.monotonic()
            with pytest.raises(ZkUnreachable, match=ensemble.connect_string):
                pool.get(ensemble.connect_string)
            assert time.monotonic() - started < 6
            time.sleep(1.1)
        ensemble.start_server(0)
        deadline = time.monotonic() + 30
        while True:
            try:
                client = pool.get(ensemble.connect_string)
                break
            except ZkUnreachable:
                assert time.monotonic() < deadline, "no new session after the ensemble came back"
                time.sleep(0.5)
        assert client.get_children("/") is not None
    finally:
        pool.close()


def test_a_session_nobody_asks_for_is_closed(zk_ensemble_factory: ZkEnsembleFactory) -> None:
    """A MesosCluster deleted while its ensemble lives: its session does not stay open."""
    first, second = zk_ensemble_factory(1), zk_ensemble_factory(1)
    pool = ZkClientPool(idle_after=1.0)
    try:
        gone = pool.get(first.connect_string)
        kept = pool.get(second.connect_string)
        assert pool.open_sessions() == sorted([first.connect_string, second.connect_string])
        for _ in range(4):  # only the second ensemble's observer keeps asking
            time.sleep(0.5)
            assert pool.get(second.connect_string) is kept
        assert pool.open_sessions() == [second.connect_string]
        deadline = time.monotonic() + 15
        while gone.connected:  # closed in the background
            assert time.monotonic() < deadline, "the idle session was not closed"
            time.sleep(0.1)
        assert kept.connected
        assert pool.get(first.connect_string) is not gone  # asked again: a new session
    finally:
        pool.close()
