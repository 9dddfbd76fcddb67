"""Every program's HTTP endpoints: /healthz (liveness), /readyz (readiness), /metrics.

One aiohttp application for all of them. An asyncio program (the operator, the sync
controller) runs it on its own event loop with `start_server`; a threaded program (the sync
engine's `zk-sync run`) runs it on a loop of its own in a background thread with
`BackgroundHealthServer`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    generate_latest,
)

# (healthy, details for the JSON body); the default: alive whenever it answers.
HealthCheck = Callable[[], tuple[bool, dict[str, object]]]

READY = Gauge(
    "orchestrator_operator_ready",
    "1 once the process is ready: the operator has started and found its CRDs; the sync"
    " controller has listed ZkMigrations recently.",
)


class Readiness:
    """Whether the process is ready; mirrored in the `orchestrator_operator_ready` gauge."""

    def __init__(self) -> None:
        self.ready = False
        READY.set(0)

    def set(self, ready: bool) -> None:
        self.ready = ready
        READY.set(1 if ready else 0)


def _alive() -> tuple[bool, dict[str, object]]:
    return True, {}


def build_app(
    ready: Callable[[], bool],
    health: HealthCheck = _alive,
    registry: CollectorRegistry = REGISTRY,
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        # Answering at all proves the event loop that serves it is not stuck.
        healthy, detail = health()
        body = {"status": "ok" if healthy else "unhealthy", **detail}
        return web.json_response(body, status=200 if healthy else 503)

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "starting"}, status=503)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def start_server(readiness: Readiness, host: str, port: int) -> web.AppRunner:
    """Serve on the running event loop; `runner.cleanup()` stops it."""
    runner = web.AppRunner(build_app(lambda: readiness.ready), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class BackgroundHealthServer:
    """The same endpoints for a program without an event loop: `registry`'s metrics and
    `health` as /healthz (also /readyz), on a daemon thread. Port 0 picks a free port
    (`port` tells which once started); `start` raises OSError when it cannot bind."""

    def __init__(
        self, registry: CollectorRegistry, health: HealthCheck, port: int, host: str = "0.0.0.0"
    ) -> None:
        self._app = build_app(lambda: health()[0], health, registry)
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="health-server", daemon=True
        )

    @property
    def port(self) -> int:
        assert self._runner is not None, "not started"
        address = self._runner.addresses[0]
        return int(address[1])

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self._runner = future.result(timeout=30)

    async def _serve(self) -> web.AppRunner:
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError:
            await runner.cleanup()
            raise
        return runner

    def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
