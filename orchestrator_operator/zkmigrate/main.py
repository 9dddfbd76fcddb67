"""``orchestrator zk-migrate start|status|advance|rollback|validate|report|restore``.

Drives ZkMigration objects through the Kubernetes API with the credentials the operator
would use (in-cluster, else the kubeconfig: ``KUBECONFIG`` or ``~/.kube/config``). The
words and documents it writes and prints are built by the pure modules beside it
(``manifest``, ``plan``, ``views``).

Exit codes: 0 done (or: checks pass, finished); 1 ``validate``: a check fails, ``report``:
not finished, ``start --wait`` / ``status --watch``: ended other than Succeeded,
``advance``: nothing to change (already approved that far); 2 bad input
or an error from the API (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.models import MESOS_CLUSTER, ZK_MIGRATION
from orchestrator_operator.models.routing import ZkRouting, parse_routing
from orchestrator_operator.models.vocabulary import ZkMigrationPhase
from orchestrator_operator.models.zkmigration import DECIDED_BY_ANNOTATION, ZkMigrationStatus
from orchestrator_operator.zkmigrate.manifest import (
    TERMINAL_PHASES,
    InputError,
    StartRequest,
    advance_patch,
    check_ensembles,
    check_start,
    cluster_busy,
    migration_manifest,
    rollback_patch,
    target_connect_string,
)
from orchestrator_operator.zkmigrate.plan import plan_text
from orchestrator_operator.zkmigrate.views import (
    report_document,
    report_text,
    restore_summary,
    status_view,
    sync_line,
    validation,
)

EXIT_OK = 0
EXIT_NOT_YET = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
WATCH_SECONDS = 1.0


class CliError(Exception):
    """An error already put in words for the user."""


def _api() -> KubeApi:
    from kubernetes.config import ConfigException

    try:
        return KubeApi()
    except ConfigException as error:
        raise CliError(
            f"no Kubernetes credentials (set KUBECONFIG or create ~/.kube/config): {error}"
        ) from None
    except OSError as error:
        raise CliError(f"cannot read the Kubernetes credentials: {error}") from None


def _default_namespace() -> str:
    """The namespace of the kubeconfig's current context, else `default`."""
    try:
        from kubernetes.config import list_kube_config_contexts

        _, active = list_kube_config_contexts()  # type: ignore[no-untyped-call]
        return str((active or {}).get("context", {}).get("namespace") or "default")
    except Exception:  # no kubeconfig, or in-cluster: the API call will say what is wrong
        return "default"


def api_error_words(error: ApiError) -> str:
    """The API server's own message (e.g. a CEL rule's) from a Status body."""
    text = str(error).split(": ", 1)[-1]
    try:
        body = json.loads(text)
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return f"the API server refused ({error.status}): {message or text.strip()[:500]}"


def _get_migration(api: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    obj = api.get(ZK_MIGRATION.api_version, ZK_MIGRATION.kind, namespace, name)
    if obj is None:
        raise CliError(f"ZkMigration {name} not found in namespace {namespace}")
    return obj


def _get_cluster(api: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    obj = api.get(MESOS_CLUSTER.api_version, MESOS_CLUSTER.kind, namespace, name)
    if obj is None:
        raise CliError(f"MesosCluster {name} not found in namespace {namespace}")
    return obj


def _merge_patch(api: KubeApi, obj: dict[str, Any], body: dict[str, Any]) -> None:
    meta = obj["metadata"]
    api.merge_patch(
        ZK_MIGRATION.api_version, ZK_MIGRATION.kind, meta["namespace"], meta["name"], body
    )


def _signed(api: KubeApi, body: dict[str, Any]) -> dict[str, Any]:
    """A decision's patch with who makes it (DECIDED_BY_ANNOTATION): the user the API
    server knows this CLI as (a SelfSubjectReview, `kubectl auth whoami`); the admission
    policy accepts no other name. Unknown (an API server without the review): the
    annotation is removed, and the decision goes unattributed rather than under another's
    name."""
    try:
        review = api.submit(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
             "metadata": {}}
        )  # fmt: skip
        user = str(((review.get("status") or {}).get("userInfo") or {}).get("username") or "")
    except (ApiError, httpx.HTTPError):
        user = ""
    return {**body, "metadata": {"annotations": {DECIDED_BY_ANNOTATION: user or None}}}


# ---------------------------------------------------------------- actions


def _start(args: argparse.Namespace, api: KubeApi) -> int:
    request = StartRequest(
        name=args.name,
        namespace=args.namespace,
        cluster=args.cluster,
        target_connect=args.target_connect,
        target_managed_replicas=args.target_managed_replicas,
        target_managed_tls_secret=args.target_managed_tls_secret,
        source_connect=args.source,
        paths=tuple(args.paths or ()),
        manual=args.manual,
        strategy=args.strategy,
        retention=args.retention,
    )
    manifest = migration_manifest(request)
    cluster = _get_cluster(api, args.namespace, args.cluster)
    try:
        routing = parse_routing(cluster["metadata"].get("annotations"))
    except ValueError as error:
        raise CliError(f"MesosCluster {args.cluster}: {error}") from None
    if args.dry_run:
        return _dry_run(api, manifest, cluster, routing)
    api.submit(manifest, dry_run=True)
    check_start(manifest, cluster, routing)
    api.submit(manifest)
    print(
        f"ZkMigration {args.name} created in {args.namespace}: MesosCluster {args.cluster} to"
        f" {target_connect_string(manifest)}"
        + (" (Manual approval: `zk-migrate advance` approves each phase)" if args.manual else "")
    )
    if args.wait:
        return _watch(api, args.namespace, args.name)
    return EXIT_OK


def _dry_run(
    api: KubeApi, manifest: dict[str, Any], cluster: dict[str, Any], routing: ZkRouting
) -> int:
    """The plan and the server's verdict on the object. What only concerns the moment (the
    name is taken, another migration moves the cluster) is said after the plan, exit 0: the
    plan of the object is what a dry run is for, e.g. after the example was applied."""
    meta = manifest["metadata"]
    notes: list[str] = []
    # The server validates the object (schema and CEL rules) first, then the CLI's own
    # checks: a refusal reads as the API server's words when both would refuse.
    try:
        accepted: dict[str, Any] = api.submit(manifest, dry_run=True)
    except ApiError as error:
        if error.status != 409:
            raise
        # The server validates a new object before it looks for its name (a 409 comes
        # from storage): an object that gets this far passes the schema and the rules.
        accepted = {}
        existing = _get_migration(api, meta["namespace"], meta["name"]).get("status") or {}
        notes.append(
            f"a ZkMigration named {meta['name']} already exists in {meta['namespace']}"
            f" (phase {existing.get('phase') or 'not yet seen by the operator'}): `start`"
            f" would refuse the name; pick another, or follow that one with"
            f" `orchestrator zk-migrate status {meta['name']} -n {meta['namespace']}`"
        )
    check_ensembles(manifest, cluster)
    busy = cluster_busy(manifest, cluster, routing)
    if busy:
        notes.append(f"{busy}: `start` would refuse until it has ended")
    print(plan_text(manifest, cluster, routing, accepted.get("spec")))
    print(
        f"server-side dry run: ZkMigration {meta['name']} accepted (schema and validation"
        " rules pass); nothing was created"
    )
    for note in notes:
        print(f"note: {note}")
    return EXIT_OK


def _finished_code(status: dict[str, Any]) -> int:
    return EXIT_OK if status.get("phase") == ZkMigrationPhase.SUCCEEDED else EXIT_NOT_YET


def _watch(api: KubeApi, namespace: str, name: str) -> int:
    console = Console()

    def view() -> tuple[Any, dict[str, Any]]:
        status = _get_migration(api, namespace, name).get("status") or {}
        return status_view(name, status, datetime.now(UTC)), status

    renderable, status = view()
    try:
        with Live(renderable, console=console, refresh_per_second=4) as live:
            while status.get("phase") not in TERMINAL_PHASES:
                time.sleep(WATCH_SECONDS)
                renderable, status = view()
                live.update(renderable)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return _finished_code(status)


def _status(args: argparse.Namespace, api: KubeApi) -> int:
    if args.watch and not args.json:
        return _watch(api, args.namespace, args.name)
    obj = _get_migration(api, args.namespace, args.name)
    status = obj.get("status") or {}
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        Console().print(status_view(args.name, status, datetime.now(UTC)))
    return EXIT_OK


def _advance(args: argparse.Namespace, api: KubeApi) -> int:
    obj = _get_migration(api, args.namespace, args.name)
    body, note = advance_patch(obj, args.through)
    if body is None:  # a no-op is not success: a script approving a phase must notice
        print(f"zk-migrate advance: {note}", file=sys.stderr)
        return EXIT_NOT_YET
    _merge_patch(api, obj, _signed(api, body))
    print(note)
    return EXIT_OK


def _rollback(args: argparse.Namespace, api: KubeApi) -> int:
    obj = _get_migration(api, args.namespace, args.name)
    body, note = rollback_patch(obj, args.to, args.cancel)
    _merge_patch(api, obj, _signed(api, body))
    print(note)
    return EXIT_OK


def _validate(args: argparse.Namespace, api: KubeApi) -> int:
    status = _get_migration(api, args.namespace, args.name).get("status") or {}
    ok, lines = validation(status)
    print("\n".join(lines))
    print(sync_line(status.get("sync")))
    return EXIT_OK if ok else EXIT_NOT_YET


def _report(args: argparse.Namespace, api: KubeApi) -> int:
    obj = _get_migration(api, args.namespace, args.name)
    status = obj.get("status") or {}
    ZkMigrationStatus.model_validate(status)  # a status this CLI cannot read says so
    if args.json:
        print(json.dumps(report_document(obj), indent=2))
    else:
        print(report_text(obj))
    return _finished_code(status)


def _archive_configmaps(api: KubeApi, namespace: str, status: dict[str, Any]) -> list[Any]:
    names = status.get("archive") or []
    if not names:
        raise CliError(
            "no archive: it is written in phase 6 (RetireSource) and deleted when it expires"
            " (rollbackRetention) or with the ZkMigration"
        )
    found = [api.get("v1", "ConfigMap", namespace, name) for name in names]
    gone = [name for name, cm in zip(names, found, strict=True) if cm is None]
    if gone:
        raise CliError(f"archive ConfigMaps not found (expired or deleted): {', '.join(gone)}")
    return found


def _restore(args: argparse.Namespace, api: KubeApi) -> int:
    from kazoo.exceptions import KazooException

    from orchestrator_operator.operator.zkmigration import archive
    from orchestrator_operator.zk.connection import SyncError, close, connect
    from orchestrator_operator.zk.model import parent_of
    from orchestrator_operator.zk.reader import read_tree
    from orchestrator_operator.zk.writer import Applier

    obj = _get_migration(api, args.namespace, args.name)
    status = obj.get("status") or {}
    try:
        nodes = archive.archived_nodes(
            archive.joined_parts(_archive_configmaps(api, args.namespace, status))
        )
    except archive.ArchiveError as error:
        raise CliError(f"the archive of {args.name} cannot be read: {error}") from None
    target = args.to or status.get("sourceConnectString")
    if not target:
        raise CliError("no ensemble to restore to: give --to HOSTS")
    roots = archive.archive_roots(nodes)
    try:
        client = connect(target, "restore target", timeout=15, session_timeout=30)
    except SyncError as error:
        raise CliError(str(error)) from None
    try:
        current = read_tree(client, roots)
        if current.unreadable:
            bad = ", ".join(f"{p} ({why})" for p, why in sorted(current.unreadable.items())[:5])
            raise CliError(f"cannot read the target's znodes to compare: {bad}")
        plan = archive.restore_plan(nodes, current, overwrite=args.overwrite)
        print(restore_summary(args.name, target, len(nodes), plan, dry_run=args.dry_run))
        if args.dry_run or not plan.puts:
            return EXIT_OK
        for root in roots:  # a root's own parents, if gone, come back with an open ACL
            if parent_of(root) != "/":
                client.ensure_path(parent_of(root))
        result = Applier(client).apply(plan.puts, bulk=True)
    except KazooException as error:
        raise CliError(f"ZooKeeper {target}: {type(error).__name__} {error}") from None
    finally:
        close(client)
    print(f"written: {len(result.written)} znodes")
    if result.failed:
        for path, reason in sorted(result.failed.items())[:20]:
            print(f"  failed {path}: {reason}", file=sys.stderr)
        print(f"{len(result.failed)} znodes could not be written", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _guarded(action: Callable[[argparse.Namespace, KubeApi], int]) -> Callable[..., int]:
    """Run an action: every failure becomes one line on stderr and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        if args.namespace is None:
            args.namespace = _default_namespace()
        try:
            return action(args, _api())
        except InputError as error:
            print(f"zk-migrate {args.action}: {error}", file=sys.stderr)
        except CliError as error:
            print(f"zk-migrate {args.action}: {error}", file=sys.stderr)
        except ApiError as error:
            print(f"zk-migrate {args.action}: {api_error_words(error)}", file=sys.stderr)
        except httpx.HTTPError as error:
            print(
                f"zk-migrate {args.action}: cannot reach the Kubernetes API: {error}",
                file=sys.stderr,
            )
        except ValueError as error:  # e.g. a status or cluster this version cannot read
            print(f"zk-migrate {args.action}: {error}".splitlines()[0], file=sys.stderr)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        return EXIT_ERROR

    return run


# ---------------------------------------------------------------- parser


def _phase_number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a phase number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"a phase number from {low} to {high}, not {value}")
        return value

    return parse


def add_zk_migrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "zk-migrate",
        help="start, watch, approve, roll back and report ZkMigrations",
        description="Drive ZkMigration objects through the Kubernetes API (docs/zk-migration.md).",
    )
    actions = parser.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        sub.add_argument("name", help="the ZkMigration's name")
        sub.add_argument(
            "-n", "--namespace", help="default: the kubeconfig context's namespace, else default"
        )
        return sub

    start = action("start", "create a ZkMigration (or, with --dry-run, print its plan)")
    start.add_argument("--cluster", required=True, help="the MesosCluster to move")
    target = start.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-connect", metavar="HOSTS", help="ensemble B: host:port,...")
    target.add_argument(
        "--target-managed-replicas",
        metavar="N",
        type=int,
        help="ensemble B made by the operator, with N servers (1, 3, 5 or 7)",
    )
    start.add_argument(
        "--target-managed-tls-secret",
        metavar="SECRET",
        help="ensemble B's TLS (target.managed.tls): needed when the cluster's ensemble has tls",
    )
    start.add_argument(
        "--source", metavar="HOSTS", help="ensemble A (default: the one the cluster uses now)"
    )
    start.add_argument(
        "--path", action="append", dest="paths", metavar="P",
        help="subtree to move, repeatable (default: /mesos and /marathon)",
    )  # fmt: skip
    start.add_argument(
        "--manual", action="store_true", help="each phase waits for `zk-migrate advance`"
    )
    start.add_argument(
        "--strategy", choices=["SourceWins", "LastWriteWins", "Manual"], default="SourceWins",
        help="sync conflict strategy (default SourceWins)",
    )  # fmt: skip
    start.add_argument("--retention", help="how long A's archive is kept, e.g. 72h (default)")
    start.add_argument(
        "--dry-run", action="store_true",
        help="print the plan and have the server validate the object; create nothing",
    )  # fmt: skip
    start.add_argument("--wait", action="store_true", help="then watch it until it ends")
    start.set_defaults(func=_guarded(_start))

    status = action("status", "phases, checks, sync and leader of a ZkMigration")
    status.add_argument("--watch", action="store_true", help="refresh every second until done")
    status.add_argument("--json", action="store_true", help="print status as JSON")
    status.set_defaults(func=_guarded(_status))

    advance = action("advance", "Manual approval: let phases up to N run")
    advance.add_argument(
        "--through", type=_phase_number(1, 6), metavar="N", help="default: the current phase"
    )
    advance.set_defaults(func=_guarded(_advance))

    rollback = action("rollback", "undo the phases after K (or cancel a rollback)")
    which = rollback.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--to", type=_phase_number(0, 5), metavar="K", help="0: all the way back to A"
    )
    which.add_argument("--cancel", action="store_true", help="clear rollbackToPhase")
    rollback.set_defaults(func=_guarded(_rollback))

    validate = action("validate", "exit 0 when the current phase's checks all pass")
    validate.set_defaults(func=_guarded(_validate))

    report = action("report", "the final report (exit 1 while not Succeeded)")
    report.add_argument("--json", action="store_true", help="a JSON document")
    report.set_defaults(func=_guarded(_report))

    restore = action("restore", "write ensemble A's archive (phase 6) back onto an ensemble")
    restore.add_argument(
        "--to", metavar="HOSTS", help="default: ensemble A, the migration's source"
    )
    restore.add_argument(
        "--overwrite", action="store_true",
        help="also overwrite znodes whose data or ACL differ (default: keep them, list them)",
    )  # fmt: skip
    restore.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    restore.set_defaults(func=_guarded(_restore))
    return parser
