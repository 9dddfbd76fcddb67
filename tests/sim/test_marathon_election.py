"""Conformance: what the MesosCluster status reads to call Marathon ready (issue 18): a
member in Marathon's leader latch in ZooKeeper, and a framework registered with the leading
Mesos master, both gone when the Marathon dies.

Marathon 1.11: `ZookeeperConf.scala` (`zooKeeperLeaderCuratorUrl`: `<zk path>/leader-curator`)
and `core/election/CuratorElectionService.scala` (a Curator LeaderLatch: one ephemeral
sequential member per contender, so a dead Marathon's member goes with its session). Mesos
1.11: `src/master/metrics.cpp` (`master/frameworks_active`: the active frameworks) and
`src/master/master.cpp` (`Master::exited` deactivates a framework whose scheduler went away).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cluster import SimCluster
from sim.marathon import layout
from testenv.zookeeper import ZkEnsemble


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_running_marathon_is_in_the_latch_and_a_framework_and_neither_once_dead(
    _zk_ensemble_module: ZkEnsemble, tmp_path: Path
) -> None:
    with SimCluster(
        _zk_ensemble_module.connect_string, masters=1, agents=0, marathons=1, base_dir=tmp_path
    ) as sim:
        sim.wait_for_leader()
        sim.wait_for_marathon()
        latch = f"{sim.marathon_path}/{layout.LATCH_DIR}"
        assert sim.zk.get_children(latch), "no member in Marathon's leader latch"
        sim.wait_for(lambda: sim.metrics()["master/frameworks_active"] == 1, 30,
                     "Marathon registered as a framework")  # fmt: skip

        sim.kill_marathon(0)
        sim.wait_for(lambda: not sim.zk.get_children(latch), 30, "the latch emptied")
        sim.wait_for(lambda: sim.metrics()["master/frameworks_active"] == 0, 30,
                     "the framework deactivated")  # fmt: skip
