"""Conformance: the master's and agent's endpoint set as Mesos 1.11 routes it.

src/master/master.cpp (Master::initialize `route(...)`) and src/slave/slave.cpp route
`/state` but no `.json` alias: the deprecated `.json` endpoints were removed in 1.8.0
(CHANGELOG, MESOS-4509 "Remove deprecated .json endpoints"; docs/upgrades.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim.cluster import SimCluster
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]


@pytest.fixture
def cluster(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=1, marathons=0, base_dir=tmp_path
    ) as sim:
        yield sim


def test_json_suffixed_endpoints_do_not_exist(cluster: SimCluster) -> None:
    master, agent = cluster.leader_url(), cluster.agent_url(0)
    assert httpx.get(master + "/master/state").status_code == 200
    assert httpx.get(agent + "/state").status_code == 200
    for url in (master + "/master/state.json", master + "/state.json", agent + "/state.json"):
        assert httpx.get(url).status_code == 404, url
