"""`orchestrator app`: the monitoring app's process (registered on the main CLI by
``add_app_parser``, which sets ``func`` returning an exit code)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

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
    identity = _auth_config(args)
    if identity is None:
        return 2
    config = AppConfig(
        **identity,
        max_report_bytes=args.max_report_bytes,
        probe_ttl=args.probe_ttl,
        ui_dist=Path(args.ui_dist) if args.ui_dist else None,
        allowed_origins=tuple(args.allowed_origin or ()),
        metrics_auth=args.metrics_auth,
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


def _auth_config(args: argparse.Namespace) -> dict[str, Any] | None:
    """AppConfig's identity fields for the mode chosen (None: a required value is missing,
    said on stderr)."""
    from orchestrator_operator.monitor.app.auth import KubeAuth
    from orchestrator_operator.monitor.app.server import SYSTEM_NAMESPACES

    protected = (*SYSTEM_NAMESPACES, *(args.protected_namespace or ()))
    common: dict[str, Any] = {
        "audit_log": Path(args.audit_log) if args.audit_log else None,
        "allow_protected_controls": args.allow_protected_controls,
        "protected_namespaces": protected,
    }
    if args.identities == "kubernetes":
        accounts = frozenset(args.probe_service_account or ())
        if not args.namespace or not accounts or any(a.count(":") != 1 for a in accounts):
            print(
                "app: --identities kubernetes needs --namespace (or $POD_NAMESPACE) and at least "
                "one --probe-service-account NAMESPACE:NAME",
                file=sys.stderr,
            )
            return None
        auth = KubeAuth(args.namespace, accounts, audience=args.audience)
        return {
            **common,
            "auth": auth,
            "events_namespace": args.namespace,
            "app_pod": args.pod_name or None,
            # the app's own namespace holds the probes and the app: protected too
            "protected_namespaces": (*protected, args.namespace),
        }
    env = "ORCHESTRATOR_MONITOR_TOKEN"
    token = require_secret("app", "--token", args.token, args.token_file, env)
    if not token:
        return None
    read_only = read_secret(
        args.read_only_token, args.read_only_token_file, "ORCHESTRATOR_MONITOR_READ_ONLY_TOKEN"
    )
    probe_token = read_secret(
        args.probe_token, args.probe_token_file, "ORCHESTRATOR_MONITOR_PROBE_TOKEN"
    )
    return {**common, "token": token, "read_only_token": read_only, "probe_token": probe_token}


def add_app_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    app = subparsers.add_parser("app", help="run the monitoring app")
    app.add_argument("--listen", default="0.0.0.0")
    app.add_argument("--port", type=int, default=4040)
    app.add_argument("--token", help="read-write token (or $ORCHESTRATOR_MONITOR_TOKEN)")
    app.add_argument("--token-file", help="read the read-write token from this file")
    app.add_argument("--read-only-token", help="token that may read but not run controls")
    app.add_argument("--read-only-token-file")
    app.add_argument(
        "--identities",
        choices=("static", "kubernetes"),
        default=os.environ.get("ORCHESTRATOR_MONITOR_IDENTITIES", "static"),
        help="static: the tokens given here, with roles (docker-compose); kubernetes: probes "
        "by their ServiceAccount tokens (TokenReview), people by SubjectAccessReview on "
        "monitor.orchestrator.dev topologies/logs/controls "
        "(default $ORCHESTRATOR_MONITOR_IDENTITIES or static)",
    )
    app.add_argument("--probe-token", help="static mode: the probes' own token")
    app.add_argument("--probe-token-file", help="static mode: read the probes' token from here")
    app.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE"),
        help="kubernetes mode: where people's access is asked and audit Events go "
        "(default $POD_NAMESPACE)",
    )
    app.add_argument(
        "--probe-service-account",
        action="append",
        metavar="NAMESPACE:NAME",
        help="kubernetes mode: a ServiceAccount whose pod-bound tokens may report (repeatable)",
    )
    app.add_argument(
        "--audience", default="orchestrator-monitor", help="kubernetes mode: probe tokens' audience"
    )
    app.add_argument(
        "--pod-name", default=os.environ.get("POD_NAME"), help="this app's pod (default $POD_NAME)"
    )
    app.add_argument("--audit-log", help="append each container control here (JSON lines)")
    app.add_argument(
        "--protected-namespace",
        action="append",
        metavar="NAMESPACE",
        help="refuse controls on containers of this namespace too (repeatable; kube-system, "
        "kube-public, kube-node-lease and in kubernetes mode the app's own always are)",
    )
    app.add_argument(
        "--allow-protected-controls",
        action="store_true",
        help="allow controls on containers of protected namespaces and on a probe's own",
    )
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
    app.add_argument(
        "--metrics-auth",
        action="store_true",
        help="/metrics needs a bearer token too: kubernetes mode, one allowed get on the"
        " non-resource URL /metrics (SubjectAccessReview, as Prometheus' ServiceAccount"
        " holds); static mode, the read-write or read-only token (default: open, counts only)",
    )
    app.add_argument("--verbose", action="store_true")
    add_log_format_argument(app)
    app.set_defaults(func=_app)
