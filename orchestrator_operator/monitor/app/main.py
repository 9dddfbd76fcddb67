"""`orchestrator app`: the monitoring app's process (registered on the main CLI by
``add_app_parser``, which sets ``func`` returning an exit code)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from orchestrator_operator.common.logs import add_log_format_argument
from orchestrator_operator.common.process import configure_logging, read_secret, require_secret
from orchestrator_operator.common.tls import TlsError, add_server_arguments, server_from_args


def _app(args: argparse.Namespace) -> int:
    from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp
    from orchestrator_operator.monitor.app.tls import serve_tls

    configure_logging(args.verbose, args.log_format)
    try:
        tls = server_from_args(args)
    except TlsError as exc:
        print(f"app: {exc}", file=sys.stderr)
        return 2
    env = "ORCHESTRATOR_MONITOR_TOKEN"
    token = require_secret("app", "--token", args.token, args.token_file, env)
    if not token:
        return 2
    read_only = read_secret(
        args.read_only_token, args.read_only_token_file, "ORCHESTRATOR_MONITOR_READ_ONLY_TOKEN"
    )
    config = AppConfig(
        token=token,
        read_only_token=read_only,
        max_report_bytes=args.max_report_bytes,
        probe_ttl=args.probe_ttl,
        ui_dist=Path(args.ui_dist) if args.ui_dist else None,
        allowed_origins=tuple(args.allowed_origin or ()),
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        monitor = MonitorApp(config)
        if tls is None:
            await monitor.serve(args.listen, args.port, stop)
        else:
            await serve_tls(monitor.runner(), args.listen, args.port, tls, stop)

    asyncio.run(main())
    return 0


def add_app_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    app = subparsers.add_parser("app", help="run the monitoring app")
    app.add_argument("--listen", default="0.0.0.0")
    app.add_argument("--port", type=int, default=4040)
    app.add_argument("--token", help="read-write token (or $ORCHESTRATOR_MONITOR_TOKEN)")
    app.add_argument("--token-file", help="read the read-write token from this file")
    app.add_argument("--read-only-token", help="token that may read but not run controls")
    app.add_argument("--read-only-token-file")
    add_server_arguments(app)
    app.add_argument("--max-report-bytes", type=int, default=8 * 1024 * 1024)
    app.add_argument("--probe-ttl", type=float, default=15.0, help="seconds before expiry")
    app.add_argument(
        "--ui-dist",
        default=os.environ.get("ORCHESTRATOR_UI_DIST"),
        help="serve the web UI built in this directory (ui/dist); default $ORCHESTRATOR_UI_DIST",
    )
    app.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="scheme://host[:port] of pages, besides the app's own, that may open its "
        "WebSockets (repeatable), e.g. a Vite dev server",
    )
    app.add_argument("--verbose", action="store_true")
    add_log_format_argument(app)
    app.set_defaults(func=_app)
