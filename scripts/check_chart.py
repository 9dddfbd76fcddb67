"""`make lint`'s chart check: `helm lint` of charts/orchestrator, then for each setting the
objects `helm template` renders compared with what `kubectl kustomize` renders for the same
setting (parsed objects, not text).

Each case pairs a values file of charts/orchestrator/ci/ with kustomize directories (and
the kinds taken from each). The only differences allowed are Helm's own bookkeeping: the
labels helm.sh/chart, app.kubernetes.io/managed-by and app.kubernetes.io/instance on each
object's metadata, and the annotation helm.sh/resource-policy (CRDs kept on uninstall).

    python scripts/check_chart.py                     # lint and every case
    python scripts/check_chart.py --values FILE --kustomize DIR [--kustomize DIR:Kind,Kind]

helm comes from scripts/build-helm.sh, kubectl from testenv/build.sh (both cached).
Exit status 1 and the differences on stderr when a case differs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "orchestrator"
RELEASE = "orchestrator"
NAMESPACE = "orchestrator-system"
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")
HELM_ANNOTATIONS = ("helm.sh/resource-policy",)


@dataclass(frozen=True)
class Source:
    """A kustomize directory and the kinds taken from it (None: all)."""

    directory: str
    kinds: frozenset[str] | None = None

    @classmethod
    def parse(cls, text: str) -> Source:
        directory, _, kinds = text.partition(":")
        return cls(directory, frozenset(kinds.split(",")) if kinds else None)


@dataclass(frozen=True)
class Case:
    values: str  # relative to the chart
    sources: tuple[Source, ...]


CASES = (
    # the chart always has the admission policies, which every overlay adds to k8s/base
    Case("ci/base-values.yaml", (Source("k8s/base"), Source("k8s/admission"))),
    Case("ci/dev-values.yaml", (Source("k8s/overlays/dev"),)),
    Case("ci/staging-values.yaml", (Source("k8s/overlays/staging"),)),
    Case("ci/prod-values.yaml", (Source("k8s/overlays/prod"),)),
    Case("ci/namespaced-values.yaml", (Source("k8s/overlays/namespaced"),)),
    Case("ci/restricted-values.yaml", (Source("k8s/overlays/restricted"),)),
    Case(
        "ci/monitoring-values.yaml",
        (
            Source("k8s/base"),
            Source("k8s/admission"),
            Source("deploy/monitoring", frozenset({"ServiceMonitor", "PrometheusRule"})),
        ),
    ),
)


def _tool(script: str) -> Path:
    result = subprocess.run(["bash", str(REPO / script)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{script} failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def helm_binary() -> Path:
    return _tool("scripts/build-helm.sh")


def kubectl_binary() -> Path:
    return _tool("testenv/build.sh") / "kubectl"


def _run(command: Sequence[str | Path], what: str) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if result.returncode != 0:
        raise CheckError(f"{what} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


class CheckError(Exception):
    pass


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _key(document: dict[str, Any]) -> str:
    meta = document.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{document.get('kind')} {where}{meta.get('name')}"


def _without_helm_bookkeeping(document: dict[str, Any]) -> dict[str, Any]:
    meta = document.get("metadata", {})
    for field, keys in (("labels", HELM_LABELS), ("annotations", HELM_ANNOTATIONS)):
        values = meta.get(field)
        if isinstance(values, dict):
            for key in keys:
                values.pop(key, None)
            if not values:
                del meta[field]
    return document


def helm_objects(helm: Path, values: Iterable[Path], *sets: str) -> dict[str, dict[str, Any]]:
    command: list[str | Path] = [helm, "template", RELEASE, CHART, "--namespace", NAMESPACE]
    for path in values:
        command += ["--values", path]
    for assignment in sets:
        command += ["--set", assignment]
    text = _run(command, "helm template")
    return {_key(d): _without_helm_bookkeeping(d) for d in _documents(text)}


def kustomize_objects(kubectl: Path, sources: Iterable[Source]) -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    for source in sources:
        text = _run([kubectl, "kustomize", REPO / source.directory], f"kustomize {source}")
        for document in _documents(text):
            if source.kinds is None or document.get("kind") in source.kinds:
                objects[_key(document)] = document
    return objects


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Where two parsed objects differ, as 'path: left != right' lines."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(set(left) | set(right), key=str):
            where = f"{path}.{key}"
            if key not in right:
                found.append(f"{where}: only in helm")
            elif key not in left:
                found.append(f"{where}: only in kustomize")
            else:
                found += differences(left[key], right[key], where)
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        pairs = enumerate(zip(left, right, strict=True))
        return [d for i, (a, b) in pairs for d in differences(a, b, f"{path}[{i}]")]
    if left != right:
        return [f"{path}: helm {left!r} != kustomize {right!r}"]
    return []


def compare(helm: dict[str, dict[str, Any]], kustomize: dict[str, dict[str, Any]]) -> list[str]:
    found = [f"{k}: rendered by helm only" for k in sorted(set(helm) - set(kustomize))]
    found += [f"{k}: rendered by kustomize only" for k in sorted(set(kustomize) - set(helm))]
    for key in sorted(set(helm) & set(kustomize)):
        found += [f"{key}: {d}" for d in differences(helm[key], kustomize[key])]
    return found


def check_case(helm: Path, kubectl: Path, case: Case, *sets: str) -> list[str]:
    rendered = helm_objects(helm, [CHART / case.values], *sets)
    return compare(rendered, kustomize_objects(kubectl, case.sources))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", help="a values file (default: every case of CASES)")
    parser.add_argument("--kustomize", action="append", default=[], metavar="DIR[:Kind,...]")
    parser.add_argument("--set", action="append", default=[], help="passed to helm template")
    args = parser.parse_args(argv)
    if bool(args.values) != bool(args.kustomize):
        parser.error("--values and --kustomize go together")
    cases = (
        [Case(str(Path(args.values).resolve()), tuple(map(Source.parse, args.kustomize)))]
        if args.values
        else list(CASES)
    )
    helm, kubectl = helm_binary(), kubectl_binary()
    failed = False
    try:
        if not args.values:
            _run([helm, "lint", "--strict", CHART], "helm lint")
            for case in CASES:
                _run([helm, "lint", "--strict", CHART, "--values", CHART / case.values],
                     f"helm lint --values {case.values}")  # fmt: skip
        for case in cases:
            found = check_case(helm, kubectl, case, *args.set)
            names = " + ".join(str(s.directory) for s in case.sources)
            if found:
                failed = True
                print(f"chart: {case.values} differs from kustomize {names}:", file=sys.stderr)
                for line in found:
                    print(f"  {line}", file=sys.stderr)
            else:
                print(f"chart: {case.values} renders the same objects as kustomize {names}")
    except CheckError as error:
        print(f"chart: {error}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
