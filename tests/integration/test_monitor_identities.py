"""One identity per party in the monitoring app's Kubernetes mode (issue 17, points 5, 6, 8),
against the real API server and the real app.

Probes present pod-bound, audience-bound ServiceAccount tokens (a TokenRequest as the
kubelet makes for the ProbeFleet's projected volume); the app, acting as the ProbeFleet's app
account with the rights builders/probefleet.py gives it, checks them with TokenReview and
binds each probe to the node of its pod. People present their own token; SubjectAccessReview
on monitor.orchestrator.dev decides, so a RoleBinding grants controls. Controls are audited in
a file and as Events.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import yaml

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.monitor.app.auth import KubeAuth
from orchestrator_operator.monitor.app.server import AppConfig
from orchestrator_operator.monitor.report import Report, encode_report
from orchestrator_operator.operator.builders.probefleet import PROBE_AUDIENCE, fleet_owner, rbac
from testenv.kube import KubeTestEnv
from testenv.synthetic_reports import synthetic_report
from tests.fixtures.monitor import MonitorHarness, quote, wait_for

pytestmark = pytest.mark.kube

NODE_A, NODE_B = "kwok-node-0", "kwok-node-1"


def _ok(result: Any, what: str) -> str:
    assert result.returncode == 0, f"{what}: {result.stdout}{result.stderr}"
    return str(result.stdout).strip()


def _report(
    probe_id: str, hostname: str, labels: dict[str, str] | None = None, index: int = 1
) -> Report:
    base = synthetic_report(index, 4, containers=2, processes=2, connections=0)
    containers = tuple(
        msgspec.structs.replace(c, labels={**c.labels, **(labels or {})}) for c in base.containers
    )
    return msgspec.structs.replace(
        base,
        probe_id=probe_id,
        host=msgspec.structs.replace(base.host, hostname=hostname),
        containers=containers,
    )


class Cluster:
    def __init__(self, kube_env: KubeTestEnv, namespace: str, directory: Path) -> None:
        self.kube_env = kube_env
        self.namespace = namespace
        self.directory = directory
        self.owner = fleet_owner("fleet", namespace, "00000000-0000-0000-0000-0000000000e5")

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return _ok(self.kube_env.kubectl_run(*args, input=input), " ".join(args[:3]))

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def probe_token(self, pod: str) -> str:
        return self.kubectl(
            "create", "token", self.owner.child_name("probe"), "-n", self.namespace,
            "--audience", PROBE_AUDIENCE, "--bound-object-kind", "Pod",
            "--bound-object-name", pod, "--duration", "10m",
        )  # fmt: skip

    def person_token(self, account: str) -> str:
        return self.kubectl("create", "token", account, "-n", self.namespace, "--duration", "10m")

    def app_api(self) -> KubeApi:
        """A KubeApi acting as the fleet's app account (its RBAC, nothing more)."""
        path = self.kube_env.service_account_kubeconfig(
            self.owner.child_name("app"), self.namespace, self.directory / "app.kubeconfig"
        )
        saved = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = str(path)
        try:
            return KubeApi()
        finally:
            if saved is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = saved


@pytest.fixture(scope="module")
def cluster(kube_env: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    namespace = f"monitor-id-{secrets.token_hex(3)}"
    c = Cluster(kube_env, namespace, tmp_path_factory.mktemp("monitor-id"))
    c.kubectl("create", "namespace", namespace)
    objects = []
    for manifest in rbac(c.owner):
        manifest["metadata"].pop("ownerReferences", None)  # no fleet object here
        objects.append(manifest)
    probe_account = c.owner.child_name("probe")
    for pod, node in (("probe-a", NODE_A), ("probe-b", NODE_B)):
        objects.append(
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": pod, "namespace": namespace},
             "spec": {"nodeName": node, "serviceAccountName": probe_account,
                      "containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.9"}]}}
        )  # fmt: skip
    for person in ("alice", "mallory"):
        objects.append(
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": person, "namespace": namespace}}
        )  # fmt: skip
    c.apply(objects)
    try:
        yield c
    finally:
        for kind in ("clusterrole", "clusterrolebinding"):
            for component in ("probe", "app"):
                kube_env.kubectl_run(
                    "delete", kind, f"orchestrator-{component}-{namespace}-fleet",
                    "--ignore-not-found",
                )  # fmt: skip
        kube_env.kubectl_run("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def app(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorHarness]:
    api = cluster.app_api()
    auth = KubeAuth(
        cluster.namespace,
        frozenset({f"{cluster.namespace}:{cluster.owner.child_name('probe')}"}),
        api_factory=lambda: api,
        cache_ttl=0.5,  # the RoleBinding below takes effect within a test's patience
    )
    config = AppConfig(
        auth=auth,
        audit_log=tmp_path_factory.mktemp("audit") / "audit.jsonl",
        events_namespace=cluster.namespace,
        protected_namespaces=("kube-system", cluster.namespace),
        metrics_auth=True,  # as builders/probefleet.py runs it by default
    )
    h = MonitorHarness(config)
    h.app.audit._factory = lambda: api  # Events as the app account too
    h.start()
    try:
        yield h
    finally:
        h.stop()


def _post(app: MonitorHarness, token: str, report: Report) -> tuple[int, str]:
    with app.client(token) as c:
        r = c.post("/api/report", content=encode_report(report))
        return r.status_code, r.text


def test_a_probe_cannot_report_as_another_node_or_take_its_id(
    cluster: Cluster, app: MonitorHarness
) -> None:
    token_a = cluster.probe_token("probe-a")
    token_b = cluster.probe_token("probe-b")
    # its own node: accepted
    assert _post(app, token_a, _report("probe-a-1", NODE_A, index=3)) == (200, '{"ok":true}')
    # another node: refused, saying why
    status, text = _post(app, token_a, _report("probe-a-1", NODE_B, index=3))
    assert status == 403
    assert f"bound to node '{NODE_A}'" in text and f"report as '{NODE_B}'" in text
    # node B's probe may not report under node A's probe id, nor open its control channel
    status, text = _post(app, token_b, _report("probe-a-1", NODE_B, index=3))
    assert status == 403 and "belongs to another probe" in text
    with app.client(token_b) as c:
        r = c.get(
            "/api/probe/control",
            headers={"X-Probe-Id": "probe-a-1", "Connection": "Upgrade", "Upgrade": "websocket",
                     "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZQ=="},
        )  # fmt: skip
        assert r.status_code == 403 and "belongs to another probe" in r.text
    # a person's token (no probe audience) and a wrong account are no probe
    status, text = _post(app, cluster.person_token("alice"), _report("x", NODE_A))
    assert status == 401 and PROBE_AUDIENCE in text


async def _answer_controls(url: str, token: str, probe_id: str, ready: asyncio.Event) -> None:
    """A probe's control channel that stops any container it is asked to."""
    headers = {"Authorization": f"Bearer {token}", "X-Probe-Id": probe_id}
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        ready.set()
        async for msg in ws:
            req = json.loads(msg.data)
            await ws.send_str(json.dumps({"id": req["id"], "ok": True, "result": "stopped"}))


def test_controls_need_the_rolebinding_and_are_audited(
    cluster: Cluster, app: MonitorHarness
) -> None:
    token_a = cluster.probe_token("probe-a")
    report = _report("probe-a-2", NODE_A)
    protected = _report(
        "probe-a-3", NODE_A, {"io.kubernetes.pod.namespace": "kube-system"}, index=2
    )
    assert _post(app, token_a, report)[0] == 200
    assert _post(app, token_a, protected)[0] == 200
    ready = asyncio.Event()
    url = f"ws://127.0.0.1:{app.port}/api/probe/control"
    channel = asyncio.run_coroutine_threadsafe(
        _answer_controls(url, token_a, "probe-a-2", ready), app.loop
    )
    try:
        app.call(asyncio.wait_for(ready.wait(), 30))
        node = quote(f"container:{report.containers[0].id}")
        alice = cluster.person_token("alice")
        with app.client(alice) as c:
            r = c.post(f"/api/control/{node}/stop")
            assert r.status_code == 403
            assert "may not create controls.monitor.orchestrator.dev" in r.text
            assert "RoleBinding" in r.text
            assert c.get("/api/topology").status_code == 403
        cluster.apply(
            [
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "monitor-operator", "namespace": cluster.namespace},
                 "rules": [{"apiGroups": ["monitor.orchestrator.dev"],
                            "resources": ["topologies", "logs"], "verbs": ["get"]},
                           {"apiGroups": ["monitor.orchestrator.dev"],
                            "resources": ["controls"], "verbs": ["create"]}]},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "alice-monitor", "namespace": cluster.namespace},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "monitor-operator"},
                 "subjects": [{"kind": "ServiceAccount", "name": "alice",
                               "namespace": cluster.namespace}]},
            ]
        )  # fmt: skip
        with app.client(alice) as c:
            answers: list[str] = []

            def stopped() -> Any:
                x = c.post(f"/api/control/{node}/stop")
                answers.append(f"{x.status_code} {x.text}")
                return x.status_code == 200 and x

            r = wait_for("the RoleBinding to let alice stop the container", stopped)
            assert r.json()["result"] == "stopped"
            assert c.get("/api/topology").status_code == 200
            # a container of a system namespace: refused, said why
            other = quote(f"container:{protected.containers[0].id}")
            r = c.post(f"/api/control/{other}/stop")
            assert r.status_code == 403 and "'kube-system' are protected" in r.text
        with app.client(cluster.person_token("mallory")) as c:
            assert c.post(f"/api/control/{node}/stop").status_code == 403
    finally:
        channel.cancel()
    app.call(app.app.audit.drain())
    assert app.config.audit_log is not None
    entries = [json.loads(line) for line in app.config.audit_log.read_text().splitlines()]
    who_alice = f"system:serviceaccount:{cluster.namespace}:alice"
    assert {(e["who"], e["action"], e["result"]) for e in entries} >= {
        (who_alice, "stop", "ok"),
        (who_alice, "stop", "refused"),
    }
    assert all(e["time"].endswith("Z") and e["probe"] for e in entries)
    events = wait_for(
        "the audit Events",
        lambda: (
            [
                e
                for e in json.loads(
                    cluster.kubectl("get", "events", "-n", cluster.namespace, "-o", "json")
                )["items"]
                if e["reason"] == "ContainerControl"
            ]
            or None
        ),
    )
    assert any(
        who_alice in e["message"] and e["involvedObject"]["name"] == "probe-a" for e in events
    )


def test_metrics_need_a_token_allowed_get_on_the_metrics_url(
    cluster: Cluster, app: MonitorHarness
) -> None:
    """`--metrics-auth` in Kubernetes mode: no token 401; a person's token without the right
    403, naming what to grant; a scraper's ServiceAccount bound to a ClusterRole allowing get
    on the non-resource URL /metrics (as kube-prometheus grants Prometheus) 200."""
    import httpx

    role = f"monitor-metrics-{cluster.namespace}"
    assert httpx.get(f"{app.base_url}/metrics", timeout=10).status_code == 401
    with app.client(cluster.person_token("mallory")) as c:
        refused = c.get("/metrics")
    assert refused.status_code == 403
    assert "may not get /metrics" in refused.text and "nonResourceURLs" in refused.text
    assert "orchestrator_monitor_" not in refused.text
    try:
        cluster.apply(
            [
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "prometheus", "namespace": cluster.namespace}},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": role},
                 "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": role},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": role},
                 "subjects": [{"kind": "ServiceAccount", "name": "prometheus",
                               "namespace": cluster.namespace}]},
            ]
        )  # fmt: skip
        with app.client(cluster.person_token("prometheus")) as c:

            def scrape() -> httpx.Response | None:
                answer = c.get("/metrics")
                return answer if answer.status_code == 200 else None

            scraped: httpx.Response = wait_for(
                "the ClusterRoleBinding to let prometheus scrape", scrape
            )
            assert "orchestrator_monitor_reports_total" in scraped.text
            # the right is /metrics only: the app's pages stay closed to it
            assert c.get("/api/topology").status_code == 403
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            cluster.kube_env.kubectl_run("delete", kind, role, "--ignore-not-found")
