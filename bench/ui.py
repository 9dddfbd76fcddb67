"""Benchmark of the web UI in headless Chromium (playwright-core, ui/bench/graph.mjs).

For each size, a real app process (`orchestrator app --ui-dist`) is fed
synthetic probe reports (testenv/synthetic_reports.py; 20 containers per
probe, connections between containers of different probes) and the browser opens the
containers view:

1. navigation -> first draw and -> laid out (the layout's positions are final and the next
   frame is drawn), median and 95th percentile of ``--runs`` page loads, for the packed
   layout (the UI's default) and, page load by page load in the same run, the baseline:
   ForceAtlas2 in a web worker until it settles or its time budget runs out
   (``?layout=forceatlas2``, the layout before); each run says whether it settled. The
   ceiling is the first draw (the graph drawn with no layout to wait for);
2. (first size only) a report that stops one container -> its new colour drawn on screen
   (report POST to the ``afterRender`` of sigma that shows it), per sample.

Needs ``npm ci`` in ui/ and Debian's chromium. Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator_operator.monitor.app.topology import container_id  # noqa: E402
from orchestrator_operator.monitor.report import encode_report  # noqa: E402
from testenv.monitor_app import MonitorAppProcess, build_ui  # noqa: E402
from testenv.synthetic_reports import synthetic_report  # noqa: E402

TOKEN = "bench-ui-token"
UI = REPO / "ui"
CONTAINERS = 20  # per probe
CONNECTIONS = 135  # per probe: ~3 container edges per container node


def report_body(i: int, fleet: int, stopped: int | None = None) -> bytes:
    rep = synthetic_report(
        i, fleet, containers=CONTAINERS, processes=CONTAINERS + 10, connections=CONNECTIONS
    )
    if stopped is not None:
        c = rep.containers[stopped]
        c.state = "exited"
        c.status = "Exited (0) 1 second ago"
    return gzip.compress(encode_report(rep), 5)


def post(url: str, body: bytes) -> None:
    req = urllib.request.Request(
        f"{url}/api/report",
        data=body,
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()


def get_json(url: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def p95(values: list[float]) -> float:
    """The 95th percentile, nearest rank (of 10 to 20 page loads: the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def bench_size(
    dist: Path, probes: int, runs: int, diff_samples: int, layouts: list[str]
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-ui-app-") as logs,
        MonitorAppProcess(Path(logs), TOKEN, ui_dist=dist, probe_ttl=100000) as app,
    ):
        url = app.url
        t0 = time.monotonic()
        for i in range(probes):
            post(url, report_body(i, probes))
        feed_s = time.monotonic() - t0
        topo = get_json(f"{url}/api/topology/containers")["nodes"]
        edges = sum(len(n.get("adjacency", [])) for n in topo.values())
        cmd = ["node", "bench/graph.mjs", "--url", url, "--token", TOKEN, "--runs", str(runs),
               "--layouts", ",".join(layouts)]  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
            ids: list[str] = []
            for k in range(diff_samples):
                # probe 0 reports container k stopped (and the ones before it still stopped)
                rep = synthetic_report(
                    0,
                    probes,
                    containers=CONTAINERS,
                    processes=CONTAINERS + 10,
                    connections=CONNECTIONS,
                )
                for j in range(k + 1):
                    rep.containers[j].state = "exited"
                Path(tmp, f"{k}.json.gz").write_bytes(gzip.compress(encode_report(rep), 5))
                ids.append(container_id(rep.containers[k].id))
            if diff_samples:
                cmd += ["--diff-bodies", tmp, "--diff-ids", ",".join(ids)]
            r = subprocess.run(cmd, cwd=UI, capture_output=True, text=True, timeout=1800)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if r.returncode != 0 or not lines:
            raise SystemExit(f"graph.mjs failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        res: dict[str, Any] = json.loads(lines[-1])
        out: dict[str, Any] = {
            "probes": probes,
            "api_nodes": len(topo),
            "api_edges": edges,
            "feed_seconds": round(feed_s, 1),
            "runs": res["runs"],
        }
        for layout in layouts:
            mine = [x for x in res["runs"] if x["layout"] == layout]
            out[layout] = {
                "page_loads": len(mine),
                "first_draw_ms_median": statistics.median(x["firstDrawMs"] for x in mine),
                "first_draw_ms_p95": p95([x["firstDrawMs"] for x in mine]),
                "laid_out_ms_median": statistics.median(x["laidOutMs"] for x in mine),
                "laid_out_ms_p95": p95([x["laidOutMs"] for x in mine]),
                "laid_out_ms": [x["laidOutMs"] for x in mine],
                "settled": sum(1 for x in mine if x["settled"]),
            }
        if res["diffs"]:
            ms = [d["ms"] for d in res["diffs"]]
            out["diff_to_screen_ms"] = ms
            out["diff_to_screen_ms_median"] = statistics.median(ms)
            out["diff_to_screen_ms_max"] = max(ms)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50,500", help="probes per size (x20 containers)")
    parser.add_argument("--runs", type=int, default=10, help="page loads per size and layout")
    parser.add_argument("--diff-samples", type=int, default=5)
    parser.add_argument(
        "--layouts",
        default="packed,forceatlas2",
        help="layouts to compare, page load by page load (packed: the default; forceatlas2: "
        "the baseline)",
    )
    args = parser.parse_args()
    dist = build_ui()
    results: dict[str, Any] = {"bench": "ui", "cpus": os.cpu_count(), "sizes": []}
    for n, probes in enumerate(int(x) for x in args.sizes.split(",")):
        res = bench_size(
            dist, probes, args.runs, args.diff_samples if n == 0 else 0, args.layouts.split(",")
        )
        print(f"{probes} probes:", json.dumps(res, indent=1), flush=True)
        results["sizes"].append(res)
    print(json.dumps(results, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
