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
