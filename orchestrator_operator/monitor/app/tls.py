"""Serving the monitoring app (API, WebSockets, UI) over HTTPS from `common/tls.py`'s
reloading context: a rotated certificate is served to the next connection, no restart."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from orchestrator_operator.common.tls import ReloadingTls

log = logging.getLogger(__name__)


async def serve_tls(
    runner: web.AppRunner, host: str, port: int, tls: ReloadingTls, stop: asyncio.Event
) -> None:
    """Like `MonitorApp.serve`, on HTTPS."""
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls.listening_context())
        await site.start()
        log.info(
            "monitoring app listening on https://%s:%d (client certificates: %s)",
            host,
            port,
            tls.client_auth,
        )
        await stop.wait()
    finally:
        await runner.cleanup()
