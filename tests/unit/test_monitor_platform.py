"""monitor.platform: JSON shapes of the platform routes (fake reader), the token check, 503s,
and KubePlatformReader's cache and error mapping (fake KubeApi)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator_operator.common.kube_api import ApiError
from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.monitor.app.platform import (
    KubePlatformReader,
    ListingKubeApi,
    PlatformUnavailable,
)
from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp

TOKEN = "t0k"
CLUSTER: Manifest = {
    "apiVersion": "orchestrator.dev/v1alpha1",
    "kind": "MesosCluster",
    "metadata": {"name": "demo", "namespace": "prod", "generation": 2},
    "spec": {"masters": {"replicas": 3}},
    "status": {
        "phase": "Degraded",
        "observedGeneration": 2,
        "leadingMaster": "demo-master-1.demo-master:5050",
        "zookeeper": {"ready": 3, "desired": 3},
        "masters": {"ready": 2, "desired": 3},
        "agents": {"ready": 3, "desired": 3},
        "mesos": {"agentsActive": 3, "frameworksActive": 1, "tasksRunning": 7},
        "maintenance": [{"node": "node-2", "state": "Draining", "tasks": 4}],
        "conditions": [
            {
                "type": "MastersReady",
                "status": "False",
                "reason": "NotEnoughReady",
                "message": "2/3 masters ready",
                "lastTransitionTime": "2026-11-27T10:00:00Z",
            }
        ],
    },
}
MIGRATION: Manifest = {
    "metadata": {"name": "move", "namespace": "prod"},
    "spec": {"clusterRef": "demo"},
    "status": {
        "phase": "Running",
        "currentPhase": 2,
        "phases": [
            {
                "number": 1,
                "name": "SyncTarget",
                "state": "Succeeded",
                "startedAt": "2026-11-27T10:00:00Z",
                "finishedAt": "2026-11-27T10:05:00Z",
            },
            {"number": 2, "name": "MastersOnTarget", "state": "Running"},
        ],
        "sync": {"lagP99Seconds": 0.036, "digestsEqual": False, "differences": 2, "conflicts": 1},
    },
}


class FakeReader:
    def __init__(self) -> None:
        self.objects: dict[str, list[Manifest]] = {
            "mesosclusters": [CLUSTER, {"metadata": {"name": "bare", "namespace": "a"}}],
            "zkmigrations": [MIGRATION],
        }
        self.fail: PlatformUnavailable | None = None

    async def list(self, kind: str) -> list[Manifest]:
        if self.fail:
            raise self.fail
        return self.objects[kind]

    async def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        if self.fail:
            raise self.fail
        for o in self.objects[kind]:
            if o["metadata"]["name"] == name and o["metadata"]["namespace"] == namespace:
                return o
        return None


def _app(reader: FakeReader) -> web.Application:
    monitor = MonitorApp(AppConfig(token=TOKEN, read_only_token="ro"), platform_reader=reader)
    app = monitor.web_app()
    return app


async def _shapes() -> None:
    reader = FakeReader()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(_app(reader))) as client:
        assert (await client.get("/api/platform/mesosclusters")).status == 401
        bad = {"Authorization": "Bearer bad"}
        assert (await client.get("/api/platform/zkmigrations", headers=bad)).status == 401
        assert (await client.get("/api/platform/mesosclusters/prod/demo")).status == 401
        ro = {"Authorization": "Bearer ro"}
        r = await client.get("/api/platform/mesosclusters", headers=ro)  # the read-only token
        assert r.status == 200
        body = await r.json()
        assert body["kind"] == "MesosCluster"
        assert [i["name"] for i in body["items"]] == ["bare", "demo"]  # by namespace, name
        bare, demo = body["items"]
        assert bare["phase"] is None and bare["components"] == {} and bare["conditions"] == []
        assert demo["phase"] == "Degraded"
        assert demo["leadingMaster"] == "demo-master-1.demo-master:5050"
        assert demo["components"]["masters"] == {"ready": 2, "desired": 3}
        assert "marathon" not in demo["components"]
        assert demo["mesos"]["agentsActive"] == 3
        assert demo["maintenance"] == [{"node": "node-2", "state": "Draining", "tasks": 4}]
        assert demo["conditions"][0]["reason"] == "NotEnoughReady"
        assert demo["conditions"][0]["lastTransitionTime"] == "2026-11-27T10:00:00Z"

        r = await client.get("/api/platform/zkmigrations", headers=auth)
        m = (await r.json())["items"][0]
        assert m["phase"] == "Running" and m["currentPhase"] == 2 and m["clusterRef"] == "demo"
        assert [p["number"] for p in m["phases"]] == [1, 2, 3, 4, 5, 6]
        assert m["phases"][0]["state"] == "Succeeded"
        assert m["phases"][0]["finishedAt"] == "2026-11-27T10:05:00Z"
        assert m["phases"][1]["state"] == "Running"
        assert m["phases"][5] == {
            "number": 6,
            "name": "RetireSource",
            "state": "Pending",
            "startedAt": None,
            "finishedAt": None,
            "message": "",
        }
        assert m["sync"]["lagP99Seconds"] == 0.036 and m["sync"]["conflicts"] == 1
        assert m["sync"]["digestsEqual"] is False and m["sync"]["differences"] == 2

        r = await client.get("/api/platform/mesosclusters/prod/demo", headers=auth)
        one = await r.json()
        assert one["kind"] == "MesosCluster" and one["spec"]["masters"]["replicas"] == 3
        assert one["status"]["phase"] == "Degraded" and one["leadingMaster"]
        r = await client.get("/api/platform/zkmigrations/prod/move", headers=auth)
        assert (await r.json())["phases"][0]["name"] == "SyncTarget"
        r = await client.get("/api/platform/mesosclusters/prod/nope", headers=auth)
        assert r.status == 404 and "error" in await r.json()
        r = await client.get("/api/platform/pods/prod/demo", headers=auth)
        assert r.status == 404

        reader.fail = PlatformUnavailable("forbidden", "the Kubernetes API refused")
        for path in ("mesosclusters", "zkmigrations", "mesosclusters/prod/demo"):
            r = await client.get(f"/api/platform/{path}", headers=auth)
            assert r.status == 503
            assert await r.json() == {"error": "the Kubernetes API refused", "reason": "forbidden"}


def test_routes_json_shapes_auth_and_errors() -> None:
    asyncio.run(_shapes())


class FakeKubeApi(ListingKubeApi):
    def __init__(self, error: Exception | None = None) -> None:  # no credentials loaded
        self.calls = 0
        self.error = error

    def list_all(self, api_version: str, kind: str) -> list[Manifest]:
        self.calls += 1
        if self.error:
            raise self.error
        return [{"metadata": {"name": kind, "namespace": api_version}}]

    def get(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        metadata_only: bool = False,
    ) -> Any:
        self.calls += 1
        return None


async def _reader_cache() -> None:
    api = FakeKubeApi()
    reader = KubePlatformReader(lambda: api, ttl=0.3)
    results = await asyncio.gather(*(reader.list("mesosclusters") for _ in range(5)))
    assert results[0][0]["metadata"]["name"] == "MesosCluster"
    assert api.calls == 1  # concurrent and repeated reads share one request within the ttl
    await reader.list("zkmigrations")
    assert api.calls == 2
    await asyncio.sleep(0.35)
    await reader.list("mesosclusters")
    assert api.calls == 3
    assert await reader.get("mesosclusters", "x", "y") is None


async def _reader_errors() -> None:
    cases: list[tuple[Exception, str]] = [
        (ApiError(403, "forbidden"), "forbidden"),
        (ApiError(401, "no"), "forbidden"),
        (ApiError(404, "no such resource"), "not_installed"),
        (ApiError(500, "boom"), "api_error"),
        (httpx.ConnectError("refused"), "unreachable"),
    ]
    for error, reason in cases:
        reader = KubePlatformReader(lambda e=error: FakeKubeApi(e), ttl=0.0)  # type: ignore[misc]
        try:
            await reader.list("mesosclusters")
        except PlatformUnavailable as failure:
            assert failure.reason == reason, (error, failure.reason)
        else:
            raise AssertionError(f"{error!r} did not fail")

    def no_config() -> ListingKubeApi:
        raise RuntimeError("no kubeconfig")

    reader = KubePlatformReader(no_config)
    try:
        await reader.list("zkmigrations")
    except PlatformUnavailable as failure:
        # the user is told it is unreachable; the exception's own text stays in the log
        assert failure.reason == "unreachable" and "no kubeconfig" not in str(failure)
    else:
        raise AssertionError("no failure without credentials")


def test_reader_caches_and_maps_errors() -> None:
    asyncio.run(_reader_cache())
    asyncio.run(_reader_errors())
