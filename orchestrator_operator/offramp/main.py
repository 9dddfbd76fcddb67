"""`orchestrator marathon import|plan` (docs/offramp.md, "Import" and "Readiness report").

Both read every app of a live Marathon: the leading Marathon of a MesosCluster, found as the
operator finds it (the cluster's leader latch in ZooKeeper, its Marathon credentials;
operator/marathonapp/observe.py), or `--marathon URL` for a Marathon outside the operator
(credentials from `--credentials-file`, one line user:password, never in argv).

- `import --out DIR` writes one MarathonApp manifest per app (offramp/manifest.py), named
  after the app id; `--dry-run` writes nothing and prints what would be new or changed in
  DIR, with a diff.
- `plan` prints the readiness report (operator/marathonapp/readiness.py): a table, each
  app's findings in words, or `--json`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from orchestrator_operator.common.kube_api import ApiError
from orchestrator_operator.mesos.marathon_api import (
    MarathonClient,
    MarathonError,
    parse_credentials,
)
from orchestrator_operator.offramp.manifest import Imported, build_all
from orchestrator_operator.operator.marathonapp.readiness import needs_person, summary

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
MAX_CREDENTIALS_BYTES = 4096


class CliError(Exception):
    """An error already put in words for the user."""


def _default_namespace() -> str:
    try:
        from kubernetes.config import list_kube_config_contexts

        _, active = list_kube_config_contexts()  # type: ignore[no-untyped-call]
        return str((active or {}).get("context", {}).get("namespace") or "default")
    except Exception:  # no kubeconfig: --marathon needs none; the API call says what is wrong
        return "default"


def _client(args: argparse.Namespace) -> MarathonClient:
    if args.marathon:
        credentials = None
        if args.credentials_file:
            path = Path(args.credentials_file)
            try:
                text = path.read_bytes()[: MAX_CREDENTIALS_BYTES + 1]
            except OSError as error:
                raise CliError(f"cannot read {path}: {error.strerror}") from None
            if len(text) > MAX_CREDENTIALS_BYTES:
                raise CliError(f"{path}: more than {MAX_CREDENTIALS_BYTES} bytes")
            try:
                credentials = parse_credentials(text.decode("utf-8", "replace"))
            except ValueError as error:
                raise CliError(f"{path}: {error}") from None
        if not args.marathon.startswith(("http://", "https://")):
            raise CliError(f"--marathon: an http:// or https:// URL, not {args.marathon!r}")
        return MarathonClient(args.marathon, credentials, timeout=15.0)
    from orchestrator_operator.operator.marathonapp.observe import Unobservable, find_marathon

    try:
        return find_marathon(args.namespace, args.cluster).client
    except Unobservable as error:
        raise CliError(f"the Marathon of MesosCluster {args.cluster}: {error.message}") from None


def _read_apps(args: argparse.Namespace) -> list[Imported]:
    client = _client(args)
    apps = client.list_apps()
    return build_all(apps, args.cluster, args.namespace)


def _import(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: not a directory")
    items = _read_apps(args)
    written = {i.file_name for i in items if i.text is not None}
    counts = {"new": 0, "changed": 0, "unchanged": 0}
    for item in items:
        if item.text is None:
            print(f"skipped   {item.app_id}: {item.problem}")
            continue
        path = out / item.file_name
        before = path.read_text() if path.is_file() else None
        state = "new" if before is None else "unchanged" if before == item.text else "changed"
        counts[state] += 1
        verb = {"new": "new      ", "changed": "changed  ", "unchanged": "unchanged"}[state]
        if args.dry_run:
            print(f"{verb} {path} ({item.app_id}, {item.readiness.verdict})")
            if before is not None and state == "changed":
                sys.stdout.writelines(
                    difflib.unified_diff(
                        before.splitlines(keepends=True), item.text.splitlines(keepends=True),
                        str(path), f"{path} (from Marathon)",
                    )
                )  # fmt: skip
            elif before is None and args.verbose:
                print(item.text)
        else:
            if state != "unchanged":
                out.mkdir(parents=True, exist_ok=True)
                path.write_text(item.text)
            print(f"{verb} {path} ({item.app_id}, {item.readiness.verdict})")
        if item.changes:
            print(f"          applying it changes {', '.join(item.changes)} in Marathon")
    if out.is_dir():
        for stale in sorted(out.glob("*.yaml")):
            if stale.name not in written and _imported(stale):
                print(f"gone      {stale}: its app is not in Marathon any more (left alone)")
    secrets = [i for i in items if i.secret_keys]
    verb = "would write" if args.dry_run else "wrote"
    print(
        f"{verb} {counts['new']} new, {counts['changed']} changed,"
        f" {counts['unchanged']} unchanged; {sum(1 for i in items if i.text is None)} skipped"
    )
    for item in secrets:
        print(
            f"NEEDS A PERSON: Secret {item.secret_name} (namespace {args.namespace}) with"
            f" {', '.join(item.secret_keys)} for {item.app_id}: see the comment in"
            f" {item.file_name}"
        )
    return EXIT_OK


def _imported(path: Path) -> bool:
    try:
        with path.open() as handle:
            return "by orchestrator marathon import" in handle.readline()
    except OSError:
        return False


def report_rows(items: list[Imported]) -> list[dict[str, Any]]:
    return [
        {
            **item.readiness.as_status(),
            "name": item.name,
            "file": item.file_name if item.text is not None else None,
        }
        for item in items
    ]


def plan_text(items: list[Imported]) -> str:
    """The report: a table (app, verdict, what needs a person), then each app's findings."""
    rows = [("APP", "VERDICT", "NEEDS A PERSON")]
    for item in items:
        named = list(dict.fromkeys(str(f.feature) for f in needs_person(item.readiness)))
        rows.append((item.app_id, str(item.readiness.verdict), ", ".join(named) or "-"))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}".rstrip() for r in rows]
    verdicts = [str(i.readiness.verdict) for i in items]
    lines.append("")
    lines.append(
        f"{len(items)} apps: {verdicts.count('Ready')} Ready, {verdicts.count('NeedsReview')}"
        f" NeedsReview, {verdicts.count('Blocked')} Blocked"
    )
    for item in items:
        lines.append("")
        lines.append(f"{item.app_id} ({summary(item.readiness)})")
        for finding in item.readiness.findings:
            lines.append(f"  [{finding.severity}] {finding.feature}: {finding.message}")
        if not item.readiness.findings:
            lines.append("  nothing to say: a plain process with resources")
    return "\n".join(lines)


def _plan(args: argparse.Namespace) -> int:
    items = _read_apps(args)
    if args.json:
        print(json.dumps({"cluster": args.cluster, "apps": report_rows(items)}, indent=2))
    else:
        print(plan_text(items))
    return EXIT_OK


def _guarded(action: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Every failure becomes one line on stderr and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        if args.namespace is None:
            args.namespace = _default_namespace()
        name = f"marathon {args.action}"
        try:
            return action(args)
        except CliError as error:
            print(f"{name}: {error}", file=sys.stderr)
        except MarathonError as error:
            print(f"{name}: Marathon: {error}", file=sys.stderr)
        except ApiError as error:
            print(f"{name}: the Kubernetes API refused: {error}".splitlines()[0], file=sys.stderr)
        except httpx.HTTPError as error:
            print(f"{name}: cannot reach the Kubernetes API: {error}", file=sys.stderr)
        except OSError as error:
            print(f"{name}: {error}", file=sys.stderr)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        return EXIT_ERROR

    return run


def add_marathon_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "marathon",
        help="import a live Marathon's apps as MarathonApp manifests; the readiness report",
        description="The off-ramp from Marathon (docs/offramp.md).",
    )
    actions = parser.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        sub.add_argument("--cluster", required=True, help="the MesosCluster running the apps")
        sub.add_argument(
            "-n", "--namespace", help="default: the kubeconfig context's namespace, else default"
        )
        sub.add_argument(
            "--marathon", metavar="URL",
            help="read this Marathon instead of the cluster's leader (one outside the operator)",
        )  # fmt: skip
        sub.add_argument(
            "--credentials-file", metavar="PATH",
            help="with --marathon: a file holding user:password for Marathon's HTTP auth",
        )  # fmt: skip
        return sub

    imp = action("import", "write one MarathonApp manifest per app into --out")
    imp.add_argument("--out", required=True, metavar="DIR", help="the directory (git) to write")
    imp.add_argument(
        "--dry-run", action="store_true", help="write nothing: print what would change, a diff"
    )
    imp.add_argument("-v", "--verbose", action="store_true", help="dry-run: print new files too")
    imp.set_defaults(func=_guarded(_import))
    plan = action("plan", "the readiness report: how each app translates to Kubernetes")
    plan.add_argument("--json", action="store_true", help="machine-readable")
    plan.set_defaults(func=_guarded(_plan))
    return parser
