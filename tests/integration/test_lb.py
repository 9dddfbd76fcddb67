"""`orchestrator lb` with a real HAProxy (Debian's /usr/sbin/haproxy) in front of simulated
Marathon tasks that are real HTTP servers (testenv/echo_server.py), Marathon found in a real
ZooKeeper, the traffic ConfigMaps in a real Kubernetes API server.

What a user checks: requests reach the tasks; scaling up and down changes HAProxy's servers
with no reload and no failed request under a steady load; a traffic ConfigMap's weights are
the shares a client measures; TLS is terminated with the Secret's certificate; HAProxy's and
the lb's metrics are served.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrator_operator.common.kube_api import object_path
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.lb import config as cfg
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders import loadbalancer
from sim.cluster import SimCluster
from sim.procs import free_ports, wait_until
from testenv.cluster_dns import LoopbackSubnet
from testenv.kube import KubeTestEnv
from testenv.simpods import SimPodRunner
from testenv.traffic import SteadyLoad, echo_command, measure_shares
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.timeout(600)]

HAPROXY = "/usr/sbin/haproxy"
NAMESPACE = "lb-test"
CLUSTER = "demo"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Lb:
    process: subprocess.Popen[bytes]
    address: str
    http_port: int
    https_port: int
    stats_port: int
    metrics_port: int
    log_path: Path
    ca_pem: bytes

    @property
    def api(self) -> str:
        return f"http://{self.address}:{self.metrics_port}"

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def metric(self, name: str) -> float:
        for line in httpx.get(self.api + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no {name} in the lb's /metrics")

    def backend(self, name: str, seconds: int = 30) -> dict[str, Any]:
        response = httpx.get(f"{self.api}/v1/backends/{name}/stats?seconds={seconds}", timeout=5)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _certificate(address: str, host: str) -> tuple[bytes, bytes, bytes]:
    """A CA and a server certificate for `host` and `address`: (ca, crt, key) PEM."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lb test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    crt = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address(address))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), crt.public_bytes(pem), key_pem


@pytest.fixture(scope="module")
def sim(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    with SimCluster(
        _zk_ensemble_module.connect_string,
        masters=1,
        agents=2,
        marathons=2,  # the last test kills the leader
        base_dir=tmp_path_factory.mktemp("sim"),
        # The agents' host names must resolve: Marathon's HTTP health checks and the LB
        # connect to a task at its host (the agent's hostname); sim-agent-<j> does not.
        agent_flags=["--hostname=localhost"],
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def namespace(kube_env: KubeTestEnv) -> str:
    try:
        kube_env.api("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    except urllib.error.HTTPError as error:
        if error.code != 409:
            raise
    return NAMESPACE


@pytest.fixture(scope="module")
def lb(
    sim: SimCluster,
    namespace: str,
    kube_env: KubeTestEnv,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lb]:
    assert Path(HAPROXY).exists(), "HAProxy is missing: scripts/install-system-deps.sh"
    base = tmp_path_factory.mktemp("lb")
    subnet = LoopbackSubnet()
    address = subnet.address(1)
    ca, crt, key = _certificate(address, "secure.example")
    tls_dir = base / "tls"
    tls_dir.mkdir()
    (tls_dir / "tls.crt").write_bytes(crt)
    (tls_dir / "tls.key").write_bytes(key)
    http_port, https_port, stats_port, metrics_port = free_ports(4, address)
    log_path = base / "lb.log"
    env = {**os.environ, "KUBECONFIG": str(kube_env.kubeconfig), "PYTHONPATH": str(REPO)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    argv = [
        sys.executable, "-m", "orchestrator_operator", "lb",
        f"--marathon-zk=zk://{sim.zk_hosts}{sim.marathon_path}",
        f"--namespace={namespace}", f"--cluster={CLUSTER}",
        f"--run-dir={base / 'run'}", f"--bind-address={address}",
        f"--http-port={http_port}", f"--https-port={https_port}", f"--tls-dir={tls_dir}",
        f"--stats-port={stats_port}", f"--metrics-address={address}",
        f"--metrics-port={metrics_port}", "--resync-seconds=10", f"--haproxy-binary={HAPROXY}",
    ]  # fmt: skip
    with log_path.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    lb = Lb(process, address, http_port, https_port, stats_port, metrics_port, log_path, ca)
    try:
        wait_until(
            lambda: httpx.get(lb.api + "/readyz", timeout=2).status_code == 200,
            60,
            f"the lb ready\n{lb.log_tail() if log_path.exists() else ''}",
        )
        yield lb
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        subnet.release()


def _app(app_id: str, instances: int, port: int, text: str, **labels: str) -> dict[str, Any]:
    return {
        "id": app_id,
        "cmd": echo_command(text),
        "instances": instances,
        "cpus": 0.05,
        "mem": 32,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "labels": {"HAPROXY_0_PORT": str(port), **labels},
        "healthChecks": [
            {
                "protocol": "HTTP",
                "path": "/health",
                "portIndex": 0,
                "gracePeriodSeconds": 30,
                "intervalSeconds": 1,
                "timeoutSeconds": 2,
                "maxConsecutiveFailures": 3,
            }
        ],
        "taskKillGracePeriodSeconds": 2,
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    }


def _put(sim: SimCluster, app: dict[str, Any]) -> None:
    response = httpx.put(f"{sim.marathon_url()}/v2/apps{app['id']}", json=app, timeout=10)
    assert response.status_code in (200, 201), response.text


def _scale(sim: SimCluster, app_id: str, instances: int) -> None:
    response = httpx.put(
        f"{sim.marathon_url()}/v2/apps{app_id}", json={"instances": instances}, timeout=10
    )
    assert response.status_code == 200, response.text


def _healthy_tasks(sim: SimCluster, app_id: str) -> set[str]:
    app = httpx.get(f"{sim.marathon_url()}/v2/apps{app_id}", timeout=5).json()["app"]
    return {
        t["id"]
        for t in app.get("tasks") or []
        if t["state"] == "TASK_RUNNING"
        and t.get("healthCheckResults")
        and all(r.get("alive") for r in t["healthCheckResults"])
    }


def _ready_servers(lb: Lb, backend: str) -> set[str]:
    try:
        return {s["task"] for s in lb.backend(backend)["servers"] if s["state"] == "ready"}
    except AssertionError:
        return set()


def _wait_served(lb: Lb, sim: SimCluster, app_id: str, backend: str, count: int) -> set[str]:
    """Until Marathon has `count` healthy tasks and the LB serves exactly those."""

    def served() -> bool:
        healthy = _healthy_tasks(sim, app_id)
        return len(healthy) == count and _ready_servers(lb, backend) == healthy

    wait_until(served, 120, f"{count} healthy tasks of {app_id} served\n{lb.log_tail()}")
    return _ready_servers(lb, backend)


def test_scaling_changes_the_servers_without_a_reload_or_a_failed_request(
    lb: Lb, sim: SimCluster
) -> None:
    _put(sim, _app("/web", 2, 10001, "$MESOS_TASK_ID"))
    first = _wait_served(lb, sim, "/web", "web_10001", 2)
    url = f"http://{lb.address}:10001/"
    # Traffic reaches the tasks: each answers with its own Mesos task id.
    assert set(measure_shares(url, 200)) == first
    reloads = lb.metric("orchestrator_lb_reloads_total")
    commands = lb.metric("orchestrator_lb_runtime_commands_total")

    with SteadyLoad(url, clients=4) as load:
        load.wait_for_requests(200)
        _scale(sim, "/web", 5)
        _wait_served(lb, sim, "/web", "web_10001", 5)
        load.wait_for_requests(300)
        # Scaling down kills tasks: TASK_KILLING drains them, SIGTERM closes their listeners.
        _scale(sim, "/web", 1)
        last = _wait_served(lb, sim, "/web", "web_10001", 1)
        sim.wait_for_tasks("/web", 1)
        load.wait_for_requests(300)

    assert load.failures() == [], load.summary()
    answered = set(load.shares())
    assert last <= answered and len(answered) == 5, load.summary()
    # Servers changed through the runtime API only: no new config, no reload.
    assert lb.metric("orchestrator_lb_reloads_total") == reloads
    assert lb.metric("orchestrator_lb_runtime_commands_total") > commands
    print(f"scale 2 -> 5 -> 1 under load: {load.summary()}")


def _traffic_configmap(kube_env: KubeTestEnv, weights: dict[str, int]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "shop-traffic",
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/managed-by": "orchestrator",
                "orchestrator.dev/traffic-for": CLUSTER,
            },
        },
        "data": {"weights.json": json.dumps({"group": "shop", "weights": weights})},
    }
    kube_env.api_patch_apply(f"/api/v1/namespaces/{NAMESPACE}/configmaps/shop-traffic", body)


def test_the_weights_of_a_traffic_configmap_are_the_measured_shares(
    lb: Lb, sim: SimCluster, kube_env: KubeTestEnv
) -> None:
    group = {"HAPROXY_DEPLOYMENT_GROUP": "shop"}
    _put(sim, _app("/shop", 3, 10002, "$MARATHON_APP_ID", **group))
    _put(sim, _app("/shop-canary", 1, 10002, "$MARATHON_APP_ID", **group))
    url = f"http://{lb.address}:10002/"

    def servers() -> int:
        return len(_ready_servers(lb, "shop_10002"))

    wait_until(lambda: servers() == 4, 120, f"4 servers in shop_10002\n{lb.log_tail()}")
    # No ConfigMap: every server the same, so the canary's one of four gets a quarter.
    even = measure_shares(url, 1000)
    assert abs(even["/shop-canary"] - 0.25) <= 0.05, even
    reloads = lb.metric("orchestrator_lb_reloads_total")

    for canary in (10, 50, 90):
        _traffic_configmap(kube_env, {"/shop": 100 - canary, "/shop-canary": canary})

        def weighted(canary: int = canary) -> bool:
            weights = {s["app"]: s["weight"] for s in lb.backend("shop_10002")["servers"]}
            stable, new = weights["/shop"], weights["/shop-canary"]
            return bool(abs(new / (3 * stable + new) - canary / 100) < 0.01)

        wait_until(weighted, 60, f"weights for {canary}%\n{lb.log_tail()}")
        shares = measure_shares(url, 1000)
        print(f"canary weight {canary}%: measured {shares} over 1000 requests")
        assert abs(shares.get("/shop-canary", 0.0) - canary / 100) <= 0.05, shares
    assert lb.metric("orchestrator_lb_reloads_total") == reloads

    # The analysis' figures: requests and 5xx per app over the window (the 4,000 requests
    # above, as HAProxy logged them), with latencies.
    stats = lb.backend("shop_10002", seconds=600)
    assert stats["requests"] >= 3000
    assert stats["errors5xx"] == 0
    assert stats["apps"]["/shop-canary"]["requests"] > 0
    assert stats["latencyP99Ms"] is not None


def test_tls_is_terminated_with_the_secret_and_routed_by_host(lb: Lb, sim: SimCluster) -> None:
    _put(sim, _app("/secure", 1, 10003, "secure", HAPROXY_0_VHOST="secure.example"))
    _wait_served(lb, sim, "/secure", "secure_10003", 1)
    context = ssl.create_default_context(cadata=lb.ca_pem.decode())
    url = f"https://{lb.address}:{lb.https_port}/"

    def answered() -> bool:
        with httpx.Client(verify=context, timeout=5) as client:
            response = client.get(url, headers={"Host": "secure.example"})
        return bool(response.status_code == 200 and response.text.strip() == "secure")

    wait_until(answered, 60, f"an HTTPS answer\n{lb.log_tail()}")
    # The same host over plain HTTP on the vhost frontend; an unknown host gets no backend.
    plain = httpx.get(
        f"http://{lb.address}:{lb.http_port}/", headers={"Host": "secure.example"}, timeout=5
    )
    assert plain.text.strip() == "secure"
    unknown = httpx.get(
        f"http://{lb.address}:{lb.http_port}/", headers={"Host": "other.example"}, timeout=5
    )
    assert unknown.status_code == 503
    # A client that does not trust the CA is refused by its own verification.
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, headers={"Host": "secure.example"}, timeout=5)


def test_haproxy_and_the_lb_serve_their_metrics(lb: Lb, sim: SimCluster) -> None:
    _put(sim, _app("/metered", 1, 10004, "metered"))
    _wait_served(lb, sim, "/metered", "metered_10004", 1)
    measure_shares(f"http://{lb.address}:10004/", 20)
    haproxy = httpx.get(f"http://{lb.address}:{lb.stats_port}/metrics", timeout=5)
    assert haproxy.status_code == 200
    assert 'haproxy_backend_http_responses_total{proxy="metered_10004",code="2xx"}' in haproxy.text
    csv = httpx.get(f"http://{lb.address}:{lb.stats_port}/stats;csv", timeout=5).text
    assert "metered_10004,BACKEND" in csv
    own = httpx.get(lb.api + "/metrics", timeout=5).text
    for name in (
        "orchestrator_lb_reloads_total",
        "orchestrator_lb_marathon_events_total",
        "orchestrator_lb_marathon_connected 1.0",
        'orchestrator_lb_servers{state="ready"}',
    ):
        assert name in own, name
    health = httpx.get(lb.api + "/healthz", timeout=5).json()
    assert health["status"] == "ok" and health["synced"] is True
    assert health["backends"] >= 1
    listed = httpx.get(lb.api + "/v1/backends", timeout=5).json()["backends"]
    assert {"name": "metered_10004", "port": 10004, "apps": ["/metered"], "vhosts": []} in listed
    assert httpx.get(lb.api + "/v1/backends/nope/stats", timeout=5).status_code == 404
    assert (
        httpx.get(lb.api + "/v1/backends/metered_10004/stats?seconds=x", timeout=5).status_code
        == 400
    )


def test_the_operators_lb_pod_runs_as_real_processes_under_its_own_role(
    sim: SimCluster, namespace: str, kube_env: KubeTestEnv, tmp_path: Path
) -> None:
    """The builder's objects on a real API server (the pod placed by the scheduler on a
    KWOK node), run by SimPodRunner as `orchestrator lb` + Debian's HAProxy on the pod's own
    address, acting as the pod's ServiceAccount: it serves an app and follows a ConfigMap
    through its Role (get/list/watch configmaps)."""
    spec = MesosClusterSpec.model_validate(
        {
            "zookeeper": {"external": {"connectString": sim.zk_hosts}},
            "marathon": {"zkPath": sim.marathon_path},
            "loadBalancer": {"enabled": True},
        }
    )
    owner = Owner(name="podlb", namespace=namespace, uid="00000000-0000-0000-0000-000000000001")
    for manifest in loadbalancer.build(owner, spec):
        manifest["metadata"].pop("ownerReferences", None)  # no such owner here: GC would delete
        path = object_path(
            manifest["apiVersion"], manifest["kind"], namespace, manifest["metadata"]["name"]
        )
        kube_env.api_patch_apply(path, manifest)
    _put(sim, _app("/podlb", 2, 10005, "$MARATHON_APP_ID"))
    with SimPodRunner(kube_env, namespace, base_dir=tmp_path / "simpods") as pods:
        pods.wait_for(lambda: len(pods.lb_addresses()) == 1, 120, "the LB pod's processes")
        (address,) = pods.lb_addresses().values()

        def served() -> bool:
            body = httpx.get(f"http://{address}:9091/v1/backends/podlb_10005/stats", timeout=3)
            ready = [s for s in body.json()["servers"] if s["state"] == "ready"]
            return body.status_code == 200 and len(ready) == 2

        pods.wait_for(served, 120, "the app served by the LB pod")
        assert measure_shares(f"http://{address}:10005/", 100) == {"/podlb": 1.0}
        assert httpx.get(f"http://{address}:9090/metrics", timeout=5).status_code == 200
        # The Role lets it list and watch ConfigMaps: a bad one is named in /healthz.
        bad = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "podlb-traffic",
                "namespace": namespace,
                "labels": {"orchestrator.dev/traffic-for": "podlb"},
            },
            "data": {"weights.json": "{}"},
        }
        kube_env.api_patch_apply(f"/api/v1/namespaces/{namespace}/configmaps/podlb-traffic", bad)

        def named() -> bool:
            health = httpx.get(f"http://{address}:9091/healthz", timeout=3).json()
            return any("podlb-traffic" in p for p in health["problems"])

        pods.wait_for(named, 60, "the bad ConfigMap named in /healthz")


def test_haproxy_accepts_every_config_the_builder_writes_without_a_warning(
    tmp_path: Path,
) -> None:
    """`haproxy -c` on a config with every feature: vhosts (exact and suffix), TLS, a
    deployment group with weights, a draining task, empty slots, the request log."""
    _, crt, key = _certificate("127.0.0.1", "shop.example")
    (tmp_path / "tls.pem").write_bytes(crt + key)
    task = {"host": "127.0.0.1", "state": "TASK_RUNNING"}
    apps: list[dict[str, Any]] = [
        {
            "id": "/shop",
            "labels": {"HAPROXY_0_PORT": "10001", "HAPROXY_DEPLOYMENT_GROUP": "shop",
                       "HAPROXY_0_VHOST": "shop.example,*.shop.example"},
            "tasks": [{**task, "id": "s.1", "ports": [31001]},
                      {**task, "id": "s.2", "ports": [31002], "state": "TASK_KILLING"}],
        },
        {
            "id": "/shop-canary",
            "labels": {"HAPROXY_0_PORT": "10001", "HAPROXY_DEPLOYMENT_GROUP": "shop"},
            "tasks": [{**task, "id": "c.1", "ports": [31003]}],
        },
        {"id": "/api", "portDefinitions": [{"port": 10002}], "tasks": []},
    ]  # fmt: skip
    plan = cfg.build_plan(apps, {"shop": {"/shop": 80, "/shop-canary": 20}}, ["external"])
    assert not plan.problems
    _, slots = cfg.assign_slots(plan, cfg.Assignment(), None)
    options = cfg.Options(
        bind_address="127.0.0.1", http_port=18080, https_port=18443,
        tls_certificate=str(tmp_path / "tls.pem"), stats_port=19090,
        admin_socket=str(tmp_path / "admin.sock"), log_target="127.0.0.1:5140",
    )  # fmt: skip
    (tmp_path / "haproxy.cfg").write_text(cfg.render(plan, slots, options))
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "WARNING" not in checked.stderr and "ALERT" not in checked.stderr, checked.stderr


def test_the_lb_follows_the_new_marathon_leader_and_keeps_serving(lb: Lb, sim: SimCluster) -> None:
    """Marathon's leader dies: HAProxy keeps serving the tasks (they outlive Marathon), the
    lb finds the new leader in ZooKeeper's leader latch and follows its changes. (Last: it
    leaves one Marathon.)"""
    _put(sim, _app("/failover", 1, 10006, "$MARATHON_APP_ID"))
    _wait_served(lb, sim, "/failover", "failover_10006", 1)
    old = sim.marathon_index()
    assert old is not None
    with SteadyLoad(f"http://{lb.address}:10006/", clients=2) as load:
        load.wait_for_requests(100)
        sim.kill_marathon(old)
        wait_until(lambda: sim.marathon_index() not in (None, old), 60, "a new Marathon leader")
        sim.wait_for_marathon()
        _scale(sim, "/failover", 2)
        _wait_served(lb, sim, "/failover", "failover_10006", 2)
        load.wait_for_requests(100)
    assert load.failures() == [], f"{load.summary()}\n{lb.log_tail()}"
    print(f"Marathon leader failover under load: {load.summary()}")


def test_a_marathon_that_is_down_makes_the_lb_unready_not_dead(tmp_path: Path) -> None:
    """No Marathon at the given URL: /healthz stays 200 (restarting the lb would not bring
    Marathon back), /readyz is 503, the error is counted; a bad flag is refused in words."""
    metrics_port, stats_port, dead = free_ports(3)
    run_dir = Path(tempfile.mkdtemp(prefix="lb-", dir="/tmp"))
    argv = [
        sys.executable, "-m", "orchestrator_operator", "lb", f"--marathon=http://127.0.0.1:{dead}",
        f"--run-dir={run_dir}", "--bind-address=127.0.0.1", "--http-port=0", "--https-port=0",
        f"--stats-port={stats_port}", "--metrics-address=127.0.0.1",
        f"--metrics-port={metrics_port}", f"--haproxy-binary={HAPROXY}",
    ]  # fmt: skip
    log_path = tmp_path / "lb.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    api = f"http://127.0.0.1:{metrics_port}"
    try:

        def counted() -> bool:
            text = httpx.get(api + "/metrics", timeout=2).text
            return 'orchestrator_lb_errors_total{source="marathon"}' in text

        wait_until(counted, 60, f"a Marathon error counted\n{log_path.read_text()}")
        assert httpx.get(api + "/healthz", timeout=2).status_code == 200
        assert httpx.get(api + "/readyz", timeout=2).status_code == 503
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(20)
        shutil.rmtree(run_dir, ignore_errors=True)
    refused = subprocess.run(
        [sys.executable, "-m", "orchestrator_operator", "lb", "--marathon=http://x",
         "--namespace=ns"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "give --namespace and --cluster together" in refused.stderr
