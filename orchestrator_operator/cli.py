"""The `orchestrator` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from orchestrator_operator.common.tls import TlsError
    from orchestrator_operator.operator.allowlist import from_settings
    from orchestrator_operator.operator.main import OperatorOptions, run
    from orchestrator_operator.operator.zk_super_key import SuperKeyInvalid

    try:
        allowlist = from_settings(vars(args), os.environ)
    except ValueError as error:
        print(f"orchestrator run: allow-list: {error}", file=sys.stderr)
        return 2
    options = OperatorOptions(
        namespaces=tuple(args.namespace or ()),
        health_host=args.health_host,
        health_port=args.health_port,
        monitoring_app_url=args.monitoring_app_url,
        zk_super_key_file=args.zk_super_key_file,
        zookeeper_client_tls_dir=args.zookeeper_client_tls_dir,
        status_watches=args.status_watches,
        status_resync_seconds=args.status_resync_seconds,
        allowlist=allowlist,
    )
    try:
        return run(options, log_format=args.log_format, verbose=args.verbose)
    except SuperKeyInvalid as error:
        print(f"orchestrator run: {error}", file=sys.stderr)
        return 2
    except TlsError as error:
        print(f"orchestrator run: --zookeeper-client-tls-dir: {error}", file=sys.stderr)
        return 2


def _resync_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 1.0 <= value <= 3600.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 1-3600 seconds")
    return value


def _crds(args: argparse.Namespace) -> int:
    from orchestrator_operator.operator.crds import stale_crds, write_crds

    directory = Path(args.output_dir)
    if args.check:
        stale = stale_crds(directory)
        if stale:
            print(
                f"out of date in {directory}: {', '.join(stale)}; run `orchestrator crds`",
                file=sys.stderr,
            )
            return 1
        print(f"{directory}: up to date")
        return 0
    for path in write_crds(directory):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator", description="Run Apache Mesos platforms on Kubernetes."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "--namespace",
        action="append",
        help="watch this namespace; repeat for more (default: all namespaces)",
    )
    run.add_argument("--health-host", default="0.0.0.0")
    run.add_argument("--health-port", type=int, default=8080, help="/healthz /readyz /metrics")
    run.add_argument("--log-format", choices=["plain", "json"], default="plain")
    run.add_argument("--verbose", action="store_true")
    run.add_argument(
        "--monitoring-app-url",
        help="URL template of a ProbeFleet's app, over {name} {namespace} {port}"
        " (default: http://{name}-app.{namespace}.svc:{port})",
    )
    run.add_argument(
        "--zk-super-key-file",
        help="ZooKeeper super key: turns on scaling managed ensembles by reconfiguration"
        " (default: $ORCHESTRATOR_ZK_SUPER_KEY_FILE, else /etc/orchestrator/zk-super-key/key"
        " if it exists; docs/mesoscluster.md)",
    )
    run.add_argument(
        "--zookeeper-client-tls-dir",
        help="the operator's ZooKeeper client certificate for managed ensembles with"
        " spec.zookeeper.tls (their TLS port 2281): a mounted Secret with tls.crt, tls.key and"
        " ca.crt (the ensembles' issuer; verifies the servers) (default:"
        " $ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR, else /etc/orchestrator/zookeeper-client-tls"
        " if it has a ca.crt; docs/security.md)",
    )
    run.add_argument(
        "--no-status-watches",
        dest="status_watches",
        action="store_false",
        help="observe every MesosCluster every second instead of on ZooKeeper and workload"
        " events (the behaviour before event-driven status; for comparison)",
    )
    run.add_argument(
        "--status-resync-seconds",
        type=_resync_seconds,
        default=10.0,
        help="seconds between observations of a settled MesosCluster (1-3600, default 10)",
    )
    from orchestrator_operator.operator.allowlist import add_arguments as add_allowlist_arguments

    add_allowlist_arguments(run)
    run.set_defaults(func=_run)

    crds = sub.add_parser("crds", help="generate the CRD YAML from the models")
    crds.add_argument("--output-dir", default="crds")
    crds.add_argument("--check", action="store_true", help="fail if the files are out of date")
    crds.set_defaults(func=_crds)

    from orchestrator_operator.lb.main import add_lb_parser
    from orchestrator_operator.monitor.app.main import add_app_parser
    from orchestrator_operator.monitor.probe.main import add_probe_parser
    from orchestrator_operator.offramp.main import add_marathon_parser
    from orchestrator_operator.operator.render import add_render_parser
    from orchestrator_operator.sync.main import add_zk_sync_parser
    from orchestrator_operator.zkmigrate.main import add_zk_migrate_parser

    add_zk_sync_parser(sub)
    add_probe_parser(sub)
    add_app_parser(sub)
    add_zk_migrate_parser(sub)
    add_render_parser(sub)
    add_lb_parser(sub)
    add_marathon_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
