"""The app's ingest path over real HTTP: token auth, size limits, validation, counters, and
diffs on the WebSocket after a report."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp, Rejected
from orchestrator_operator.monitor.report import encode_report
from testenv.synthetic_reports import synthetic_report
from tests.fixtures.monitor import MonitorHarness, quote

TOKEN = "write-token"
READ_TOKEN = "read-token"


@pytest.fixture(scope="module")
def harness() -> Iterator[MonitorHarness]:
    h = MonitorHarness(
        AppConfig(
            token=TOKEN,
            read_only_token=READ_TOKEN,
            max_report_bytes=256 * 1024,
            max_decompressed_bytes=1024 * 1024,
        )
    ).start()
    try:
        yield h
    finally:
        h.stop()


def rejected(metrics_text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("orchestrator_monitor_reports_rejected_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


def post(h: MonitorHarness, body: bytes, headers: dict[str, str]) -> int:
    with httpx.Client(base_url=h.base_url, timeout=60) as c:
        return c.post("/api/report", content=body, headers=headers).status_code


def test_bad_reports_are_refused_counted_and_change_nothing(harness: MonitorHarness) -> None:
    good = encode_report(synthetic_report(0, 2, containers=3, processes=10, connections=20))
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert post(harness, gzip.compress(good), {**auth, "Content-Encoding": "gzip"}) == 200
    with harness.client() as c:
        before = c.get("/api/topology/containers").json()
        before_procs = c.get("/api/topology/processes").json()
        counts_before = rejected(c.get("/metrics").text)
    assert len(before["nodes"]) == 3

    other = msgspec.structs.replace(synthetic_report(1, 2), probe_id="intruder")
    big = msgspec.json.encode({"probe_id": "x", "pad": "x" * (300 * 1024)})
    bomb = gzip.compress(b"[" + b" " * (2 * 1024 * 1024) + b"]")
    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("unauthorized", encode_report(other), {"Content-Type": "application/json"}, 401),
        ("unauthorized", encode_report(other), {"Authorization": "Bearer nope"}, 401),
        # a valid token without the probe role: 403 (it was 401 when tokens had no roles)
        ("unauthorized", encode_report(other), {"Authorization": f"Bearer {READ_TOKEN}"}, 403),
        ("malformed", b"{this is not json", auth, 400),
        ("invalid", b'{"probe_id": 1, "host": {"hostname": "h"}, "timestamp": 0}', auth, 422),
        ("invalid", b'{"probe_id": "", "host": {"hostname": "h"}, "timestamp": 0}', auth, 422),
        ("too_large", big, auth, 413),
        ("too_large", bomb, {**auth, "Content-Encoding": "gzip"}, 413),
        ("bad_encoding", b"not gzip at all", {**auth, "Content-Encoding": "gzip"}, 400),
    ]
    expected: dict[str, int] = {}
    for reason, body, headers, status in cases:
        assert post(harness, body, headers) == status, reason
        expected[reason] = expected.get(reason, 0) + 1

    with harness.client() as c:
        after = c.get("/api/topology/containers").json()
        after_procs = c.get("/api/topology/processes").json()
        counts_after = rejected(c.get("/metrics").text)
        probes = c.get("/healthz").json()["probes"]
    assert after == before
    assert after_procs == before_procs
    assert probes == 1
    for reason, n in expected.items():
        assert counts_after[reason] - counts_before[reason] == n, reason


def test_reads_need_a_token_and_controls_the_write_token(harness: MonitorHarness) -> None:
    with harness.client("wrong") as c:
        assert c.get("/api/topology").status_code == 401
    with harness.client(READ_TOKEN) as c:
        topologies = c.get("/api/topology").json()
        assert {t["name"] for t in topologies} == {
            "hosts",
            "containers",
            "processes",
            "pods",
            "services",
        }
        r = c.post(f"/api/control/{quote('container:abc')}/stop")
        assert r.status_code == 403
    with harness.client() as c:
        assert c.post(f"/api/control/{quote('container:abc')}/stop").status_code == 404
        assert c.post(f"/api/control/{quote('container:abc')}/explode").status_code == 400
        doc = c.get("/api/openapi.json").json()
        assert doc["openapi"].startswith("3.")
        assert "/api/topology/{topology}" in doc["paths"]
        metrics = c.get("/metrics").text
        assert "orchestrator_monitor_reports_total" in metrics


def test_report_turns_into_websocket_diff(harness: MonitorHarness) -> None:
    report = synthetic_report(5, 6, containers=2, processes=4, connections=4)
    body = encode_report(report)
    target = f"container:{report.containers[0].id}"

    def send() -> None:
        with harness.client() as c:
            assert c.post("/api/report", content=body).status_code == 200

    async def on_open() -> None:
        await harness.loop.run_in_executor(None, send)

    def seen(messages: list[dict[str, Any]]) -> bool:
        return any(n["id"] == target for m in messages[1:] for n in m.get("add", []))

    messages = harness.call(harness.ws_until("/api/topology/containers/ws", seen, on_open=on_open))
    assert messages[0]["reset"] is True
    added = next(n for m in messages[1:] for n in m.get("add", []) if n["id"] == target)
    assert added["metadata"]["image"] == report.containers[0].image
    # filters apply to WebSockets and REST alike
    with harness.client() as c:
        filtered = c.get("/api/topology/containers", params={"host": "host-5"}).json()["nodes"]
        assert set(filtered) == {f"container:{x.id}" for x in report.containers}
        node = c.get(f"/api/topology/containers/{quote(target)}").json()
        assert "cpu_percent" in node["series"]
        found = c.get("/api/search", params={"q": "app-5-1"}).json()["results"]
        assert any(r["id"] == f"container:{report.containers[1].id}" for r in found)


def test_metrics_only_change_goes_out_as_a_slim_update(harness: MonitorHarness) -> None:
    report = synthetic_report(7, 8, containers=2, processes=4, connections=4)
    target = f"container:{report.containers[0].id}"
    with harness.client() as c:
        assert c.post("/api/report", content=encode_report(report)).status_code == 200
    hotter = msgspec.structs.replace(
        report,
        containers=(
            msgspec.structs.replace(report.containers[0], cpu_percent=77.5),
            report.containers[1],
        ),
    )

    def send() -> None:
        with harness.client() as c:
            assert c.post("/api/report", content=encode_report(hotter)).status_code == 200

    async def on_open() -> None:
        await harness.loop.run_in_executor(None, send)

    def seen(messages: list[dict[str, Any]]) -> bool:
        return any(m["id"] == target for msg in messages[1:] for m in msg.get("metrics", []))

    messages = harness.call(harness.ws_until("/api/topology/containers/ws", seen, on_open=on_open))
    assert any(n["id"] == target for n in messages[0]["add"])
    slim = next(m for msg in messages[1:] for m in msg.get("metrics", []) if m["id"] == target)
    assert slim["metrics"]["cpu_percent"] == 77.5
    assert all(n["id"] != target for msg in messages[1:] for n in msg.get("update", []))


def test_probe_count_is_bounded() -> None:
    app = MonitorApp(AppConfig(token=TOKEN, max_probes=2))
    for i in range(2):
        app.ingest_bytes(encode_report(synthetic_report(i, 3, containers=1, processes=2)))
    with pytest.raises(Rejected) as info:
        app.ingest_bytes(encode_report(synthetic_report(2, 3, containers=1, processes=2)))
    assert info.value.status == 429 and info.value.reason == "too_many_probes"
    # known probes keep reporting
    app.ingest_bytes(encode_report(synthetic_report(1, 3, containers=1, processes=2, seed=1)))
    assert set(app.store.probes) == {"probe-0", "probe-1"}
