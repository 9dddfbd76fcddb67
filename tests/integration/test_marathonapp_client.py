"""The MarathonApp's Marathon client against the simulator in a real ZooKeeper: the leader
found in Marathon's leader latch (Marathon 1.11 CuratorElectionService.scala, a Curator
LeaderLatch under <zk>/leader-curator), an app created, scaled, changed and deleted through
/v2/apps, followed in /v2/deployments, and what the MarathonApp's status says of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator_operator.mesos.marathon_api import (
    MarathonClient,
    MarathonError,
    MarathonUnreachable,
    parse_credentials,
    read_marathon_leader,
)
from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.operator.marathonapp.observe import observe_app
from orchestrator_operator.operator.marathonapp.status import (
    app_definition,
    build_status,
    drift_fields,
)
from orchestrator_operator.zk.clients import ZK_POOL
from sim.cluster import SimCluster
from sim.procs import SimProcess, free_ports
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(180)]


@pytest.fixture
def sim(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=1, marathons=2, base_dir=tmp_path
    ) as cluster:
        cluster.wait_for_marathon()
        yield cluster


SPEC = MarathonAppSpec.model_validate(
    {"cluster": "c", "app": {"id": "/team/web", "cmd": "sleep 600", "instances": 2, "cpus": 0.1,
                             "mem": 16, "env": {"MODE": "test"}}}
)  # fmt: skip


def test_the_leader_is_read_from_the_latch_and_follows_a_failover(
    sim: SimCluster, zk_ensemble: ZkEnsemble
) -> None:
    client = ZK_POOL.get(zk_ensemble.connect_string)
    leader = read_marathon_leader(client, sim.marathon_path)
    assert leader is not None
    assert sim.marathon_url().endswith(leader)
    assert read_marathon_leader(client, sim.marathon_path + "-none") is None

    index = sim.marathon_index()
    assert index is not None
    sim.kill_marathon(index)
    sim.wait_for(
        lambda: read_marathon_leader(client, sim.marathon_path) not in (None, leader),
        60,
        "the other Marathon leading",
    )
    # The new leader answers once it has taken over; until then a 502 ("Connection to
    # leader refused.", LeaderProxyFilter.scala) is MarathonUnreachable, which the operator
    # retries.
    new = MarathonClient(str(read_marathon_leader(client, sim.marathon_path)))

    def answers() -> bool:
        try:
            return new.list_apps() == []
        except MarathonUnreachable:
            return False

    sim.wait_for(answers, 60, "the new leader answering")


def test_an_app_created_scaled_reverted_and_deleted_through_the_client(
    sim: SimCluster, zk_ensemble: ZkEnsemble
) -> None:
    leader = read_marathon_leader(ZK_POOL.get(zk_ensemble.connect_string), sim.marathon_path)
    assert leader is not None
    marathon = MarathonClient(leader)
    assert marathon.get_app("/team/web") is None
    definition = app_definition(SPEC, {}, 2)
    assert marathon.put_app("/team/web", definition) is not None  # a deployment started
    sim.wait_for_tasks("/team/web", 2)
    sim.wait_for(lambda: not marathon.deployments(), 30, "the deployment finished")

    observation = observe_app(marathon, "/team/web")
    assert observation.app is not None
    assert drift_fields(definition, observation.app) == []
    status = build_status(SPEC, observation, 2, [], 1, "2026-12-03T21:00:00Z")
    assert status["marathon"]["running"] == 2
    assert status["marathon"]["version"] == observation.app["version"]
    assert status["phase"] == "Ready"

    # Someone scales the app in Marathon: the client sees which field differs.
    marathon.put_app("/team/web", {"instances": 1})
    sim.wait_for_tasks("/team/web", 1)
    changed = marathon.get_app("/team/web")
    assert changed is not None
    assert drift_fields(definition, changed) == ["instances"]

    # The definition PUT back (force: whatever deployment runs is overridden).
    marathon.put_app("/team/web", definition, force=True)
    sim.wait_for_tasks("/team/web", 2)
    back = marathon.get_app("/team/web")
    assert back is not None
    assert drift_fields(definition, back) == []

    assert marathon.delete_app("/team/web", force=True)
    sim.wait_for(lambda: marathon.get_app("/team/web") is None, 30, "the app gone")
    assert not marathon.delete_app("/team/web")


def test_errors_name_the_call_and_marathons_words() -> None:
    with pytest.raises(MarathonUnreachable) as unreachable:
        MarathonClient("127.0.0.1:1", timeout=1.0).get_app("/web")
    assert "GET /v2/apps/web" in str(unreachable.value)


def test_marathons_http_credentials_go_in_a_header_and_never_in_an_error(
    zk_ensemble: ZkEnsemble, tmp_path: Path
) -> None:
    """Marathon 1.11 with --http_credentials (HttpConf.scala; the sim reads
    MARATHON_HTTP_CREDENTIALS as Marathon's envToArgs does): every route needs Basic auth."""
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=1, marathons=0, base_dir=tmp_path
    ) as cluster:
        port = free_ports(1)[0]
        marathon = SimProcess(
            "marathon-auth",
            ["marathon", f"--master={cluster.mesos_zk}", f"--zk={cluster.marathon_zk}",
             f"--port={port}", "--zk_session_timeout=4000"],
            tmp_path / "marathon-auth.log",
            env={"MARATHON_HTTP_CREDENTIALS": "ops:pa55-w0rd"},
        )  # fmt: skip
        marathon.start()
        try:
            client = ZK_POOL.get(zk_ensemble.connect_string)
            cluster.wait_for(
                lambda: read_marathon_leader(client, cluster.marathon_path) is not None,
                30, "the Marathon in its latch",
            )  # fmt: skip
            leader = str(read_marathon_leader(client, cluster.marathon_path))
            with pytest.raises(MarathonError) as refused:
                MarathonClient(leader).list_apps()
            assert refused.value.status == 401
            authorized = MarathonClient(leader, parse_credentials("ops:pa55-w0rd"))
            cluster.wait_for(lambda: authorized.list_apps() == [], 30, "an answer with auth")
            wrong = MarathonClient(leader, parse_credentials("ops:wrong-pa55"))
            with pytest.raises(MarathonError) as denied:
                wrong.get_app("/web")
            assert denied.value.status == 401
            assert "pa55" not in str(denied.value)
        finally:
            marathon.kill()
