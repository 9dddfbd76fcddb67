"""The chaos and soak report from the records the scenarios append ($CHAOS_REPORT, JSON lines):

    python -m tests.chaos.report .chaos/report.jsonl [--title T] [--command C] > report.md

One table row per scenario x fault kind (runs, invariant violations charged to it, recovery
p50/p99), the invariants checked per scenario (samples, violations), and the resident memory
of each sampled process, first and last sample (growth over the run)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def cell(text: object) -> str:
    """A markdown table cell: a `|` in a fault's name would split it."""
    return str(text).replace("|", "\\|")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[index]


def load(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def render(records: list[dict[str, Any]], title: str, command: str) -> str:
    runs = [r for r in records if r["type"] == "run"]
    faults = [r for r in records if r["type"] == "fault"]
    violations = [r for r in records if r["type"] == "violation"]
    seeds = sorted({r["seed"] for r in runs})
    seconds = sum(float(r["seconds"]) for r in runs)
    out = [
        f"### {title}",
        "",
        f"Command: `{command}`; seeds {', '.join(map(str, seeds)) or '-'}; "
        f"{len(runs)} scenario runs, {seconds / 60:.1f} min of scenario time, "
        f"{len(faults)} faults, {len(violations)} invariant violations.",
        "",
        "| scenario | fault | runs | violations | recovery p50 (s) | recovery p99 (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    by_kind: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for fault in faults:
        by_kind[(fault["scenario"], fault["kind"])].append(fault)
    charged: dict[tuple[str, str], int] = defaultdict(int)
    uncharged: dict[str, int] = defaultdict(int)
    for v in violations:
        match = [
            f
            for f in faults
            if f["scenario"] == v["scenario"]
            and f.get("started_at", 0)
            <= v["at"]
            <= f.get("ended_at", 0) + (f["recovery_seconds"] or 90)
        ]
        if match:
            charged[(match[-1]["scenario"], match[-1]["kind"])] += 1
        else:
            uncharged[v["scenario"]] += 1
    for (scenario, kind), items in sorted(by_kind.items()):
        recovered = [
            float(f["recovery_seconds"]) for f in items if f["recovery_seconds"] is not None
        ]
        p50 = f"{percentile(recovered, 50):.1f}" if recovered else "-"
        p99 = f"{percentile(recovered, 99):.1f}" if recovered else "-"
        not_back = len(items) - len(recovered)
        note = f" ({not_back} not recovered)" if not_back else ""
        out.append(
            f"| {cell(scenario)} | {cell(kind)} | {len(items)} | {charged[(scenario, kind)]}{note} "
            f"| {p50} | {p99} |"
        )
    out += [
        "",
        "| scenario | invariant (or count) | samples (or value) | violations |",
        "| --- | --- | ---: | ---: |",
    ]
    samples: dict[tuple[str, str], int] = defaultdict(int)
    for run in runs:
        for name, count in run["samples"].items():
            samples[(run["scenario"], name)] += int(count)
    broken: dict[tuple[str, str], int] = defaultdict(int)
    for v in violations:
        broken[(v["scenario"], v["invariant"])] += 1
    for key in sorted(set(samples) | set(broken)):
        out.append(
            f"| {cell(key[0])} | {cell(key[1])} | {samples.get(key, 0)} | {broken.get(key, 0)} |"
        )
    if violations:
        out += ["", "Violations:", ""]
        out += [f"- {v['scenario']}: {v['invariant']}: {v['detail'][:400]}" for v in violations]
    resources = [r for r in records if r["type"] == "resource" and r["rss"]]
    if resources:
        out += [
            "",
            "| scenario | process | first RSS (MiB) | last RSS (MiB) | growth | over (min) |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for r in resources:
            (t0, first), (t1, last) = r["rss"][0], r["rss"][-1]
            growth = (last - first) / first * 100 if first else 0.0
            out.append(
                f"| {cell(r['scenario'])} | {cell(r['process'])} "
                f"| {first / 2**20:.1f} | {last / 2**20:.1f} "
                f"| {growth:+.0f}% | {(t1 - t0) / 60:.1f} |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--title", default="Chaos run")
    parser.add_argument("--command", default="make chaos")
    args = parser.parse_args(argv)
    records = load(args.records)
    sys.stdout.write(render(records, args.title, args.command))
    return 1 if any(r["type"] == "violation" for r in records) else 0


if __name__ == "__main__":
    raise SystemExit(main())
