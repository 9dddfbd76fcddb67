"""The monitoring app's static mode (docker-compose, no Kubernetes), issue 17 points 5, 6, 8:
tokens with roles, control replies kept per probe channel, command lines only for the control
role, controls refused on protected namespaces and written to the audit log. The real app on
loopback, real HTTP and WebSockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import msgspec
import pytest

from orchestrator_operator.monitor.app.server import AppConfig
from orchestrator_operator.monitor.report import Report, encode_report
from testenv.synthetic_reports import synthetic_report
from tests.fixtures.monitor import MonitorHarness, quote

ADMIN, READER, PROBE = "admin-token", "reader-token", "probe-token"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[MonitorHarness]:
    config = AppConfig(
        token=ADMIN,
        read_only_token=READER,
        probe_token=PROBE,
        audit_log=tmp_path / "audit.jsonl",
        control_timeout=5.0,
    )
    h = MonitorHarness(config).start()
    try:
        yield h
    finally:
        h.stop()


def _report(i: int, probe_id: str, labels: dict[str, str] | None = None) -> Report:
    base = synthetic_report(i, 4, containers=1, processes=2, connections=0)
    containers = tuple(
        msgspec.structs.replace(c, labels={**c.labels, **(labels or {})}) for c in base.containers
    )
    processes = tuple(
        msgspec.structs.replace(p, cmdline=f"server --password=hunter{i}") for p in base.processes
    )
    return msgspec.structs.replace(
        base, probe_id=probe_id, containers=containers, processes=processes
    )


def _send(app: MonitorHarness, report: Report, token: str = PROBE) -> int:
    with app.client(token) as c:
        return c.post("/api/report", content=encode_report(report)).status_code


def test_tokens_have_roles(app: MonitorHarness) -> None:
    report = _report(1, "p1")
    # the read-write token no longer reports once the probes have their own
    assert _send(app, report, ADMIN) == 403
    assert _send(app, report, READER) == 403
    assert _send(app, report) == 200
    with app.client(PROBE) as c:
        assert c.get("/api/topology").status_code == 403  # a probe token reads nothing
    with app.client(READER) as c:
        node = quote(f"container:{report.containers[0].id}")
        r = c.post(f"/api/control/{node}/stop")
        assert r.status_code == 403 and "read-write token" in r.text
        r = c.post(f"/api/control/{node}/logs")
        assert r.status_code == 403


def test_metrics_need_a_reading_token_only_with_metrics_auth(tmp_path: Path) -> None:
    """`--metrics-auth`: /metrics answers the read-write and read-only tokens, not the
    probes' or none; without it /metrics stays open (counts only)."""
    for metrics_auth in (True, False):
        config = AppConfig(
            token=ADMIN, read_only_token=READER, probe_token=PROBE, metrics_auth=metrics_auth
        )
        h = MonitorHarness(config).start()
        try:
            anonymous = httpx.get(f"{h.base_url}/metrics", timeout=10)
            with h.client(PROBE) as c:
                probe = c.get("/metrics")
            answers = [anonymous.status_code, probe.status_code]
            for token in (ADMIN, READER):
                with h.client(token) as c:
                    scraped = c.get("/metrics")
                    assert "orchestrator_monitor_" in scraped.text
                    answers.append(scraped.status_code)
            assert answers == ([401, 403, 200, 200] if metrics_auth else [200] * 4)
        finally:
            h.stop()


def test_command_lines_only_for_the_control_role(app: MonitorHarness) -> None:
    report = _report(2, "p2")
    assert _send(app, report) == 200
    pid = report.processes[0].pid
    node = quote(f"process:{report.host.hostname};{pid}")
    with app.client(READER) as c:
        assert "hunter2" not in c.get("/api/topology/processes").text
        assert c.get("/api/search", params={"q": "hunter2"}).json()["results"] == []
        detail = c.get(f"/api/topology/processes/{node}").json()
        assert detail["redacted"] == ["cmdline"] and "hunter2" not in json.dumps(detail)
    with app.client(ADMIN) as c:
        assert c.get(f"/api/topology/processes/{node}").json()["cmdline"] == (
            "server --password=hunter2"
        )


async def _channel(
    app: MonitorHarness, probe_id: str, ready: asyncio.Event, seen: list[dict[str, object]],
    answer_for: str | None = None,
) -> None:  # fmt: skip
    """A control channel that records requests; with `answer_for`, it also sends replies for
    ids it never received (guessing the next ones), as a hostile probe would."""
    url = f"ws://127.0.0.1:{app.port}/api/probe/control"
    headers = {"Authorization": f"Bearer {PROBE}", "X-Probe-Id": probe_id}
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        ready.set()
        if answer_for is not None:
            while True:
                for guess in range(1, 50):
                    await ws.send_str(json.dumps({"id": guess, "ok": True, "result": "forged"}))
                await asyncio.sleep(0.05)
        async for msg in ws:
            seen.append(json.loads(msg.data))


def test_a_reply_on_another_probes_channel_answers_nothing(app: MonitorHarness) -> None:
    victim, hostile = _report(3, "victim"), _report(4, "hostile")
    assert _send(app, victim) == 200 and _send(app, hostile) == 200
    ready_v, ready_h = asyncio.Event(), asyncio.Event()
    seen: list[dict[str, object]] = []
    tasks = [
        asyncio.run_coroutine_threadsafe(_channel(app, "victim", ready_v, seen), app.loop),
        asyncio.run_coroutine_threadsafe(
            _channel(app, "hostile", ready_h, [], answer_for="victim"), app.loop
        ),
    ]
    try:

        async def both_open() -> None:
            await asyncio.wait_for(asyncio.gather(ready_v.wait(), ready_h.wait()), 30)

        app.call(both_open())
        node = quote(f"container:{victim.containers[0].id}")
        with app.client(ADMIN) as c:
            r = c.post(f"/api/control/{node}/stop")
        # the victim got the request and did not answer: the forged replies did not count
        assert r.status_code == 503 and "did not answer" in r.text
        assert seen and seen[0]["action"] == "stop"
    finally:
        for t in tasks:
            t.cancel()


def test_protected_namespaces_are_refused_and_audited(app: MonitorHarness) -> None:
    report = _report(5, "p5", {"io.kubernetes.pod.namespace": "kube-system"})
    assert _send(app, report) == 200
    node = quote(f"container:{report.containers[0].id}")
    with app.client(ADMIN) as c:
        r = c.post(f"/api/control/{node}/restart")
    assert r.status_code == 403 and "'kube-system' are protected" in r.text
    assert app.config.audit_log is not None
    (entry,) = [json.loads(line) for line in app.config.audit_log.read_text().splitlines()]
    assert entry["who"] == "read-write token" and entry["action"] == "restart"
    assert entry["result"] == "refused" and entry["probe"] == "p5"
    assert entry["container"] == report.containers[0].id
