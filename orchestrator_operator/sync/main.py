"""``orchestrator zk-sync``: run the sync engine (default) or ``verify`` two ensembles.

The lead's ``orchestrator`` CLI calls :func:`add_zk_sync_parser` and then
``args.func(args)``; ``python -m orchestrator_operator.cli zk-sync ...`` works alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from orchestrator_operator.common.health_server import BackgroundHealthServer
from orchestrator_operator.common.logs import LOG_FORMATS, configure_logging
from orchestrator_operator.common.tls import (
    ZK_CLIENT_TLS_DIR,
    ZK_CLIENT_TLS_ENV,
    ReloadingTls,
    TlsError,
    load_zk_client_tls,
    zk_client_tls,
)
from orchestrator_operator.common.zk_credentials import parse_digest_credentials
from orchestrator_operator.common.zk_endpoints import check_entries, parse_entries
from orchestrator_operator.sync.conflict import Strategy
from orchestrator_operator.sync.engine import (
    ACL_SWEEP_RATE_MAX,
    SyncConfig,
    SyncEngine,
    check_acl_sweep_rate,
)
from orchestrator_operator.sync.metrics import SyncMetrics
from orchestrator_operator.sync.verify import verify
from orchestrator_operator.zk.connection import SyncError

log = logging.getLogger("orchestrator.zk_sync")

# the operator's variable for the same rule (operator/allowlist.py ENVIRONMENT)
ZK_ENDPOINTS_ENV = "ORCHESTRATOR_ALLOW_ZOOKEEPER_ENDPOINTS"
EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_ERROR = 2


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before or after the action (``zk-sync --source X verify`` and
    ``zk-sync verify --source X``); on actions they default to SUPPRESS so they never
    overwrite what was given before the action."""

    def d(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--source", default=d(None), help="source ensemble, host:port,...")
    parser.add_argument("--target", default=d(None), help="target ensemble, host:port,...")
    parser.add_argument(
        "--path",
        action="append",
        default=d(None),
        dest="paths",
        help="subtree to sync (repeatable), e.g. --path /mesos --path /marathon",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=d(15.0),
        help="seconds to wait for a session with each ensemble (default 15)",
    )
    for side in ("source", "target"):
        parser.add_argument(
            f"--{side}-auth-file",
            default=d(None),
            help=f"digest credentials for the {side} ensemble, one user:password per line"
            " (a file, so no secret is in argv); with a user that has ADMIN on the synced"
            " znodes (or the super user) their ACLs are read with real digest ids",
        )
        parser.add_argument(
            f"--{side}-tls-dir",
            default=d(None),
            help=f"reach the {side} ensemble over TLS (its connect string names the secure"
            " client port, 2281 on managed ensembles): a directory with tls.crt, tls.key"
            " (the client certificate, for ssl.clientAuth need/want) and ca.crt (verifies"
            " the servers and their host names), e.g. a mounted cert-manager Secret",
        )
    parser.add_argument(
        "--log-level", default=d("INFO"), choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument("--json-logs", action="store_true", default=d(False))
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=d("plain"))


def _run_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def d(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--bidirectional",
        action="store_true",
        default=d(False),
        help="replicate changes both ways (cutover); default is source to target only",
    )
    parser.add_argument(
        "--conflict-strategy",
        choices=[s.value for s in Strategy],
        default=d(Strategy.SOURCE_WINS.value),
        help="bidirectional conflicts: source-wins (default), last-write-wins (mtime), manual",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=d(9102),
        help="port for /metrics and /healthz (0 = disabled; default 9102)",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=d(60.0),
        help="seconds between full reconciles (default 60)",
    )
    parser.add_argument(
        "--session-timeout", type=float, default=d(10.0), help="ZooKeeper session timeout"
    )
    parser.add_argument(
        "--acl-sweep-rate",
        default=d("4000"),
        metavar="N",
        help="znodes per second whose ACL version is checked on each watched side, so an "
        "ACL change (ZooKeeper fires no watch for it) is copied within one sweep; a tenth "
        "of it on ZooKeeper < 3.6; 0 = off: ACL-only changes then wait for the full "
        f"reconcile (default 4000, at most {ACL_SWEEP_RATE_MAX})",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=d(None),
        help="JSON file keeping merge base, sessions and conflicts across restarts",
    )


def add_zk_sync_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``zk-sync`` (actions ``run`` [default], ``verify`` and ``controller``)."""
    parser = subparsers.add_parser(
        "zk-sync",
        help="replicate ZooKeeper subtrees between two ensembles (or verify them)",
        description=(
            "Replicate ZooKeeper subtrees from --source to --target (one-way, or both ways "
            "with --bidirectional) and keep following changes; or `verify` both sides. "
            "Options go before or after the action. Exit codes: 0 ok, 1 differences "
            "(verify), 2 bad input, an unreachable ensemble, or source and target the same "
            "ensemble (refused: syncing an ensemble onto itself destroys its ephemerals)."
        ),
    )
    _common(parser, suppress=False)
    _run_options(parser, suppress=False)
    parser.set_defaults(func=run_command)
    actions = parser.add_subparsers(dest="zk_sync_action", metavar="{run,verify,controller}")
    run = actions.add_parser("run", help="bootstrap, then follow changes (default)")
    _common(run, suppress=True)
    _run_options(run, suppress=True)
    run.set_defaults(func=run_command)
    check = actions.add_parser("verify", help="compare digests, print every difference")
    _common(check, suppress=True)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=verify_command)
    _controller_parser(actions)


def _controller_parser(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ctl = actions.add_parser(
        "controller",
        help="run one bidirectional engine per active ZkMigration and report into its status",
        description=(
            "Poll ZkMigrations (all namespaces or each --namespace); for each one whose "
            "status.syncRequest is active run a bidirectional sync engine, and write "
            "status.sync (state, bootstrap, lag p99, digests, conflicts) every "
            "--report-interval seconds. /healthz, /readyz and /metrics (labelled per "
            "migration) on --health-host:--health-port."
        ),
    )
    ctl.add_argument(
        "--namespace",
        action="append",
        help="watch this namespace; repeat for more (default: all namespaces)",
    )
    ctl.add_argument(
        "--state-dir",
        type=Path,
        help="directory for the engines' state files, <namespace>_<name>.json "
        "(default: none; a restarted engine then has no merge base)",
    )
    ctl.add_argument(
        "--zookeeper-client-tls-dir",
        default=argparse.SUPPRESS,
        help="the controller's ZooKeeper client certificate for the sides a syncRequest marks"
        " TLS (managed ensembles with spec.zookeeper.tls): a mounted Secret with tls.crt,"
        f" tls.key and ca.crt (default: ${ZK_CLIENT_TLS_ENV}, else {ZK_CLIENT_TLS_DIR} if it"
        " has a ca.crt)",
    )
    ctl.add_argument(
        "--allow-zookeeper-endpoints",
        default=argparse.SUPPRESS,
        help="the allow-list's ZooKeeper servers (host:port, host, *.domain; comma-separated),"
        " as the operator's: a syncRequest naming another ensemble, other than those the"
        " operator manages for the migration, is refused (default:"
        f" ${ZK_ENDPOINTS_ENV}; unset: any)",
    )
    ctl.add_argument("--health-host", default="0.0.0.0")
    ctl.add_argument(
        "--health-port", type=int, default=8081, help="/healthz /readyz /metrics (default 8081)"
    )
    ctl.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between polls of the ZkMigration list (default 1)",
    )
    ctl.add_argument(
        "--report-interval",
        type=float,
        default=2.0,
        help="seconds between status.sync reports of a running engine (default 2)",
    )
    ctl.add_argument(
        "--verify-interval",
        type=float,
        default=5.0,
        help="seconds between digest comparisons of both sides (default 5)",
    )
    # Given before the action (zk-sync --log-level DEBUG controller) or after it.
    for flag, kind, default, text in (
        ("--connect-timeout", float, 15.0, "seconds to wait for a ZooKeeper session"),
        ("--session-timeout", float, 10.0, "ZooKeeper session timeout"),
        ("--reconcile-interval", float, 60.0, "seconds between an engine's full reconciles"),
    ):
        ctl.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=f"{text} ({default:g})")
    ctl.add_argument(
        "--acl-sweep-rate",
        default=argparse.SUPPRESS,
        metavar="N",
        help="znodes per second whose ACL version each engine checks on each side (4000; 0 = off)",
    )
    ctl.add_argument(
        "--log-level", default=argparse.SUPPRESS, choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    ctl.add_argument("--json-logs", action="store_true", default=argparse.SUPPRESS)
    ctl.add_argument("--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS)
    ctl.set_defaults(func=controller_command)


def _setup_logging(args: argparse.Namespace) -> None:
    """--log-format json (or --json-logs): one JSON object per line (common/logs.py)."""
    as_json = getattr(args, "json_logs", False) or getattr(args, "log_format", "plain") == "json"
    configure_logging(log_format="json" if as_json else "plain")
    logging.getLogger().setLevel(getattr(args, "log_level", "INFO"))
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the controller polls every second


def _required(args: argparse.Namespace) -> tuple[str, str, list[str]]:
    missing = [
        flag for flag, value in (("--source", args.source), ("--target", args.target)) if not value
    ]
    if not args.paths:
        missing.append("--path")
    if missing:
        raise SyncError(f"missing required option(s): {', '.join(missing)}")
    return str(args.source), str(args.target), list(args.paths)


def _whole_number(text: str, flag: str) -> int:
    """A flag's value as an int (SyncError, exit 2, when it is not one); ranges are
    SyncConfig's to check."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise SyncError(f"{flag} must be a whole number, got {str(text)[:40]!r}") from None


def _credentials(args: argparse.Namespace, side: str) -> list[tuple[str, str]]:
    """The digest credentials of one side from its --<side>-auth-file (SyncError: exit 2)."""
    path = getattr(args, f"{side}_auth_file", None)
    if not path:
        return []
    try:
        return parse_digest_credentials(Path(path).read_text(), f"--{side}-auth-file {path}")
    except OSError as exc:
        raise SyncError(f"cannot read --{side}-auth-file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SyncError(str(exc)) from None


def _tls(args: argparse.Namespace, side: str) -> ReloadingTls | None:
    """The TLS of one side from its --<side>-tls-dir (SyncError: exit 2)."""
    path = getattr(args, f"{side}_tls_dir", None)
    if not path:
        return None
    try:
        return zk_client_tls(Path(path))
    except TlsError as exc:
        raise SyncError(f"--{side}-tls-dir: {exc}") from None


def run_command(args: argparse.Namespace) -> int:
    _setup_logging(args)
    try:
        source, target, paths = _required(args)
        config = SyncConfig(
            source=source,
            target=target,
            paths=paths,
            bidirectional=bool(args.bidirectional),
            strategy=Strategy(args.conflict_strategy),
            reconcile_interval=float(args.reconcile_interval),
            session_timeout=float(args.session_timeout),
            connect_timeout=float(args.connect_timeout),
            state_file=args.state_file,
            acl_sweep_rate=_whole_number(args.acl_sweep_rate, "--acl-sweep-rate"),
            source_auth=_credentials(args, "source"),
            target_auth=_credentials(args, "target"),
            source_tls=_tls(args, "source"),
            target_tls=_tls(args, "target"),
        )
        metrics = SyncMetrics()
        engine = SyncEngine(config, metrics)
        server = None
        if args.metrics_port:
            server = BackgroundHealthServer(metrics.registry, engine.health, int(args.metrics_port))
            server.start()
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        engine.start()
    except SyncError as exc:
        print(f"zk-sync: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"zk-sync: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    log.info(
        "syncing %s from %s to %s (%s)",
        ", ".join(config.paths),
        source,
        target,
        f"bidirectional, {config.strategy.value}" if config.bidirectional else "one-way",
    )
    try:
        stop.wait()
    finally:
        engine.stop()
        if server is not None:
            server.stop()
    return EXIT_OK


def controller_command(args: argparse.Namespace) -> int:
    _setup_logging(args)
    # imported here: the controller brings the Kubernetes client, which is large
    from orchestrator_operator.sync.controller.main import run_controller
    from orchestrator_operator.sync.controller.options import ControllerOptions

    try:
        acl_sweep_rate = _whole_number(args.acl_sweep_rate, "--acl-sweep-rate")
        check_acl_sweep_rate(acl_sweep_rate)
        client_tls = load_zk_client_tls(getattr(args, "zookeeper_client_tls_dir", None))
    except TlsError as exc:
        print(f"zk-sync controller: error: --zookeeper-client-tls-dir: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except SyncError as exc:
        print(f"zk-sync controller: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        endpoints = parse_entries(
            getattr(args, "allow_zookeeper_endpoints", os.environ.get(ZK_ENDPOINTS_ENV))
        )
        check_entries(endpoints)
    except ValueError as exc:
        print(f"zk-sync controller: error: --allow-zookeeper-endpoints: {exc}", file=sys.stderr)
        return EXIT_ERROR
    options = ControllerOptions(
        namespaces=tuple(args.namespace or ()),
        state_dir=args.state_dir,
        health_host=args.health_host,
        health_port=int(args.health_port),
        interval=float(args.interval),
        report_interval=float(args.report_interval),
        verify_interval=float(args.verify_interval),
        connect_timeout=float(args.connect_timeout),
        session_timeout=float(args.session_timeout),
        reconcile_interval=float(args.reconcile_interval),
        acl_sweep_rate=acl_sweep_rate,
        client_tls=client_tls,
        zookeeper_endpoints=endpoints,
    )
    try:
        return run_controller(options)
    except OSError as exc:  # e.g. the health port is taken
        print(f"zk-sync controller: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def verify_command(args: argparse.Namespace) -> int:
    _setup_logging(args)
    try:
        source, target, paths = _required(args)
        report = verify(
            source,
            target,
            paths,
            connect_timeout=float(args.connect_timeout),
            source_auth=_credentials(args, "source"),
            target_auth=_credentials(args, "target"),
            source_tls=_tls(args, "source"),
            target_tls=_tls(args, "target"),
        )
    except SyncError as exc:
        print(f"zk-sync verify: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "in_sync": report.ok,
                    "roots": [
                        {
                            "path": r.root,
                            "source_digest": r.source,
                            "target_digest": r.target,
                            "source_znodes": r.source_znodes,
                            "target_znodes": r.target_znodes,
                        }
                        for r in report.roots
                    ],
                    "differences": [
                        {"path": d.path, "kind": d.kind.value, "detail": d.detail}
                        for d in report.differences
                    ],
                    "unreadable": {s.value: u for s, u in report.unreadable.items() if u},
                    "missing_on_source": report.missing_on_source,
                }
            )
        )
    else:
        print(report.format())
    return EXIT_OK if report.ok else EXIT_DIFFERENT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    add_zk_sync_parser(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
