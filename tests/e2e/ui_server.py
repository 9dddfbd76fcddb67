"""Launch the monitoring app with the built UI routes (what app.py will do once it wires
``ui_assets.add_ui_routes``): ``python -m tests.e2e.ui_server --port P --token T
[--read-only-token R] [--dist ui/dist]``; the app's platform routes read the cluster of
$KUBECONFIG (``--platform`` is accepted and changes nothing, for older callers).
Prints ``listening <port>`` when ready."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

from orchestrator_operator.monitor.app import AppConfig, MonitorApp
from orchestrator_operator.monitor.ui_assets import add_ui_routes

ROOT = Path(__file__).resolve().parents[2]


async def serve(args: argparse.Namespace) -> None:
    monitor = MonitorApp(
        AppConfig(
            token=args.token,
            read_only_token=args.read_only_token or None,
            probe_ttl=args.probe_ttl,
        )
    )
    app = monitor.web_app()
    add_ui_routes(app, Path(args.dist))
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, args.listen, args.port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    port = int(sockets[0].getsockname()[1]) if sockets else args.port
    print(f"listening {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ui_server")
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--read-only-token", default="")
    parser.add_argument("--probe-ttl", type=float, default=15.0)
    parser.add_argument("--platform", action="store_true")
    parser.add_argument("--dist", default=str(ROOT / "ui" / "dist"))
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
