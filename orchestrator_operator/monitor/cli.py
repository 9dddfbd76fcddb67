"""`orchestrator probe` and `orchestrator app`: registered on the main CLI by
``add_monitor_parsers``; each sets ``func`` returning an exit code."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator_operator.monitor.probe import ProbeConfig


def _secret(value: str | None, file: str | None, env: str) -> str | None:
    if file:
        return Path(file).read_text().strip()
    return value or os.environ.get(env) or None


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def probe_config(args: argparse.Namespace, token: str) -> ProbeConfig:
    """The probe's configuration from its parsed command line."""
    from orchestrator_operator.monitor.probe import ProbeConfig

    return ProbeConfig(
        app_url=args.app,
        token=token,
        interval=args.interval,
        docker_url=None if args.no_docker else args.docker_host,
        hostname=args.hostname,
        kubernetes=args.kubernetes,
        kubeconfig=args.kubeconfig,
        processes=not args.no_processes,
        connections=not args.no_connections,
    )


def _probe(args: argparse.Namespace) -> int:
    from orchestrator_operator.monitor.probe import Probe

    _logging(args.verbose)
    token = _secret(args.token, args.token_file, "ORCHESTRATOR_MONITOR_TOKEN")
    if not token:
        print(
            "probe: a token is required (--token, --token-file or $ORCHESTRATOR_MONITOR_TOKEN)",
            file=sys.stderr,
        )
        return 2
    config = probe_config(args, token)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Probe(config).run(stop)

    asyncio.run(main())
    return 0


def _app(args: argparse.Namespace) -> int:
    from orchestrator_operator.monitor.app import AppConfig, MonitorApp

    _logging(args.verbose)
    token = _secret(args.token, args.token_file, "ORCHESTRATOR_MONITOR_TOKEN")
    if not token:
        print(
            "app: a token is required (--token, --token-file or $ORCHESTRATOR_MONITOR_TOKEN)",
            file=sys.stderr,
        )
        return 2
    read_only = _secret(
        args.read_only_token, args.read_only_token_file, "ORCHESTRATOR_MONITOR_READ_ONLY_TOKEN"
    )
    config = AppConfig(
        token=token,
        read_only_token=read_only,
        max_report_bytes=args.max_report_bytes,
        probe_ttl=args.probe_ttl,
        ui_dist=Path(args.ui_dist) if args.ui_dist else None,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await MonitorApp(config).serve(args.listen, args.port, stop)

    asyncio.run(main())
    return 0


def add_monitor_parsers(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    probe = subparsers.add_parser("probe", help="run the monitoring probe on this host")
    probe.add_argument("--app", required=True, help="base URL of the monitoring app")
    probe.add_argument("--token", help="probe token (or $ORCHESTRATOR_MONITOR_TOKEN)")
    probe.add_argument("--token-file", help="read the token from this file")
    probe.add_argument("--interval", type=float, default=3.0, help="seconds between reports")
    probe.add_argument(
        "--docker-host",
        default=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        help="Docker Engine API URL (default $DOCKER_HOST or the standard socket)",
    )
    probe.add_argument("--no-docker", action="store_true", help="do not collect containers")
    probe.add_argument("--no-processes", action="store_true", help="do not collect processes")
    probe.add_argument(
        "--no-connections",
        action="store_true",
        help="do not collect TCP/UDP connections (no socket or fd scan)",
    )
    probe.add_argument("--hostname", help="host name to report (default: this host's)")
    probe.add_argument(
        "--kubernetes", action="store_true", help="collect pods on this node and services"
    )
    probe.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster service account)")
    probe.add_argument("--verbose", action="store_true")
    probe.set_defaults(func=_probe)

    app = subparsers.add_parser("app", help="run the monitoring app")
    app.add_argument("--listen", default="0.0.0.0")
    app.add_argument("--port", type=int, default=4040)
    app.add_argument("--token", help="read-write token (or $ORCHESTRATOR_MONITOR_TOKEN)")
    app.add_argument("--token-file", help="read the read-write token from this file")
    app.add_argument("--read-only-token", help="token that may read but not run controls")
    app.add_argument("--read-only-token-file")
    app.add_argument("--max-report-bytes", type=int, default=8 * 1024 * 1024)
    app.add_argument("--probe-ttl", type=float, default=15.0, help="seconds before expiry")
    app.add_argument(
        "--ui-dist",
        default=os.environ.get("ORCHESTRATOR_UI_DIST"),
        help="serve the web UI built in this directory (ui/dist); default $ORCHESTRATOR_UI_DIST",
    )
    app.add_argument("--verbose", action="store_true")
    app.set_defaults(func=_app)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: ``python -m orchestrator_operator.monitor.cli probe|app ...``."""
    parser = argparse.ArgumentParser(prog="orchestrator-monitor")
    add_monitor_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
