"""Issue 19's must-show for traffic: real ZooKeeper, the simulated Mesos and Marathon running
tasks as real HTTP servers (testenv/echo_server.py, each answering its Marathon app id),
the real load balancer (`orchestrator lb` driving Debian's HAProxy, following the traffic
ConfigMaps in a real Kubernetes API server), and a steady client load through HAProxy.

The level: the strategy code (operator/marathonapp/strategy.py's `reconcile_strategy`, the
hook the operator's MarathonApp sync calls every second) is driven directly by the test,
once every 0.3 s, against a MarathonApp object that exists in the API server (it owns the
traffic ConfigMap) with no operator running; the rolling update is Marathon's own, as the
operator's rolling strategy PUTs it. What the client saw is printed (`-s` shows it) and
recorded in docs/marathonapp.md, "Strategies".
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.mesos.marathon_api import MarathonClient
from orchestrator_operator.operator.marathonapp.strategy import reconcile_strategy
from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv
from testenv.processes import ManagedProcess, free_port, free_ports
from testenv.traffic import SteadyLoad, echo_app, echo_command, measure_shares, shares_of
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.kube, pytest.mark.timeout(420)]

NAMESPACE = "traffic"
CLUSTER = "demo"
HAPROXY = "/usr/sbin/haproxy"
TICK = 0.3


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


@dataclass
class Platform:
    sim: SimCluster
    kube_env: KubeTestEnv
    kube: KubeApi
    marathon: MarathonClient
    lb: ManagedProcess
    lb_url: str


@pytest.fixture(scope="module")
def platform(
    _zk_ensemble_module: ZkEnsemble,
    kube_env: KubeTestEnv,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("traffic")
    # Ports free now for the tasks (one range each), so no other test's server is in the way.
    ports = ",".join(f"{p}-{p}" for p in free_ports(40))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kube_env.kubeconfig))
        kube = KubeApi()
        kube_env.kubectl_run("create", "namespace", NAMESPACE)
        with SimCluster(
            _zk_ensemble_module.connect_string,
            masters=1,
            agents=1,
            marathons=1,
            base_dir=base / "sim",
            agent_resources=f"cpus:8;mem:8192;disk:10240;ports:[{ports}]",
            agent_flags=["--hostname=127.0.0.1"],  # tasks' host: health checks and HAProxy
        ) as sim:
            marathon_url = sim.marathon_url()
            metrics_port, stats_port, log_port = free_ports(3)
            lb = ManagedProcess(
                "lb",
                [
                    sys.executable, "-m", "orchestrator_operator.cli", "lb",
                    "--marathon", marathon_url,
                    "--namespace", NAMESPACE, "--cluster", CLUSTER,
                    "--run-dir", str(base / "lb"),
                    "--bind-address", "127.0.0.1",
                    "--http-port", "0", "--https-port", "0",
                    "--stats-port", str(stats_port),
                    "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics_port),
                    "--log-port", str(log_port),
                    "--resync-seconds", "5",
                    "--haproxy-binary", HAPROXY,
                ],
                base,
            )  # fmt: skip
            (base / "lb").mkdir()
            lb.start()
            lb_url = f"http://127.0.0.1:{metrics_port}"
            try:

                def ready() -> bool:
                    assert lb.running(), lb.log_tail(40)
                    return httpx.get(lb_url + "/readyz").status_code == 200

                wait_for("the load balancer is ready", ready)
                marathon = MarathonClient(marathon_url.removeprefix("http://"))
                yield Platform(sim, kube_env, kube, marathon, lb, lb_url)
                marathon.close()
            except BaseException:
                print(lb.log_tail(60))
                raise
            finally:
                lb.stop()


@dataclass
class Driven:
    """A MarathonApp in the API server whose rollout the test drives (as the operator's
    timer would): `tick` calls reconcile_strategy with the last status.rollout."""

    platform: Platform
    name: str
    body: dict[str, Any]
    rollout: dict[str, Any] = field(default_factory=dict)
    phases: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, platform: Platform, name: str, app: dict[str, Any], strategy: Any) -> Driven:
        manifest = {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MarathonApp",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"cluster": CLUSTER, "app": app, "strategy": strategy},
        }
        created = platform.kube_env.api(
            "POST", f"/apis/orchestrator.dev/v1alpha1/namespaces/{NAMESPACE}/marathonapps",
            manifest,
        )  # fmt: skip
        return cls(platform, name, created)

    def update(self, **spec: Any) -> None:
        self.body["spec"] = {**self.body["spec"], **spec}

    def tick(self) -> dict[str, Any]:
        body = {**self.body, "status": {"rollout": self.rollout}}
        self.rollout = reconcile_strategy(
            body,
            dict(self.body["spec"]["app"]),
            self.platform.marathon,
            self.platform.kube,
            load_balancer=self.platform.lb_url,
        )
        if not self.phases or self.phases[-1] != self.rollout["phase"]:
            self.phases.append(self.rollout["phase"])
            print(f"  {self.name}: {self.rollout['phase']}: {self.rollout['message']}")
        return self.rollout

    def until(
        self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.tick()):
                return
            time.sleep(TICK)
        raise AssertionError(f"{self.name}: {what} not within {timeout} s: {self.rollout}")

    def settled(self, phase: str, timeout: float = 90) -> None:
        """`phase` with nothing left to remove or move."""
        apps = self.platform.marathon

        def done(rollout: dict[str, Any]) -> bool:
            if rollout["phase"] != phase or rollout.get("stage") in ("RollingBack", "Finishing"):
                return False
            stable = rollout.get("stableApp")
            return bool(stable) and not apps.deployments()

        self.until(f"phase {phase}", done, timeout)

    def traffic(self) -> dict[str, int]:
        found = self.platform.kube.get("v1", "ConfigMap", NAMESPACE, f"{self.name}-traffic")
        assert found, "no traffic ConfigMap"
        weights: dict[str, int] = json.loads(found["data"]["weights.json"])["weights"]
        return weights


def frontend(port: int) -> str:
    return f"http://127.0.0.1:{port}/"


def wait_serving(url: str, who: set[str]) -> None:
    """Until HAProxy answers from exactly these apps (the LB followed Marathon)."""

    def only() -> bool:
        try:
            return set(measure_shares(url, requests=40)) == who
        except AssertionError:  # some requests failed: not serving yet
            return False

    wait_for(f"{url} answered by {who}", only, timeout=60)


def paused_at(weight: int) -> Callable[[dict[str, Any]], bool]:
    def check(rollout: dict[str, Any]) -> bool:
        return bool(
            rollout["phase"] == "Paused" and rollout["weights"].get("/web-canary") == weight
        )

    return check


def lb_share(platform: Platform, app_id: str, weight: int) -> Callable[[], bool]:
    """Whether the load balancer's HAProxy weights give `app_id` `weight`% of its backend
    (GET /v1/backends/<name>/stats lists the servers with their weights)."""

    def check() -> bool:
        backends = httpx.get(platform.lb_url + "/v1/backends", timeout=5).json()["backends"]
        name = next(b["name"] for b in backends if app_id in b["apps"])
        view = httpx.get(f"{platform.lb_url}/v1/backends/{name}/stats", timeout=5).json()
        servers = [s for s in view["servers"] if s["state"] != "maint"]
        total = sum(int(s["weight"]) for s in servers)
        mine = sum(int(s["weight"]) for s in servers if s["app"] == app_id)
        return total > 0 and abs(mine / total - weight / 100) < 0.02

    return check


def report(name: str, load: SteadyLoad) -> int:
    failed = len(load.failures())
    print(f"  {name}: {load.summary()}")
    return failed


def test_rolling_update_under_load_fails_no_request(platform: Platform) -> None:
    port = free_port()
    app = echo_app("/roll", port, version="1")
    platform.marathon.put_app("/roll", app)
    url = frontend(port)
    wait_serving(url, {"/roll"})
    with SteadyLoad(url) as load:
        load.wait_for_requests(300)
        # Marathon's rolling upgrade (what the operator's rolling strategy PUTs).
        platform.marathon.put_app("/roll", {**app, "env": {"VERSION": "2"}})
        wait_for("the rolling upgrade finished", lambda: not platform.marathon.deployments())
        load.wait_for_requests(300)
    failed = report("rolling update", load)
    assert failed == 0, load.summary()
    tasks = platform.marathon.tasks("/roll")
    assert len(tasks) == 2
    platform.marathon.delete_app("/roll", force=True)


def test_blue_green_switch_under_load_fails_no_request(platform: Platform) -> None:
    port = free_port()
    strategy = {"type": "blueGreen", "blueGreen": {"rollbackWindowSeconds": 3}}
    mapp = Driven.create(platform, "bg", echo_app("/bg", port, version="1"), strategy)
    mapp.settled("Idle")
    assert mapp.traffic() == {"/bg-blue": 100}
    url = frontend(port)
    wait_serving(url, {"/bg-blue"})
    with SteadyLoad(url) as load:
        load.wait_for_requests(300)
        mapp.update(app=echo_app("/bg", port, version="2"))
        mapp.until("the switch", lambda r: r["phase"] == "Promoted")
        assert mapp.traffic() == {"/bg-green": 100, "/bg-blue": 0}
        switched = time.monotonic()
        load.wait_for_requests(300)
        # After the rollback window, blue is removed.
        mapp.until(
            "blue removed", lambda r: platform.marathon.get_app("/bg-blue") is None, timeout=60
        )
        assert mapp.traffic() == {"/bg-green": 100}
        load.wait_for_requests(300)
    failed = report("blue-green switch", load)
    assert failed == 0, load.summary()
    after = shares_of([r for r in load.results if r.at > switched + 2])
    assert after == {"/bg-green": 1.0}, after
    assert mapp.rollout["stableApp"] == "/bg-green"


def test_canary_to_100_percent_under_load_fails_no_request_and_shares_follow_weights(
    platform: Platform,
) -> None:
    port = free_port()
    steps: list[dict[str, Any]] = []
    for weight in (10, 25, 50, 75):
        steps += [{"setWeight": weight}, {"pause": {}}]
    steps.append({"setWeight": 100})
    strategy = {"type": "canary", "canary": {"steps": steps}}
    mapp = Driven.create(platform, "web", echo_app("/web", port, version="1"), strategy)
    mapp.settled("Idle")
    url = frontend(port)
    wait_serving(url, {"/web"})
    measured: dict[int, float] = {}
    with SteadyLoad(url) as load:
        load.wait_for_requests(200)
        mapp.update(app=echo_app("/web", port, version="2"))
        for promote, weight in enumerate((10, 25, 50, 75), start=1):
            mapp.until(f"paused at {weight}%", paused_at(weight))
            wait_for(
                f"the LB gives /web-canary {weight}%", lb_share(platform, "/web-canary", weight)
            )
            shares, total = load.measure(1000)
            measured[weight] = shares.get("/web-canary", 0.0)
            print(f"  canary at {weight}%: measured {measured[weight]:.1%} of {total} requests")
            mapp.update(promote=promote)
        mapp.settled("Promoted", timeout=120)
        load.wait_for_requests(200)
    failed = report("canary to 100%", load)
    for weight, share in measured.items():
        assert abs(share - weight / 100) <= 0.05, measured
    assert failed == 0, load.summary()
    assert mapp.traffic() == {"/web": 100}
    assert platform.marathon.get_app("/web-canary") is None
    assert measure_shares(url, requests=100) == {"/web": 1.0}


def test_canary_failing_its_health_check_is_rolled_back(platform: Platform) -> None:
    port = free_port()
    strategy = {"type": "canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
    mapp = Driven.create(platform, "sick", echo_app("/sick", port, version="1"), strategy)
    mapp.settled("Idle")
    url = frontend(port)
    wait_serving(url, {"/sick"})
    with SteadyLoad(url) as load:
        load.wait_for_requests(200)
        # The new version never answers on its port: its HTTP health check fails.
        broken = echo_app("/sick", port, version="2", cmd="exec sleep 3600")
        broken["healthChecks"][0]["gracePeriodSeconds"] = 2
        mapp.update(app=broken)
        mapp.settled("RolledBack", timeout=120)
        load.wait_for_requests(200)
    failed = report("canary failing its health check", load)
    print(f"  failed client requests while it was rolled back: {failed}")
    assert "fail their health checks" in mapp.rollout["message"]
    assert mapp.traffic() == {"/sick": 100}
    assert platform.marathon.get_app("/sick-canary") is None
    assert "Paused" not in mapp.phases  # it never got traffic
    assert failed == 0, load.summary()


def test_canary_answering_half_errors_is_rolled_back_by_analysis(platform: Platform) -> None:
    port = free_port()
    strategy = {
        "type": "canary",
        "canary": {
            "steps": [{"setWeight": 20}, {"analysis": {}}, {"setWeight": 100}],
            "analysis": {"intervalSeconds": 2, "count": 3, "maxErrorRate": 0.1},
        },
    }
    mapp = Driven.create(platform, "flaky", echo_app("/flaky", port, version="1"), strategy)
    mapp.settled("Idle")
    url = frontend(port)
    wait_serving(url, {"/flaky"})
    with SteadyLoad(url) as load:
        load.wait_for_requests(200)
        mapp.update(app=echo_app("/flaky", port, version="2", cmd=echo_command(error_rate=0.5)))
        mapp.settled("RolledBack", timeout=120)
        rolled_back = time.monotonic()
        load.wait_for_requests(300)
    failed = report("canary answering 50% errors", load)
    print(f"  failed client requests while it was rolled back: {failed}")
    assert "analysis failed at step 2/3: error rate" in mapp.rollout["message"]
    failing = [r for r in mapp.rollout["analysis"] if r["result"] == "Fail"]
    assert failing and failing[0]["metric"] == "errorRate" and failing[0]["value"] > 0.1
    assert mapp.traffic() == {"/flaky": 100}
    assert platform.marathon.get_app("/flaky-canary") is None
    # The failures were the canary's 500s while it had 20%, none after the rollback.
    assert failed > 0
    assert all(r.status == 500 for r in load.failures()), load.summary()
    assert not [r for r in load.failures() if r.at > rolled_back + 1]
