"""The monitoring app (aiohttp): report ingest, merged topologies, REST API, WebSockets,
controls and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import socket
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orchestrator_operator.monitor.app.controls import (
    ControlFailed,
    ControlRouter,
    ControlUnavailable,
)
from orchestrator_operator.monitor.app.hub import Hub
from orchestrator_operator.monitor.app.metrics import AppMetrics
from orchestrator_operator.monitor.app.openapi import openapi_document
from orchestrator_operator.monitor.app.platform import (
    KubePlatformReader,
    PlatformReader,
    add_platform_routes,
)
from orchestrator_operator.monitor.app.render import TopologyRenderer
from orchestrator_operator.monitor.app.store import Store, TopologyChanges
from orchestrator_operator.monitor.app.topology import TOPOLOGIES, Node, node_filter_from_query
from orchestrator_operator.monitor.app.ui_assets import add_ui_routes
from orchestrator_operator.monitor.report import CONTROLS, ReportInvalid, decode_report

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()


@dataclass
class AppConfig:
    token: str
    read_only_token: str | None = None
    max_report_bytes: int = 8 * 1024 * 1024  # as received (compressed)
    max_decompressed_bytes: int = 64 * 1024 * 1024
    probe_ttl: float = 15.0
    control_timeout: float = 30.0
    flush_interval: float = 0.1
    max_probes: int = 10_000  # distinct probes merged at once; more are refused with 429
    ui_dist: Path | None = None  # the built UI (ui/dist); None: API only


class Rejected(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json_response({"error": message}, status)


class MonitorApp:
    def __init__(self, config: AppConfig, platform_reader: PlatformReader | None = None) -> None:
        if not config.token:
            raise ValueError("the app needs a token")
        self.config = config
        # MesosClusters and ZkMigrations for the platform pages; the Kubernetes client is
        # made on the first request, so the app starts without cluster credentials.
        self.platform_reader: PlatformReader = platform_reader or KubePlatformReader()
        self.store = Store(ttl=config.probe_ttl)
        self.metrics = AppMetrics()
        self.hub = Hub(config.flush_interval, on_sent=self.metrics.diffs.inc)
        self.controls = ControlRouter(config.control_timeout)
        self.renderer = TopologyRenderer(self.store)
        self._tasks: list[asyncio.Task[None]] = []

    # -- auth --------------------------------------------------------------------------------

    @staticmethod
    def _presented(request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[7:].strip()
        return request.query.get("token", "")

    def _is_writer(self, request: web.Request) -> bool:
        return hmac.compare_digest(self._presented(request).encode(), self.config.token.encode())

    def _is_reader(self, request: web.Request) -> bool:
        if self._is_writer(request):
            return True
        ro = self.config.read_only_token
        if not ro:
            return False
        return hmac.compare_digest(self._presented(request).encode(), ro.encode())

    def _require_reader(self, request: web.Request) -> None:
        if not self._is_reader(request):
            raise web.HTTPUnauthorized(
                text='{"error": "a valid token is required"}', content_type="application/json"
            )

    # -- ingest ------------------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_report_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Rejected(413, "too_large", f"report over {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise Rejected(413, "too_large", f"report over {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        encoding = request.headers.get("Content-Encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            wbits = 47 if encoding == "gzip" else 15
            d = zlib.decompressobj(wbits)
            try:
                out = d.decompress(body, self.config.max_decompressed_bytes)
            except zlib.error as exc:
                raise Rejected(400, "bad_encoding", f"cannot decompress: {exc}") from exc
            if d.unconsumed_tail:
                raise Rejected(
                    413,
                    "too_large",
                    f"report over {self.config.max_decompressed_bytes} bytes decompressed",
                )
            if not d.eof:
                raise Rejected(400, "bad_encoding", "truncated compressed body")
            return out
        if encoding != "identity":
            raise Rejected(415, "bad_encoding", f"unsupported Content-Encoding {encoding}")
        return body

    def ingest_bytes(self, data: bytes, now: float | None = None) -> TopologyChanges:
        """Decode, validate and merge a report body (raises Rejected)."""
        try:
            report = decode_report(data)
        except msgspec.ValidationError as exc:
            raise Rejected(422, "invalid", f"invalid report: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise Rejected(400, "malformed", f"malformed report: {exc}") from exc
        except ReportInvalid as exc:
            raise Rejected(422, "invalid", f"invalid report: {exc}") from exc
        if report.probe_id not in self.store.probes and (
            len(self.store.probes) >= self.config.max_probes
        ):
            raise Rejected(
                429, "too_many_probes", f"already merging {self.config.max_probes} probes"
            )
        changes = self.store.ingest(report, time.time() if now is None else now)
        self._publish(changes)
        return changes

    def _publish(self, changes: TopologyChanges) -> None:
        for topo, ch in changes.items():
            self.hub.publish(topo, ch, self.store.metrics_only.get(topo))
        if self.hub.has_viewers("services"):
            services = self.store.services_changes()
            if services:
                self.hub.publish("services", services)

    async def handle_report(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            if not self._is_writer(request):
                raise Rejected(401, "unauthorized", "a valid probe token is required")
            body = await self._read_body(request)
            self.ingest_bytes(body)
        except Rejected as exc:
            self.metrics.rejected.labels(exc.reason).inc()
            log.info("report rejected (%s): %s", exc.reason, exc)
            return _error(exc.status, str(exc))
        self.metrics.reports.inc()
        self.metrics.report_bytes.inc(request.content_length or 0)
        self.metrics.ingest_seconds.observe(time.perf_counter() - started)
        return _json_response({"ok": True})

    # -- reads -------------------------------------------------------------------------------

    async def handle_topologies(self, request: web.Request) -> web.Response:
        self._require_reader(request)
        counts = self.store.counts()
        return _json_response(
            [{"name": t, "nodes": counts[t], "url": f"/api/topology/{t}"} for t in TOPOLOGIES]
        )

    def _topology_or_404(self, name: str) -> dict[str, Node]:
        if name not in TOPOLOGIES:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no topology {name!r}"}), content_type="application/json"
            )
        return self.store.topology(name)

    async def handle_topology(self, request: web.Request) -> web.StreamResponse:
        self._require_reader(request)
        name = request.match_info["topology"]
        nodes = self._topology_or_404(name)
        node_filter = node_filter_from_query(request.query)
        if node_filter.is_empty():
            return await self._send_large(request, self.renderer.render(name))
        selected = {nid: n for nid, n in nodes.items() if node_filter.matches(n)}
        return _json_response({"topology": name, "nodes": selected})

    @staticmethod
    async def _send_large(request: web.Request, body: bytes) -> web.StreamResponse:
        """Send a large JSON body (25 MiB for 20,000 containers) with one copy, into the
        transport's buffer. ``web.Response`` joins headers and body into a new object, and
        the transport copies what the socket does not take at once twice more for bytes
        (a slice, then its buffer); the headers go first on their own here, and a view of
        the body is sliced without a copy."""
        response = web.StreamResponse()
        response.content_type = "application/json"
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(b"")  # the headers alone (else joined with the body)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            # The event loop refills the socket once per iteration, each time it is
            # writable: a send buffer as large as the system allows (net.core.wmem_max; the
            # kernel doubles it) takes the body in fewer refills than autotuning does.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, len(body))
        await response.write(memoryview(body))
        await response.write_eof()
        return response

    async def handle_node(self, request: web.Request) -> web.Response:
        self._require_reader(request)
        name = request.match_info["topology"]
        nodes = self._topology_or_404(name)
        node_id = request.match_info["node"]
        node = nodes.get(node_id)
        if node is None:
            return _error(404, f"no node {node_id!r} in {name}")
        children: dict[str, list[str]] = {}
        if name == "hosts":
            for topo in ("containers", "processes", "pods"):
                children[topo] = sorted(self.store.probe_nodes(node.probe, topo))
        elif name == "containers":
            children["processes"] = sorted(
                nid
                for nid, n in self.store.probe_nodes(node.probe, "processes").items()
                if n.parents.get("container") == node_id
            )
        return _json_response(
            {"node": node, "series": self.store.series.get(node_id), "children": children}
        )

    async def handle_search(self, request: web.Request) -> web.Response:
        self._require_reader(request)
        q = request.query.get("q", "").strip().lower()
        if not q:
            return _error(400, "query parameter q is required")
        try:
            limit = max(1, min(int(request.query.get("limit", "50")), 1000))
        except ValueError:
            return _error(400, "limit must be an integer")
        results: list[dict[str, str]] = []
        for topo in TOPOLOGIES:
            for node in self.store.topology(topo).values():
                if (
                    q in node.label.lower()
                    or q in node.id.lower()
                    or any(q in v.lower() for v in node.metadata.values())
                ):
                    results.append(
                        {"topology": topo, "id": node.id, "label": node.label, "host": node.host}
                    )
                    if len(results) >= limit:
                        return _json_response({"query": q, "results": results, "truncated": True})
        return _json_response({"query": q, "results": results, "truncated": False})

    async def handle_topology_ws(self, request: web.Request) -> web.StreamResponse:
        self._require_reader(request)
        name = request.match_info["topology"]
        self._topology_or_404(name)
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.metrics.websockets.inc()
        self.store.eager.add(name)  # build this topology at ingest while someone watches
        try:
            await self.hub.serve(
                ws, name, node_filter_from_query(request.query), lambda: self.store.topology(name)
            )
        finally:
            self.metrics.websockets.dec()
            if not self.hub.has_viewers(name):
                self.store.eager.discard(name)
        return ws

    # -- controls ----------------------------------------------------------------------------

    async def handle_control(self, request: web.Request) -> web.Response:
        if not self._is_writer(request):
            if self._is_reader(request):
                return _error(403, "controls need the read-write token")
            return _error(401, "a valid token is required")
        node_id = request.match_info["node"]
        action = request.match_info["action"]
        if action not in CONTROLS:
            return _error(400, f"unknown control {action!r}; known: {', '.join(CONTROLS)}")
        owner = self.store.container_owner(node_id)
        if owner is None:
            return _error(404, f"no container node {node_id!r}")
        args: dict[str, Any] | None = None
        if request.can_read_body:
            try:
                parsed = await request.json()
            except ValueError:
                return _error(400, "the body must be a JSON object")
            if parsed is not None and not isinstance(parsed, dict):
                return _error(400, "the body must be a JSON object")
            args = parsed
        probe_id, cid = owner
        try:
            result = await self.controls.request(probe_id, action, cid, args)
        except ControlUnavailable as exc:
            self.metrics.controls.labels(action, "unavailable").inc()
            return _error(503, str(exc))
        except ControlFailed as exc:
            self.metrics.controls.labels(action, "failed").inc()
            return _error(502, str(exc))
        self.metrics.controls.labels(action, "ok").inc()
        return _json_response({"ok": True, "node": node_id, "action": action, "result": result})

    async def handle_probe_control(self, request: web.Request) -> web.StreamResponse:
        if not self._is_writer(request):
            return _error(401, "a valid probe token is required")
        probe_id = request.headers.get("X-Probe-Id") or request.query.get("probe_id", "")
        if not probe_id:
            return _error(400, "X-Probe-Id is required")
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.metrics.control_channels.inc()
        try:
            await self.controls.serve_probe(probe_id, ws)
        finally:
            self.metrics.control_channels.dec()
        return ws

    # -- misc --------------------------------------------------------------------------------

    async def handle_metrics(self, request: web.Request) -> web.Response:
        self.metrics.probes.set(len(self.store.probes))
        for topo, count in self.store.counts().items():
            self.metrics.nodes.labels(topo).set(count)
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_openapi(self, request: web.Request) -> web.Response:
        return _json_response(openapi_document())

    async def handle_health(self, request: web.Request) -> web.Response:
        return _json_response({"ok": True, "probes": len(self.store.probes)})

    async def _expiry_loop(self) -> None:
        last_freeze = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            before = len(self.store.probes)
            changes = self.store.expire(time.time())
            expired = before - len(self.store.probes)
            if expired:
                self.metrics.probes_expired.inc(expired)
                self._publish(changes)
            now = time.monotonic()
            # series older than the hour window: a slice of the nodes every second
            self.store.series.prune(time.time(), budget=2000)
            if now - last_freeze > 15:
                # Long-lived state (series rings, nodes) would make every full collection
                # walk hundreds of thousands of objects (~150 ms pauses at 1,000 probes);
                # it has no reference cycles, so park it outside the cyclic collector.
                gc.freeze()
                last_freeze = now

    async def _warm_loop(self) -> None:
        # Full topologies read recently: encode what changed every flush interval, so that a
        # read does not encode a whole second of reports in one go.
        while True:
            await asyncio.sleep(self.config.flush_interval)
            self.renderer.warm()

    async def _on_startup(self, app: web.Application) -> None:
        self._tasks.append(asyncio.create_task(self._expiry_loop()))
        self._tasks.append(asyncio.create_task(self._warm_loop()))

    async def _on_shutdown(self, app: web.Application) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.controls.close()
        for viewers in self.hub.viewers.values():
            for viewer in list(viewers):
                with contextlib.suppress(Exception):
                    await viewer.ws.close()

    def runner(self) -> web.AppRunner:
        """An AppRunner that leaves request bodies compressed: the ingest path decompresses
        them itself with a limit (aiohttp's automatic decompression has none)."""
        return web.AppRunner(self.web_app(), access_log=None, auto_decompress=False)

    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        runner = self.runner()
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            log.info("monitoring app listening on %s:%d", host, port)
            await stop.wait()
        finally:
            await runner.cleanup()

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_report_bytes + 1024)
        app.router.add_post("/api/report", self.handle_report)
        app.router.add_get("/api/topology", self.handle_topologies)
        app.router.add_get("/api/topology/{topology}", self.handle_topology)
        app.router.add_get("/api/topology/{topology}/ws", self.handle_topology_ws)
        app.router.add_get("/api/topology/{topology}/{node}", self.handle_node)
        app.router.add_get("/api/search", self.handle_search)
        app.router.add_post("/api/control/{node}/{action}", self.handle_control)
        app.router.add_get("/api/probe/control", self.handle_probe_control)
        app.router.add_get("/api/openapi.json", self.handle_openapi)
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/healthz", self.handle_health)
        add_platform_routes(app, self.platform_reader, authorize=self._require_reader)
        if self.config.ui_dist is not None:
            add_ui_routes(app, self.config.ui_dist)  # after the API: its fallback is last
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app
