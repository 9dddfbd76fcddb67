"""`orchestrator probe`: the monitoring probe's process (registered on the main CLI by
``add_probe_parser``, which sets ``func`` returning an exit code)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING

from orchestrator_operator.common.logs import add_log_format_argument
from orchestrator_operator.common.process import configure_logging, require_secret
from orchestrator_operator.common.tls import TlsError, add_client_arguments, client_from_args

if TYPE_CHECKING:
    from orchestrator_operator.monitor.probe.agent import ProbeConfig


def probe_config(args: argparse.Namespace, token: str) -> ProbeConfig:
    """The probe's configuration from its parsed command line."""
    from orchestrator_operator.monitor.probe.agent import ProbeConfig

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
        token_file=args.token_file,
        tls=client_from_args(args),
    )


def _probe(args: argparse.Namespace) -> int:
    from orchestrator_operator.monitor.probe.agent import Probe

    configure_logging(args.verbose, args.log_format)
    env = "ORCHESTRATOR_MONITOR_TOKEN"
    token = require_secret("probe", "--token", args.token, args.token_file, env)
    if not token:
        return 2
    try:
        config = probe_config(args, token)
    except TlsError as exc:
        print(f"probe: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Probe(config).run(stop)

    asyncio.run(main())
    return 0


def add_probe_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    probe = subparsers.add_parser("probe", help="run the monitoring probe on this host")
    probe.add_argument("--app", required=True, help="base URL of the monitoring app")
    probe.add_argument("--token", help="probe token (or $ORCHESTRATOR_MONITOR_TOKEN)")
    probe.add_argument("--token-file", help="read the token from this file")
    add_client_arguments(probe)
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
    add_log_format_argument(probe)
    probe.set_defaults(func=_probe)
