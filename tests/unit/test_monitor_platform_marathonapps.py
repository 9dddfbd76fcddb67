"""monitor.platform: the MarathonApps route (`/api/platform/marathonapps` and the detail route):
the summary's shape (instances by state with the autoscaler's desired count, the deployment,
the rollout's weights and analysis), an app with no status, the token check, 404, 503, and
plain env values hidden from the detail's spec."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.monitor.app.platform import PlatformUnavailable, marathonapp_summary
from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp

TOKEN = "t0k"
SHOP: Manifest = {
    "apiVersion": "orchestrator.dev/v1alpha1",
    "kind": "MarathonApp",
    "metadata": {"name": "shop", "namespace": "prod", "generation": 4},
    "spec": {
        "cluster": "demo",
        "app": {
            "id": "/shop",
            "instances": 4,
            "env": {
                "DB_PASSWORD": "hunter2",
                "API_TOKEN": {"secretKeyRef": {"name": "shop-env", "key": "token"}},
            },
        },
        "strategy": {"type": "canary"},
    },
    "status": {
        "observedGeneration": 4,
        "marathon": {
            "appId": "/shop",
            "version": "2026-12-03T20:00:00.000Z",
            "instances": 4,
            "staged": 1,
            "running": 4,
            "healthy": 3,
            "unhealthy": 1,
            "relaunches": 2,
            "flapping": False,
            "launchDelaySeconds": 1.15,
            "deployment": {
                "id": "d-1",
                "currentStep": 1,
                "totalSteps": 2,
                "steps": ["StartApplication /shop-canary", "ScaleApplication /shop-canary"],
            },
        },
        "rollout": {
            "strategy": "canary",
            "phase": "Analyzing",
            "step": 2,
            "weights": {"/shop": 75, "/shop-canary": 25},
            "stableVersion": "v1",
            "canaryVersion": "v2",
            "message": "step 2: analysing at 25%",
            "stage": "internal",
            "analysis": [
                {"step": 1, "metric": "errorRate", "value": 0.0, "limit": 0.01, "result": "Pass"}
            ],
        },
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "CanaryStep",
                "message": "25% on the canary",
                "lastTransitionTime": "2026-12-03T20:00:00Z",
            }
        ],
    },
}
WORKER: Manifest = {
    "metadata": {"name": "worker", "namespace": "batch"},
    "spec": {
        "cluster": "demo",
        "app": {"id": "/batch/worker", "instances": 2},
        "autoscaling": {"minInstances": 2, "maxInstances": 10, "target": {"cpuUtilization": 0.6}},
    },
    "status": {
        "autoscaling": {
            "desiredInstances": 6,
            "lastScaleAt": "2026-12-03T20:10:00Z",
            "reason": "92% against a target of 60%: scaled up from 4 to 6",
            "metric": {"name": "cpuUtilization", "value": 0.92, "target": 0.6},
        }
    },
}
BARE: Manifest = {"metadata": {"name": "new", "namespace": "prod"}, "spec": {"app": {"id": "/n"}}}


class FakeReader:
    def __init__(self) -> None:
        self.objects: dict[str, list[Manifest]] = {"marathonapps": [SHOP, WORKER, BARE]}
        self.fail: PlatformUnavailable | None = None

    async def list(self, kind: str) -> list[Manifest]:
        if self.fail:
            raise self.fail
        return self.objects.get(kind, [])

    async def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        if self.fail:
            raise self.fail
        for o in self.objects.get(kind, []):
            if o["metadata"]["name"] == name and o["metadata"]["namespace"] == namespace:
                return o
        return None


def _app(reader: FakeReader) -> web.Application:
    monitor = MonitorApp(AppConfig(token=TOKEN, read_only_token="ro"), platform_reader=reader)
    return monitor.web_app()


def test_summary_of_a_canary_in_progress() -> None:
    s = marathonapp_summary(SHOP)
    assert (s["name"], s["namespace"], s["cluster"], s["appId"]) == (
        "shop",
        "prod",
        "demo",
        "/shop",
    )
    assert s["strategy"] == "canary" and s["observedGeneration"] == 4
    assert s["instances"] == {"desired": 4, "staged": 1, "running": 4, "healthy": 3, "unhealthy": 1}
    assert s["relaunches"] == 2 and s["flapping"] is False and s["launchDelaySeconds"] == 1.15
    assert s["deployment"] == SHOP["status"]["marathon"]["deployment"]
    rollout = s["rollout"]
    assert rollout["phase"] == "Analyzing" and rollout["step"] == 2
    assert rollout["weights"] == {"/shop": 75, "/shop-canary": 25}
    assert rollout["analysis"] == [
        {"step": 1, "metric": "errorRate", "value": 0.0, "limit": 0.01, "result": "Pass"}
    ]
    assert "stage" not in rollout  # the rollout's bookkeeping stays in the raw status
    assert s["autoscaling"] is None
    assert s["conditions"][0]["reason"] == "CanaryStep"
    assert "hunter2" not in str(s)


def test_summary_desired_is_the_autoscalers_decision_when_autoscaling_is_on() -> None:
    s = marathonapp_summary(WORKER)
    assert s["instances"]["desired"] == 6
    assert s["autoscaling"]["reason"].startswith("92% against a target of 60%")
    assert s["autoscaling"]["metric"] == {"name": "cpuUtilization", "value": 0.92, "target": 0.6}
    # autoscaling switched off again: spec.app.instances, the stale decision not shown
    off: Manifest = {**WORKER, "spec": {**WORKER["spec"], "autoscaling": None}}
    s = marathonapp_summary(off)
    assert s["instances"]["desired"] == 2 and s["autoscaling"] is None


def test_summary_of_an_app_the_operator_has_not_seen() -> None:
    s = marathonapp_summary(BARE)
    assert s["appId"] == "/n" and s["strategy"] == "rolling"
    assert s["instances"] == {"desired": 1, "staged": 0, "running": 0, "healthy": 0, "unhealthy": 0}
    assert s["deployment"] is None and s["rollout"] is None and s["conditions"] == []
    assert s["drift"] == {"detected": False, "fields": [], "lastRevertedAt": None}


def test_summary_survives_malformed_status() -> None:
    odd: Manifest = {
        "metadata": {"name": "odd", "namespace": "x"},
        "spec": {"app": "not a mapping"},
        "status": {
            "marathon": {"running": "three", "deployment": "nope"},
            "rollout": {"weights": {"/a": "x"}, "analysis": ["bad", {"value": True}]},
            "autoscaling": {"metric": "cpu"},
            "drift": {"fields": "replicas"},
        },
    }
    s = marathonapp_summary(odd)
    assert s["instances"]["running"] == 0 and s["deployment"] is None
    assert s["rollout"]["weights"] == {"/a": 0}
    assert [a["value"] for a in s["rollout"]["analysis"]] == [None, None]
    assert s["drift"]["fields"] == []


async def _routes() -> None:
    reader = FakeReader()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(_app(reader))) as client:
        assert (await client.get("/api/platform/marathonapps")).status == 401
        assert (await client.get("/api/platform/marathonapps/prod/shop")).status == 401
        r = await client.get("/api/platform/marathonapps", headers={"Authorization": "Bearer ro"})
        assert r.status == 200
        body = await r.json()
        assert body["kind"] == "MarathonApp"
        assert [(i["namespace"], i["name"]) for i in body["items"]] == [
            ("batch", "worker"),
            ("prod", "new"),
            ("prod", "shop"),
        ]
        assert "hunter2" not in await r.text()

        r = await client.get("/api/platform/marathonapps/prod/shop", headers=auth)
        one = await r.json()
        assert one["kind"] == "MarathonApp" and one["rollout"]["weights"]["/shop-canary"] == 25
        assert one["status"]["rollout"]["stage"] == "internal"
        # plain env values hidden, Secret references kept
        assert one["spec"]["app"]["env"] == {
            "DB_PASSWORD": "(hidden)",
            "API_TOKEN": {"secretKeyRef": {"name": "shop-env", "key": "token"}},
        }
        assert "hunter2" not in await r.text()
        r = await client.get("/api/platform/marathonapps/prod/nope", headers=auth)
        assert r.status == 404 and "no MarathonApp prod/nope" in (await r.json())["error"]

        reader.fail = PlatformUnavailable("forbidden", "the Kubernetes API refused")
        for path in ("marathonapps", "marathonapps/prod/shop"):
            r = await client.get(f"/api/platform/{path}", headers=auth)
            assert r.status == 503
            assert (await r.json())["reason"] == "forbidden"


def test_routes_auth_404_503_and_hidden_env() -> None:
    asyncio.run(_routes())
