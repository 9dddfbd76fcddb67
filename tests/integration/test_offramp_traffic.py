"""Issue 21's must-show for the traffic shift: one app moved from Marathon to Kubernetes
under a steady client load with zero failed requests, the share per step measured at the
client, then (a second app) rolled back at 50 % with zero failed requests.

The parts: real ZooKeeper; the simulated Mesos and Marathon running the app's tasks as
real HTTP servers (testenv/echo_server.py answering the Marathon app id); a real API server
(testenv) holding the MarathonApp, its traffic ConfigMap, the Service and its
EndpointSlices; the real load balancer (`orchestrator lb` driving Debian's HAProxy,
watching the ConfigMaps and the EndpointSlices); the "pods" are echo servers answering
`kubernetes`, each on its own address put on the loopback interface as root (198.18.21.x,
the benchmarking range: the API server refuses 127.0.0.0/8 in an EndpointSlice), listed as
the ready endpoints of EndpointSlices this test writes, as the EndpointSlice controller
would for pods at those addresses (a Service without a selector, so the controller leaves
them alone). The pods of a translated Deployment run by testenv/simpods.py are the
operator-level version of the same (tests/e2e/test_marathonapp_kubernetes.py).

The level: the off-ramp code (operator/marathonapp/offramp.py's `reconcile_offramp`, the
hook the operator's MarathonApp sync calls every second) is driven directly, once every
0.3 s, and the Marathon instance count it returns is PUT as the sync would PUT it (a
scale). What the client saw is printed (`-s`) and recorded in docs/offramp.md.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.mesos.marathon_api import MarathonClient
from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.operator.marathonapp.offramp import reconcile_offramp
from sim.cluster import SimCluster
from testenv.kube import KubeTestEnv
from testenv.loopback import add_loopback_address, remove_loopback_address
from testenv.processes import ManagedProcess, free_port, free_ports
from testenv.traffic import ECHO_SERVER, SteadyLoad, echo_command, measure_shares
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.kube, pytest.mark.timeout(420)]

NAMESPACE = "offramp"
CLUSTER = "demo"
HAPROXY = "/usr/sbin/haproxy"
TICK = 0.3
KUBERNETES = "kubernetes"  # what the pods answer
POD_IPS = ["198.18.21.2", "198.18.21.3", "198.18.21.4", "198.18.21.5"]


@pytest.fixture(scope="module")
def pod_ips() -> Iterator[list[str]]:
    """The pods' addresses on lo (root: CI runs as root; elsewhere this fails, saying so)."""
    added: list[str] = []
    try:
        for ip in POD_IPS:
            add_loopback_address(ip)
            added.append(ip)
        yield list(POD_IPS)
    finally:
        for ip in added:
            remove_loopback_address(ip)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError, ValueError, KeyError, StopIteration) as error:
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


@dataclass
class Platform:
    kube_env: KubeTestEnv
    kube: KubeApi
    marathon: MarathonClient
    lb_url: str
    base: Path
    stats_url: str = ""  # HAProxy's own stats page
    processes: list[ManagedProcess] = field(default_factory=list)


@pytest.fixture(scope="module")
def platform(
    _zk_ensemble_module: ZkEnsemble,
    kube_env: KubeTestEnv,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("offramp")
    ports = ",".join(f"{p}-{p}" for p in free_ports(12))
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
            agent_flags=["--hostname=127.0.0.1"],
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
            marathon = MarathonClient(marathon_url.removeprefix("http://"))
            platform = Platform(
                kube_env, kube, marathon, lb_url, base,
                stats_url=f"http://127.0.0.1:{stats_port}/stats;csv",
            )  # fmt: skip
            try:

                def ready() -> bool:
                    assert lb.running(), lb.log_tail(40)
                    return httpx.get(lb_url + "/readyz").status_code == 200

                wait_for("the load balancer is ready", ready)
                yield platform
            except BaseException:
                print(lb.log_tail(60))
                raise
            finally:
                for process in platform.processes:
                    process.stop()
                marathon.close()
                lb.stop()


def marathon_app(app_id: str, port: int) -> dict[str, Any]:
    """Two instances of the echo server answering its app id on the LB port `port`; HTTP
    health checks every second."""
    return {
        "id": app_id,
        "cmd": echo_command(),
        "cpus": 0.05,
        "mem": 32,
        "instances": 2,
        "portDefinitions": [{"port": port, "protocol": "tcp", "name": "http"}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": str(port)},
        "healthChecks": [
            {
                "protocol": "HTTP",
                "path": "/health",
                "portIndex": 0,
                "gracePeriodSeconds": 10,
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                "maxConsecutiveFailures": 2,
            }
        ],
        "taskKillGracePeriodSeconds": 2,
    }


def answers(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def start_pods(platform: Platform, name: str, hosts: list[str], port: int) -> None:
    """The Deployment's pods: echo servers on their own addresses, then the Service (no
    selector) and an EndpointSlice listing them ready, port `http` as the translated
    Service names it."""
    for host in hosts:
        process = ManagedProcess(
            f"{name}-pod-{host}",
            [
                sys.executable, str(ECHO_SERVER), "--host", host, "--port", str(port),
                "--text", KUBERNETES,
            ],
            platform.base,
        )  # fmt: skip
        process.start()
        platform.processes.append(process)
        health = f"http://{host}:{port}/health"
        wait_for(f"pod {host} answers", functools.partial(answers, health))

    platform.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"ports": [{"name": "http", "port": port, "targetPort": port}]},
        }
    )
    platform.kube.apply(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-pods",
                "namespace": NAMESPACE,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "test.orchestrator.dev",
                },
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [
                {
                    "addresses": [host],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "targetRef": {"kind": "Pod", "name": f"{name}-{n}", "namespace": NAMESPACE},
                }
                for n, host in enumerate(hosts)
            ],
        }
    )


@dataclass
class Driven:
    """A MarathonApp in the API server whose shift the test drives, as the sync would."""

    platform: Platform
    name: str
    body: dict[str, Any]
    offramp: dict[str, Any] = field(default_factory=dict)
    phases: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        platform: Platform,
        name: str,
        app: dict[str, Any],
        steps: Any,
        analysis: dict[str, Any] | None = None,
    ) -> Driven:
        shift: dict[str, Any] = {"steps": steps}
        if analysis is not None:
            shift["analysis"] = analysis
        manifest = {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MarathonApp",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "cluster": CLUSTER,
                "app": app,
                "kubernetes": {"image": "registry.example/echo:1", "shift": shift},
            },
        }
        created = platform.kube_env.api(
            "POST", f"/apis/orchestrator.dev/v1alpha1/namespaces/{NAMESPACE}/marathonapps",
            manifest,
        )  # fmt: skip
        return cls(platform, name, created)

    def update(self, **spec: Any) -> None:
        self.body["spec"] = {**self.body["spec"], **spec}

    def tick(self) -> dict[str, Any]:
        parsed = MarathonAppSpec.model_validate(self.body["spec"])
        body = {**self.body, "status": {"offramp": self.offramp}}
        marathon = self.platform.marathon
        self.offramp, instances = reconcile_offramp(
            body, parsed, marathon, self.platform.kube, parsed.app.instances,
            load_balancer=self.platform.lb_url,
        )  # fmt: skip
        app = marathon.get_app(parsed.app.id)
        if app is not None and int(app.get("instances") or 0) != instances:
            marathon.put_app(parsed.app.id, {"instances": instances})  # the sync's scale
        self.messages.append(str(self.offramp["message"]))
        if not self.phases or self.phases[-1] != self.offramp["phase"]:
            self.phases.append(self.offramp["phase"])
            print(f"  {self.name}: {self.offramp['phase']}: {self.offramp['message']}")
        return self.offramp

    def until(
        self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.tick()):
                return
            time.sleep(TICK)
        raise AssertionError(f"{self.name}: {what} not within {timeout} s: {self.offramp}")

    def traffic(self) -> dict[str, Any]:
        found = self.platform.kube.get("v1", "ConfigMap", NAMESPACE, f"{self.name}-traffic")
        assert found, "no traffic ConfigMap"
        body: dict[str, Any] = json.loads(found["data"]["weights.json"])
        return body


def paused_at(weight: int) -> Callable[[dict[str, Any]], bool]:
    return lambda o: o["phase"] == "Paused" and o["kubernetesWeight"] == weight


def lb_gives(platform: Platform, app_id: str, name: str, weight: int) -> Callable[[], bool]:
    """Whether HAProxy's weights give the pods `weight`% of the app's backend."""

    def check() -> bool:
        backends = httpx.get(platform.lb_url + "/v1/backends", timeout=5).json()["backends"]
        backend = next(b["name"] for b in backends if app_id in b["apps"])
        view = httpx.get(f"{platform.lb_url}/v1/backends/{backend}/stats", timeout=5).json()
        servers = [s for s in view["servers"] if s["state"] == "ready"]
        total = sum(int(s["weight"]) for s in servers)
        pods = sum(int(s["weight"]) for s in servers if s["app"] == f"kubernetes:{name}")
        return total > 0 and abs(pods / total - weight / 100) < 0.02

    return check


def haproxy_servers(platform: Platform) -> str:
    """What HAProxy itself says of each server (its stats CSV): weight, status, requests
    sent, connection errors, retries and redispatches; printed beside the shares."""
    rows = httpx.get(platform.stats_url, timeout=5).text.lstrip("# ").splitlines()
    header = rows[0].split(",")
    keep = ("pxname", "svname", "status", "weight", "stot", "econ", "eresp", "wretr", "wredis")
    out = []
    for row in rows[1:]:
        values = dict(zip(header, row.split(","), strict=False))
        if values.get("svname", "").startswith("srv") and values.get("status") != "MAINT":
            out.append(" ".join(f"{k}={values.get(k, '')}" for k in keep))
    return "\n".join(out)


def serving(url: str, who: set[str]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return set(measure_shares(url, requests=40)) == who
        except AssertionError:
            return False

    return check


def test_an_app_moves_to_kubernetes_under_load_with_no_failed_request(
    platform: Platform, pod_ips: list[str]
) -> None:
    port, pod_port = free_port(), free_port()
    app = marathon_app("/web", port)
    platform.marathon.put_app("/web", app)
    url = f"http://127.0.0.1:{port}/"
    wait_for("Marathon's /web served", serving(url, {"/web"}), timeout=60)
    start_pods(platform, "web", pod_ips[:2], pod_port)
    steps: list[dict[str, Any]] = []
    for weight in (10, 50, 90):
        steps += [{"setWeight": weight}, {"pause": {}}]
        if weight == 50:  # the analysis reads the pods' requests at the load balancer
            steps.insert(-1, {"analysis": {}})
    steps.append({"setWeight": 100})
    analysis = {"intervalSeconds": 2, "count": 2, "maxErrorRate": 0.01}
    mapp = Driven.create(platform, "web", app, steps, analysis)
    measured: dict[int, float] = {}
    seen: dict[int, str] = {}  # what HAProxy said of its servers at each measurement
    counts: dict[int, int] = {}
    with SteadyLoad(url) as load:
        load.wait_for_requests(200)
        for promote, weight in enumerate((10, 50, 90), start=1):
            mapp.until(f"paused at {weight}%", paused_at(weight))
            wait_for(f"the LB gives the pods {weight}%", lb_gives(platform, "/web", "web", weight))
            try:
                shares, counts[weight] = load.measure(1000)
            except AssertionError as error:  # a failed request: what HAProxy saw of it
                raise AssertionError(f"{error}\n{haproxy_servers(platform)}") from None
            measured[weight] = shares.get(KUBERNETES, 0.0)
            seen[weight] = haproxy_servers(platform)
            print(seen[weight])
            print(
                f"  Kubernetes at {weight}%: measured {measured[weight]:.1%}"
                f" of {counts[weight]} requests"
            )
            mapp.update(promote=promote)
        mapp.until("shifted", lambda o: o["phase"] == "Shifted", timeout=120)
        wait_for(
            "the Marathon tasks gone", lambda: platform.marathon.tasks("/web") == [], timeout=60
        )
        load.wait_for_requests(300)
    summary = load.summary()
    print(f"  moved to Kubernetes: {summary}")
    assert load.failures() == [], summary
    for weight, share in measured.items():
        assert abs(share - weight / 100) <= 0.05, (measured, seen[weight])
    assert measure_shares(url, requests=200) == {KUBERNETES: 1.0}
    traffic = mapp.traffic()
    assert traffic["kubernetes"] == {"service": "web", "port": "http", "weight": 100}
    assert traffic["weights"] == {"/web": 0}
    marathon_app_now = platform.marathon.get_app("/web")
    assert marathon_app_now is not None and marathon_app_now["instances"] == 0
    assert mapp.offramp["kubernetesWeight"] == 100 and mapp.offramp["marathonWeight"] == 0
    # Marathon went to zero only once the lb showed its tasks at weight 0.
    assert not mapp.offramp.get("scaleDownUnconfirmed"), mapp.offramp
    # The analysis at 50 % judged the pods' own requests at the load balancer, twice.
    results = mapp.offramp["analysis"]
    assert [(r["metric"], r["result"]) for r in results] == [("errorRate", "Pass")] * 2, results
    read = [m for m in mapp.messages if re.search(r"error rate 0\.0% over [1-9]\d* requests", m)]
    assert read, [m for m in mapp.messages if "analysis" in m][-3:]
    print(f"  analysis at 50%: {read[-1]}")


def test_a_shift_rolled_back_at_50_percent_fails_no_request(
    platform: Platform, pod_ips: list[str]
) -> None:
    port, pod_port = free_port(), free_port()
    app = marathon_app("/shop", port)
    platform.marathon.put_app("/shop", app)
    url = f"http://127.0.0.1:{port}/"
    wait_for("Marathon's /shop served", serving(url, {"/shop"}), timeout=60)
    start_pods(platform, "shop", pod_ips[2:], pod_port)
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
    mapp = Driven.create(platform, "shop", app, steps)
    with SteadyLoad(url) as load:
        load.wait_for_requests(200)
        mapp.until("paused at 20%", paused_at(20))
        mapp.update(promote=1)
        mapp.until("paused at 50%", paused_at(50))
        wait_for("the LB gives the pods 50%", lb_gives(platform, "/shop", "shop", 50))
        shares, total = load.measure(1000)
        at_50 = shares.get(KUBERNETES, 0.0)
        servers_at_50 = haproxy_servers(platform)
        print(servers_at_50)
        print(f"  Kubernetes at 50%: measured {at_50:.1%} of {total} requests")
        mapp.update(abort=True)
        mapp.until("rolled back", lambda o: o["phase"] == "RolledBack")
        wait_for("the LB gives the pods 0%", lb_gives(platform, "/shop", "shop", 0))
        rolled_back = time.monotonic()
        load.wait_for_requests(300)
    summary = load.summary()
    print(f"  rolled back at 50%: {summary}")
    assert load.failures() == [], summary
    assert abs(at_50 - 0.5) <= 0.05, (at_50, servers_at_50)
    after = load.shares(since=rolled_back)
    assert after == {"/shop": 1.0}, after
    assert "spec.abort is set" in mapp.offramp["message"]
    assert mapp.traffic()["kubernetes"]["weight"] == 0
    marathon_app_now = platform.marathon.get_app("/shop")
    assert marathon_app_now is not None and marathon_app_now["instances"] == 2
