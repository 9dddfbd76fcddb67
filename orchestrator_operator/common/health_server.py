"""The operator's HTTP endpoints: /healthz (liveness), /readyz (readiness), /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orchestrator_operator.operator.metrics import READY


class Readiness:
    """Whether the operator has started and found its CRDs; mirrored in a gauge."""

    def __init__(self) -> None:
        self.ready = False
        READY.set(0)

    def set(self, ready: bool) -> None:
        self.ready = ready
        READY.set(1 if ready else 0)


def build_app(readiness: Readiness) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        # Answering at all proves the event loop, which runs every handler, is not stuck.
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if readiness.ready:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "starting"}, status=503)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def start_server(readiness: Readiness, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(build_app(readiness), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
