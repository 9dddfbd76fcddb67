"""The monitoring app against hostile or careless clients (issue 17, points 8 and 9): tokens
only in headers, the WebSocket's Origin check, bounded report and control bodies, 4xx (never
500) for deep nesting, huge numbers and non-UTF-8 headers, and no exception text in error
bodies. Real HTTP on loopback (aiohttp's Server); raw sockets where a client library
would refuse to send the bytes."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from yarl import URL

from orchestrator_operator.monitor.app.platform import KubePlatformReader, ListingKubeApi
from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp
from orchestrator_operator.monitor.report import (
    LIMITS,
    bounded_labels,
    decode_report,
    encode_report,
)
from testenv.synthetic_reports import synthetic_report

TOKEN = "write-t0ken"
READ_TOKEN = "read-t0ken"
# The subprotocols the UI offers (ui/src/live.ts); spelled out here so the test reads alone.
WS_PROTOCOL = "orchestrator.monitor.v1"


def ws_token(token: str) -> str:
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return "base64url.bearer.orchestrator.dev." + encoded


def failing_client() -> ListingKubeApi:
    """The platform reader's Kubernetes client fails with text that must not reach a user."""
    raise RuntimeError("dial tcp 10.96.0.1:443: secret-internal-detail")


class Server:
    """The app's loopback address."""

    def __init__(self, site: web.TCPSite) -> None:
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])

    def make_url(self, path: str) -> URL:
        return URL(f"http://127.0.0.1:{self.port}{path}", encoded=True)


def serve(test: Callable[[MonitorApp, Server], Awaitable[None]], **config: Any) -> None:
    async def run() -> None:
        app = MonitorApp(
            AppConfig(token=TOKEN, read_only_token=READ_TOKEN, **config),
            platform_reader=KubePlatformReader(failing_client),
        )
        runner = app.runner()  # as `orchestrator app` runs it (no automatic decompression)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            await test(app, Server(site))
        finally:
            await runner.cleanup()

    asyncio.run(run())


async def request(
    server: Server,
    method: str,
    path: str,
    *,
    token: str | None = TOKEN,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.request(method, server.make_url(path), data=body, headers=hdrs) as r,
    ):
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def raw(server: Server, head: bytes) -> tuple[int, bytes]:
    """Send raw request bytes; the status and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def report(**container_fields: Any) -> dict[str, Any]:
    """A valid report as JSON-able data, with fields of its first container replaced."""
    data: dict[str, Any] = json.loads(encode_report(synthetic_report(0, 1, containers=2)))
    data["containers"][0].update(container_fields)
    return data


# -- point 8: tokens in headers only, Origin, what is behind auth --------------------------


def test_a_token_in_the_url_is_refused() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        # a token in a query string ends up in proxies' and browsers' logs: not accepted
        assert (await request(server, "GET", f"/api/topology?token={TOKEN}", token=None))[0] == 401
        status, _ = await request(
            server, "POST", f"/api/report?token={TOKEN}", token=None, body=b"{}"
        )
        assert status == 401
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(server.make_url(f"/api/topology/hosts/ws?token={TOKEN}"))
            assert refused.value.status == 401
        assert (await request(server, "GET", "/api/topology"))[0] == 200  # the header works

    serve(test)


def test_the_websocket_takes_its_token_from_a_subprotocol_and_never_echoes_it() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        url = server.make_url("/api/topology/containers/ws")
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, protocols=(WS_PROTOCOL, ws_token(READ_TOKEN))) as ws:
                assert ws.protocol == WS_PROTOCOL  # the token is not sent back
                first = await ws.receive_json(timeout=30)
                assert first["reset"] is True
            for bad in ("wrong", ""):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(url, protocols=(WS_PROTOCOL, ws_token(bad)))
                assert refused.value.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(
                    url, protocols=(WS_PROTOCOL, "base64url.bearer.orchestrator.dev.!!")
                )
            assert refused.value.status == 401

    serve(test)


def test_the_websocket_refuses_pages_of_other_origins() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        url = server.make_url("/api/topology/hosts/ws")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        own = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            for origin in ("http://evil.example", f"http://127.0.0.1:{server.port + 1}", "null"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(url, headers={**auth, "Origin": origin})
                assert refused.value.status == 403, origin
            for origin in (own, "http://localhost:5173"):  # its own pages, an allowed origin
                async with session.ws_connect(url, headers={**auth, "Origin": origin}) as ws:
                    assert (await ws.receive_json(timeout=30))["reset"] is True
            async with session.ws_connect(url, headers=auth) as ws:  # not a browser: no Origin
                assert (await ws.receive_json(timeout=30))["reset"] is True

    serve(test, allowed_origins=("http://localhost:5173",))


def test_the_openapi_document_needs_a_token() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        assert (await request(server, "GET", "/api/openapi.json", token=None))[0] == 401
        status, doc = await request(server, "GET", "/api/openapi.json", token=READ_TOKEN)
        assert status == 200 and doc["openapi"].startswith("3.")

    serve(test)


def test_error_bodies_carry_no_internal_exception_text() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        status, body = await request(server, "GET", "/api/platform/mesosclusters")
        assert status == 503 and body["reason"] == "unreachable"
        assert "secret-internal-detail" not in json.dumps(body)
        assert "10.96.0.1" not in json.dumps(body)
        gz = {"Content-Encoding": "gzip"}
        status, body = await request(server, "POST", "/api/report", body=b"xx", headers=gz)
        assert status == 400 and "Error -3" not in body["error"]  # zlib's own message

    serve(test)


def test_non_utf8_headers_are_a_4xx() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        for path, header in [
            (b"/api/topology", b"Authorization: Bearer \xff\xfe"),
            (b"/api/topology", b"Authorization: Bearer " + TOKEN.encode() + b"\xff"),
            (b"/api/probe/control", b"Authorization: Bearer \xc3\x28"),
            (
                b"/api/probe/control",
                b"Authorization: Bearer " + TOKEN.encode() + b"\r\nX-Probe-Id: \xff",
            ),
        ]:
            head = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header
            status, body = await raw(server, head + b"\r\nConnection: close\r\n\r\n")
            assert 400 <= status < 500, (header, status, body)

    serve(test)


# -- point 9: bounded reports ----------------------------------------------------------------


def test_hostile_reports_are_refused_before_anything_is_merged() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        big_label = report(labels={"x": "y" * (5 * 1024 * 1024)})
        many_labels = report(labels={f"k{i}": "v" for i in range(200_000)})
        deep = b'{"probe_id": "p", "host": {"hostname": "h"}, "timestamp": 0, "x": '
        deep += b"[" * 200_000 + b"]" * 200_000 + b"}"
        cases: list[tuple[str, bytes, int]] = [
            ("a 5 MiB label", json.dumps(big_label).encode(), 422),
            ("200,000 labels", json.dumps(many_labels).encode(), 422),
            ("a huge integer", json.dumps(report(memory_usage=10**400)).encode(), 422),
            ("an int64 overflow", json.dumps(report(pid=2**64)).encode(), 422),
            (
                "a port over 65535",
                json.dumps(report(ports=[{"container_port": 70000}])).encode(),
                422,
            ),
            (
                "an infinite float",
                json.dumps(report(cpu_percent=0.125)).encode().replace(b"0.125", b"1e999"),
                422,
            ),
            ("deep nesting", deep, 400),
        ]
        for what, body, expected in cases:
            status, answer = await request(server, "POST", "/api/report", body=body)
            assert status == expected, (what, status, answer)
            assert not app.store.probes, what  # nothing merged, not even half
        # the app still works: reads, then a normal report and reads again
        assert (await request(server, "GET", "/api/topology/containers"))[0] == 200
        good = encode_report(synthetic_report(0, 1, containers=2))
        assert (await request(server, "POST", "/api/report", body=good))[0] == 200
        for topology in ("hosts", "containers", "processes"):
            status, body = await request(server, "GET", f"/api/topology/{topology}")
            assert status == 200 and body["nodes"], topology
        status, body = await request(server, "GET", "/api/search?q=host-0")
        assert status == 200 and body["results"]

    serve(test, max_report_bytes=16 * 1024 * 1024)


def test_long_filters_and_queries_are_a_400() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        long = "x" * 5000
        assert (await request(server, "GET", f"/api/search?q={long}"))[0] == 400
        assert (await request(server, "GET", f"/api/topology/hosts?q={long}"))[0] == 400
        many = "&".join(f"meta.k{i}=v" for i in range(40))
        assert (await request(server, "GET", f"/api/topology/hosts?{many}"))[0] == 400
        assert (await request(server, "GET", "/api/search?q=a&limit=" + "9" * 5000))[0] == 400

    serve(test)


# -- point 9: bounded control bodies ---------------------------------------------------------


def test_control_bodies_are_bounded_and_range_checked() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        report_ = synthetic_report(0, 1, containers=1)
        app.ingest_bytes(encode_report(report_))
        path = f"/api/control/container%3A{report_.containers[0].id}"
        cases: list[tuple[str, bytes, int]] = [
            ("deep nesting", b"[" * 8000 + b"]" * 8000, 422),
            ("deep nesting in a field", b'{"tail": ' + b"[" * 8000 + b"]" * 8000 + b"}", 422),
            ("deep objects", b'{"a": ' * 2000 + b"1" + b"}" * 2000, 422),
            ("not an object", b"[1, 2]", 422),
            ("not JSON", b"{tail", 400),
            ("a huge tail", b'{"tail": ' + b"9" * 400 + b"}", 422),
            ("a negative timeout", b'{"timeout": -1}', 422),
            ("an hour's stop timeout", b'{"timeout": 3600}', 422),
            ("an unknown argument", b'{"tail": 5, "command": "rm -rf /"}', 422),
            ("a megabyte", b'{"tail": 5, "x": "' + b"a" * (1024 * 1024) + b'"}', 413),
        ]
        for what, body, expected in cases:
            status, answer = await request(server, "POST", f"{path}/logs", body=body)
            assert status == expected, (what, status, answer)
        # a valid body gets as far as the probe (which has no control channel here)
        for body in (b"", b"{}", b'{"tail": 100}', b'{"timeout": 5}'):
            status, answer = await request(server, "POST", f"{path}/logs", body=body)
            assert status == 503, (body, answer)

    serve(test)


def test_a_probe_channel_survives_junk_and_relays_a_bounded_error() -> None:
    async def test(app: MonitorApp, server: Server) -> None:
        report_ = synthetic_report(0, 1, containers=1)
        app.ingest_bytes(encode_report(report_))
        path = f"/api/control/container%3A{report_.containers[0].id}/stop"
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Probe-Id": report_.probe_id}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(server.make_url("/api/probe/control"), headers=headers) as probe,
        ):
            await probe.send_str("[" * 100_000 + "]" * 100_000)  # junk from a probe
            await probe.send_str('{"id": "x"}')

            async def answer() -> None:
                request_ = await probe.receive_json(timeout=30)
                error = "engine says no " + "x" * 100_000
                await probe.send_json({"id": request_["id"], "ok": False, "error": error})

            answering = asyncio.create_task(answer())
            status, body = await request(server, "POST", path)
            await answering
        assert status == 502, body
        assert body["error"].startswith("engine says no") and len(body["error"]) <= 1000

    serve(test)


def test_the_probe_cuts_labels_to_what_a_report_may_carry() -> None:
    labels = {f"label-{i:03}": "v" * 10_000 for i in range(300)}
    base = synthetic_report(0, 1, containers=1)
    raw_ = msgspec.structs.replace(
        base, containers=(msgspec.structs.replace(base.containers[0], labels=labels),)
    )
    with pytest.raises(msgspec.ValidationError, match="labels"):
        decode_report(encode_report(raw_))  # the app would refuse the host's whole report
    cut = bounded_labels(labels)
    assert len(cut) == LIMITS.labels and sorted(cut)[0] == "label-000"
    assert all(len(v) == LIMITS.string for v in cut.values())
    fitted = msgspec.structs.replace(
        base, containers=(msgspec.structs.replace(base.containers[0], labels=cut),)
    )
    assert decode_report(encode_report(fitted)).containers[0].labels == cut
