"""Conformance: how a Marathon that does not lead answers (Marathon 1.11 leader proxying).

Each test names the Marathon 1.11 source it follows: `api/HttpBindings.scala` (the proxy
filter is mapped to `/*`), `api/LeaderProxyFilter.scala`,
`api/forwarder/AsyncUrlConnectionRequestForwarder.scala` and `RequestForwarder.scala`.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from kazoo.client import KazooClient

from sim.cluster import SimCluster
from sim.marathon import layout
from sim.marathon.proxy import LeaderProxy
from sim.procs import free_ports
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import EventStream


@pytest.fixture(scope="module")
def cluster(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    base = tmp_path_factory.mktemp("proxy")
    with SimCluster(
        _zk_ensemble_module.connect_string, masters=1, agents=1, marathons=2, base_dir=base
    ) as sim:
        yield sim


def _follower(cluster: SimCluster) -> tuple[str, str]:
    leader = cluster.marathon_index()
    assert leader is not None
    return cluster.marathon_instance_url(leader), cluster.marathon_instance_url(1 - leader)


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", ["/ping", "/v2/leader", "/v2/info", "/v2/apps"])
def test_a_follower_has_the_leader_answer_every_route(cluster: SimCluster, path: str) -> None:
    # HttpBindings.scala: addFilter("/*", leaderProxyFilter): /ping and /v2/leader too.
    # LeaderProxyFilter: the leader adds X-Marathon-Leader (and X-Frame-Options,
    # X-XSS-Protection); AsyncUrlConnectionRequestForwarder: the follower forwards with
    # X-Marathon-Via "1.1 <its host:port>", copies the leader's headers and adds its Via.
    leader, follower = _follower(cluster)
    follower_hostport = follower.removeprefix("http://")
    direct = httpx.get(leader + path, timeout=10)
    proxied = httpx.get(follower + path, timeout=10)
    assert proxied.status_code == direct.status_code == 200
    assert direct.headers["X-Marathon-Leader"] == leader
    assert direct.headers["X-Frame-Options"] == "DENY"
    assert "X-Marathon-Via" not in direct.headers
    assert proxied.headers["X-Marathon-Leader"] == leader
    assert proxied.headers["X-Marathon-Via"] == f"1.1 {follower_hostport}"
    if path == "/v2/info":
        assert proxied.json()["elected"] is True  # the leader's own view


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_follower_redirects_the_event_stream_to_the_leader(cluster: SimCluster) -> None:
    # LeaderProxyFilter.shouldBeRedirectedToLeader: /v2/events gets response.sendRedirect.
    leader, follower = _follower(cluster)
    response = httpx.get(
        follower + "/v2/events?event_type=deployment_success",
        headers={"Accept": "text/event-stream"},
        timeout=10,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == leader + "/v2/events?event_type=deployment_success"


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_request_that_already_went_through_a_marathon_is_a_loop(cluster: SimCluster) -> None:
    # AsyncUrlConnectionRequestForwarder.forward: its own Via value in the request: 502.
    _, follower = _follower(cluster)
    via = "1.1 " + follower.removeprefix("http://")
    response = httpx.get(follower + "/v2/apps", headers={"X-Marathon-Via": via}, timeout=10)
    assert response.status_code == 502
    assert "Detected proxying loop." in response.text


@pytest.mark.zookeeper
@pytest.mark.timeout(180)
def test_an_unreachable_leader_is_502_and_the_old_leader_steps_down(
    _zk_ensemble_module: ZkEnsemble, tmp_path: Path
) -> None:
    # Curator LeaderLatch: the lowest sequence leads. A latch node naming a closed port:
    # AsyncUrlConnectionRequestForwarder maps the failed connection (StreamTcpException) to
    # 502 "Connection to leader refused."; the Marathon that led lost leadership and exits
    # (ElectionService: LeadershipTransition.Standby -> CrashStrategy.LeadershipLoss, 103).
    sim = SimCluster(
        _zk_ensemble_module.connect_string, masters=1, agents=0, marathons=2, base_dir=tmp_path
    )
    # The latch's counter past 0, so that the node below (sequence 0) is the lowest.
    latch = f"{sim.marathon_path}/{layout.LATCH_DIR}"
    prep = KazooClient(hosts=_zk_ensemble_module.connect_string)
    prep.start(timeout=15)
    try:
        prep.delete(prep.create(f"{latch}/{layout.LATCH_PREFIX}x-", sequence=True, makepath=True))
    finally:
        prep.stop()
        prep.close()
    with sim:
        leader_index = sim.marathon_index()
        assert leader_index is not None
        follower = sim.marathon_instance_url(1 - leader_index)
        dead = free_ports(1)[0]
        name = f"{layout.LATCH_PREFIX}{uuid.uuid4()}{layout.LATCH_MARK}0000000000"
        sim.zk.create(f"{latch}/{name}", f"127.0.0.1:{dead}".encode(), ephemeral=True)
        sim.wait_for(lambda: not sim.marathons[leader_index].running, what="the leader to exit")
        assert sim.marathons[leader_index].returncode == 103

        def refused() -> bool:
            response = httpx.get(follower + "/v2/apps", timeout=10)
            return response.status_code == 502 and "Connection to leader refused." in response.text

        sim.wait_for(refused, what="502 from the follower")
        assert httpx.get(follower + "/v2/leader", timeout=10).status_code == 502


# --- the proxy filter in-process, with a leadership state the test sets


class _State:
    def __init__(self, me: str, leader: str | None, elected: bool = False) -> None:
        self.me = me
        self.leader = leader
        self.elected = elected


async def _serve(proxy: LeaderProxy, port: int) -> web.AppRunner:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        return await proxy.dispatch(request, handler)

    async def hello(request: web.Request) -> web.StreamResponse:
        return web.Response(text="served here")

    app = web.Application(middlewares=[middleware])
    app.router.add_get("/v2/apps", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


@pytest.mark.timeout(60)
def test_no_known_leader_is_502_after_waiting_for_a_consistent_state() -> None:
    # LeaderProxyFilter.doFilter: neither leader nor a leader elsewhere ->
    # waitForConsistentLeadership (11 checks, 250 ms apart), then
    # sendError(502, "Could not determine the current leader").
    port = free_ports(1)[0]
    state = _State(f"127.0.0.1:{port}", None)

    async def run() -> tuple[int, str]:
        proxy = LeaderProxy(state)
        runner = await _serve(proxy, port)
        try:
            return await _get(f"http://127.0.0.1:{port}/v2/apps")
        finally:
            await runner.cleanup()
            await proxy.close()

    status, text = asyncio.run(run())
    assert status == 502
    assert "Could not determine the current leader" in text


@pytest.mark.timeout(60)
def test_a_request_waits_while_this_marathon_takes_over() -> None:
    # LeaderProxyFilter.waitForConsistentLeadership: the latch names this Marathon but it is
    # not elected yet: the request is held, then served once it leads.
    port = free_ports(1)[0]
    state = _State(f"127.0.0.1:{port}", f"127.0.0.1:{port}")

    async def run() -> tuple[int, str]:
        proxy = LeaderProxy(state)
        runner = await _serve(proxy, port)
        try:
            asyncio.get_running_loop().call_later(0.6, setattr, state, "elected", True)
            return await _get(f"http://127.0.0.1:{port}/v2/apps")
        finally:
            await runner.cleanup()
            await proxy.close()

    assert asyncio.run(run()) == (200, "served here")


@pytest.mark.timeout(60)
def test_a_leader_that_never_answers_is_500_after_the_read_timeout() -> None:
    # AsyncUrlConnectionRequestForwarder: --leader_proxy_read_timeout is akka-http's idle
    # timeout; its failure is no StreamTcpException, so it maps to 500 (not 502).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (kernel backlog), never answers
    leader = f"127.0.0.1:{silent.getsockname()[1]}"
    port = free_ports(1)[0]
    state = _State(f"127.0.0.1:{port}", leader)

    async def run() -> tuple[int, str]:
        proxy = LeaderProxy(state, connection_timeout=1.0, read_timeout=0.5)
        runner = await _serve(proxy, port)
        try:
            return await _get(f"http://127.0.0.1:{port}/v2/apps")
        finally:
            await runner.cleanup()
            await proxy.close()

    try:
        status, _ = asyncio.run(run())
    finally:
        silent.close()
    assert status == 500


@pytest.mark.zookeeper
@pytest.mark.timeout(240)
def test_a_mesos_master_failover_makes_the_marathon_leader_abdicate(
    _zk_ensemble_module: ZkEnsemble, tmp_path: Path
) -> None:
    # Mesos src/sched/sched.cpp `detected`: a change of the leading master calls the
    # scheduler's `disconnected`; MarathonScheduler.disconnected publishes
    # scheduler_disconnected_event and stops the driver; MarathonSchedulerService abdicates
    # when driver.run() returns; ElectionService crashes on the lost leadership (103). The
    # other Marathon leads and registers with the same framework id; the task survives.
    with SimCluster(
        _zk_ensemble_module.connect_string, masters=3, agents=1, marathons=2, base_dir=tmp_path
    ) as sim:
        first = sim.marathon_index()
        assert first is not None
        app = {"id": "/abdicate", "instances": 1, "cpus": 0.1, "mem": 32, "cmd": "sleep 1000"}
        assert httpx.post(sim.marathon_url() + "/v2/apps", json=app, timeout=10).status_code == 201
        task = sim.wait_for_tasks("/abdicate", 1)[0]
        framework_id = sim.framework_id()
        with EventStream(sim.marathon_instance_url(first) + "/v2/events") as stream:
            stream.wait_for(lambda: stream.status == 200, what="the stream")
            old_master = sim.leader()
            old_index = sim.leader_index()
            assert old_master is not None and old_index is not None
            sim.kill_master(old_index)
            sim.wait_for(lambda: not sim.marathons[first].running, what="the leader to abdicate")
            stream.wait_for(lambda: stream.closed.is_set(), what="the stream to end")
        assert sim.marathons[first].returncode == 103
        assert stream.of_type("scheduler_disconnected_event")
        sim.wait_for(lambda: sim.marathon_index() == 1 - first, what="the other Marathon to lead")
        sim.wait_for_marathon(timeout=60)
        assert httpx.get(sim.marathon_url() + "/v2/info").json()["frameworkId"] == framework_id
        assert [t["id"] for t in sim.wait_for_tasks("/abdicate", 1)] == [task["id"]]
