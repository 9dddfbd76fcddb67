"""`make lint`'s manifest misconfiguration scan (issue 17, point 13): Trivy's config scan,
with the checks compiled into the binary (no download: offline), over every manifest we
ship or make:

- `k8s/base` and each overlay, `deploy/argocd`, `deploy/monitoring`, `deploy/rollouts`, as
  `kubectl kustomize` renders them;
- the Helm chart as `helm template` renders it with each values file of `charts/orchestrator/ci`;
- the children the operator makes, as `orchestrator render` renders them for `examples/`
  and the fully featured MesosCluster of `scripts/scan/`.

Each object is written to its own file, `<source>/<kind>-<namespace>-<name>.yaml`, so that an
accepted finding in `.trivyignore.yaml` names the objects it is accepted for (`paths`), with
its one-line justification (`statement`). Any other finding fails the scan.

    python scripts/scan_manifests.py                 # scan, print the findings, exit 1 on any
    python scripts/scan_manifests.py --keep DIR      # also keep the rendered files in DIR

Trivy comes from scripts/build-trivy.sh, helm from scripts/build-helm.sh, kubectl from
testenv/build.sh (all cached).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
IGNORE_FILE = REPO / ".trivyignore.yaml"
KUSTOMIZE = (
    "k8s/base",
    "k8s/overlays/dev",
    "k8s/overlays/staging",
    "k8s/overlays/prod",
    "k8s/overlays/namespaced",
    "deploy/argocd",
    "deploy/monitoring",
    "deploy/rollouts",
)
CHART = REPO / "charts" / "orchestrator"
# (name, files): a ZkMigration renders with its MesosCluster
RENDERED = (
    (
        "examples-mesoscluster-zkmigration",
        ("examples/mesoscluster.yaml", "examples/zkmigration.yaml"),
    ),
    ("examples-probefleet", ("examples/probefleet.yaml",)),
    ("mesoscluster-full", ("scripts/scan/mesoscluster-full.yaml",)),
)
# CRDs are schemas, not workloads or policies: no check applies, and they are large.
SKIP_KINDS = frozenset({"CustomResourceDefinition"})


def _tool(script: str) -> Path:
    result = subprocess.run(["bash", str(REPO / script)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{script} failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _run(command: Sequence[str | Path], what: str) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"{what} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-") or "none"


def sources(kubectl: Path, helm: Path) -> Iterator[tuple[str, str]]:
    """(source name, multi-document YAML) for everything scanned."""
    for directory in KUSTOMIZE:
        yield directory, _run([kubectl, "kustomize", REPO / directory], f"kustomize {directory}")
    for values in sorted((CHART / "ci").glob("*.yaml")):
        yield (
            f"chart-{values.stem}",
            _run(
                [helm, "template", "orchestrator", CHART, "--namespace", "orchestrator-system",
                 "--values", values],
                f"helm template with {values.name}",
            ),
        )  # fmt: skip
    orchestrator = Path(sys.executable).parent / "orchestrator"
    for name, files in RENDERED:
        flags = [part for file in files for part in ("-f", REPO / file)]
        yield (
            f"render-{name}",
            _run([orchestrator, "render", *flags], f"orchestrator render {name}"),
        )


def write_objects(name: str, text: str, out: Path) -> int:
    """One file per object under out/<source>/; the number written."""
    folder = out / _slug(name.replace("/", "-"))
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for document in yaml.safe_load_all(text):
        if not isinstance(document, dict) or document.get("kind") in SKIP_KINDS:
            continue
        meta = document.get("metadata") or {}
        stem = "-".join(
            _slug(str(part))
            for part in (
                document.get("kind", "?"),
                meta.get("namespace", "cluster"),
                meta.get("name"),
            )
        )
        path = folder / f"{stem}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        count += 1
    return count


def scan(trivy: Path, target: Path, cache: Path) -> list[dict[str, Any]]:
    """Trivy's failures (not ignored) as its JSON `Misconfigurations` entries, each with its
    file under `Target`."""
    command: list[str | Path] = [
        trivy, "config", "--quiet", "--format", "json",
        "--misconfig-scanners", "kubernetes",
        "--skip-check-update",  # the checks compiled into the binary: nothing is downloaded
        "--disable-telemetry",
        "--cache-dir", cache,
        "--ignorefile", IGNORE_FILE,
        target,
    ]  # fmt: skip
    report = json.loads(_run(command, "trivy config"))
    failures = []
    for result in report.get("Results") or []:
        for finding in result.get("Misconfigurations") or []:
            if finding.get("Status") == "FAIL":
                failures.append({**finding, "Target": result.get("Target", "?")})
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the rendered objects here and keep them")
    args = parser.parse_args(argv)
    trivy = _tool("scripts/build-trivy.sh")
    helm = _tool("scripts/build-helm.sh")
    kubectl = _tool("testenv/build.sh") / "kubectl"
    work = Path(tempfile.mkdtemp(prefix="scan-manifests-"))
    try:
        out = args.keep or work / "objects"
        if args.keep:
            shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        objects = sum(write_objects(name, text, out) for name, text in sources(kubectl, helm))
        started = time.monotonic()
        failures = scan(trivy, out, trivy.parent.parent / "cache")
        took = time.monotonic() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in sorted(failures, key=lambda f: (f["Target"], f.get("ID", ""))):
        print(
            f"{f['Target']}: {f.get('ID')} {f.get('Severity')} {f.get('Title')}: {f.get('Message')}"
        )
    print(
        f"scan_manifests: {objects} objects, {len(failures)} findings not accepted in "
        f"{IGNORE_FILE.name} (trivy {took:.1f} s)",
        file=sys.stderr,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
