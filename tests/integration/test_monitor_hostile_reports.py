"""Hostile probe reports against a real app process (issue 17, point 9): each is refused with
a 4xx and merges nothing, the app keeps answering, and its peak memory is printed (the figure
in docs/security.md; it is not asserted, the 4xx and the working app afterwards are).

Run with -s to see the figures:
    .venv/bin/pytest -s -q tests/integration/test_monitor_hostile_reports.py
"""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from orchestrator_operator.monitor.report import encode_report
from testenv.monitor_app import MonitorAppProcess
from testenv.synthetic_reports import synthetic_report

TOKEN = "hostile-test-token"


def memory_mib(pid: int) -> tuple[float, float]:
    """The process's resident set now and at its peak (VmRSS, VmHWM), MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def valid(probe: str, **container_fields: Any) -> dict[str, Any]:
    report = synthetic_report(0, 1, containers=3, processes=20, connections=20)
    data: dict[str, Any] = json.loads(encode_report(report))
    data["probe_id"] = probe
    data["containers"][0].update(container_fields)
    return data


def hostile_reports() -> list[tuple[str, str]]:
    """(what, JSON text); each gzipped decompresses to at most the app's 64 MiB limit."""
    many = valid("many-labels")
    many["containers"][0]["labels"] = {f"label-{i}": "v" for i in range(200_000)}
    wide = valid("many-containers")
    wide["containers"] = [
        {"id": f"{i:064x}", "name": f"c{i}", "labels": {f"k{j}": "v" * 64 for j in range(200)}}
        for i in range(1000)
    ]
    deep = b'{"probe_id": "deep", "host": {"hostname": "h"}, "timestamp": 0, "x": '
    deep += b"[" * 1_000_000 + b"]" * 1_000_000 + b"}"
    huge = json.dumps(valid("huge-int")).replace('"pid": 1000', '"pid": ' + "9" * 4000)
    return [
        ("a 60 MiB label", json.dumps(valid("big-label", labels={"x": "y" * (60 << 20)}))),
        ("200,000 labels", json.dumps(many)),
        ("1,000 containers of 200 labels", json.dumps(wide)),
        ("a 4,000-digit integer", huge),
        ("a 10^400 memory figure", json.dumps(valid("overflow", memory_usage=10**400))),
        ("a million nested arrays", deep.decode()),
    ]


def post(url: str, body: bytes) -> int:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    with httpx.Client(timeout=120) as client:
        return client.post(f"{url}/api/report", content=body, headers=headers).status_code


def test_hostile_reports_are_refused_and_memory_stays_bounded(tmp_path: Path) -> None:
    cases = [(what, gzip.compress(body.encode(), 1)) for what, body in hostile_reports()]
    with MonitorAppProcess(tmp_path, TOKEN) as app, app.client(timeout=120) as client:
        pid = app.pid
        assert pid is not None
        good = gzip.compress(encode_report(synthetic_report(1, 2, containers=20)))
        assert post(app.url, good) == 200
        assert client.get("/api/topology/containers").status_code == 200
        baseline, _ = memory_mib(pid)

        # each alone, then all of them eight at a time, three rounds
        for what, body in cases:
            status = post(app.url, body)
            assert 400 <= status < 500, (what, status)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda c: (c[0], post(app.url, c[1])), cases * 3))
        refused = [(what, status) for what, status in statuses if not 400 <= status < 500]
        assert not refused, refused

        # nothing merged, and the app still merges and answers
        assert client.get("/healthz").json()["probes"] == 1
        later = gzip.compress(encode_report(synthetic_report(2, 3, containers=20)))
        assert post(app.url, later) == 200
        for topology in ("hosts", "containers", "processes", "pods", "services"):
            r = client.get(f"/api/topology/{topology}")
            assert r.status_code == 200, (topology, r.text[:200])
        nodes = client.get("/api/topology/containers").json()["nodes"]
        assert len(nodes) == 40
        assert client.get("/api/search", params={"q": "host-2"}).json()["results"]
        metrics = client.get("/metrics").text
        assert 'orchestrator_monitor_reports_rejected_total{reason="invalid"}' in metrics

        rss, peak = memory_mib(pid)
        sizes = ", ".join(f"{what}: {len(body) >> 10} KiB gzip" for what, body in cases)
        print(
            f"\nhostile reports ({len(cases) * 4} posts, {sizes}): app RSS {baseline:.0f} MiB "
            f"before, {rss:.0f} MiB after, peak {peak:.0f} MiB"
        )
