"""The monitoring app (aiohttp): report ingest, merged topologies, REST API, WebSockets,
controls and Prometheus metrics."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import gc
import json
import logging
import socket
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from orchestrator_operator.monitor.app.audit import AuditLog
from orchestrator_operator.monitor.app.auth import (
    CONTROL,
    LOGS,
    METRICS,
    VIEW,
    Authenticator,
    AuthError,
    ProbeIdentity,
    StaticAuth,
)
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
from orchestrator_operator.monitor.app.topology import (
    TOPOLOGIES,
    Node,
    NodeFilter,
    node_filter_from_query,
)
from orchestrator_operator.monitor.app.ui_assets import add_ui_routes
from orchestrator_operator.monitor.report import (
    CONTROLS,
    LIMITS,
    Report,
    ReportInvalid,
    decode_report,
)

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()

# The WebSocket subprotocols: a browser cannot set an Authorization header on a WebSocket, so
# the UI offers ``[WS_PROTOCOL, WS_TOKEN_PREFIX + base64url(token)]`` (the same scheme as the
# Kubernetes API server's ``base64url.bearer.authorization.k8s.io.``); the app answers with
# WS_PROTOCOL only, never echoing the token. Tokens never travel in a URL.
WS_PROTOCOL = "orchestrator.monitor.v1"
WS_TOKEN_PREFIX = "base64url.bearer.orchestrator.dev."
MAX_TOKEN_BYTES = 4096
MAX_CONTROL_BODY_BYTES = 16 * 1024
MAX_QUERY_CHARS = 1024  # q, filters


class ControlArgs(msgspec.Struct, forbid_unknown_fields=True):
    """A control's optional JSON body: lines of logs, seconds to wait for a stop."""

    tail: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    timeout: Annotated[int, msgspec.Meta(ge=0, le=300)] | None = None


_control_args = msgspec.json.Decoder(ControlArgs)


# Containers in these namespaces (their ``io.kubernetes.pod.namespace`` label) are refused
# controls unless ``allow_protected_controls``; the app's own namespace is added at start-up.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
NAMESPACE_LABEL = "label.io.kubernetes.pod.namespace"
POD_NAME_LABEL = "label.io.kubernetes.pod.name"


@dataclass
class AppConfig:
    token: str = ""  # static mode's read-write token
    read_only_token: str | None = None
    probe_token: str | None = None  # static mode: the probes' own token (else the read-write)
    # Kubernetes mode (auth.KubeAuth) or another authenticator; None: static tokens above.
    auth: Authenticator | None = None
    audit_log: Path | None = None  # JSON lines, one per control; None: the app's log only
    events_namespace: str | None = None  # Kubernetes mode: audit Events go here
    app_pod: str | None = None  # this app's pod (what an Event is about without a probe pod)
    protected_namespaces: tuple[str, ...] = SYSTEM_NAMESPACES
    allow_protected_controls: bool = False
    max_report_bytes: int = 8 * 1024 * 1024  # as received (compressed)
    max_decompressed_bytes: int = 64 * 1024 * 1024
    probe_ttl: float = 15.0
    control_timeout: float = 30.0
    flush_interval: float = 0.1
    max_probes: int = 10_000  # distinct probes merged at once; more are refused with 429
    ui_dist: Path | None = None  # the built UI (ui/dist); None: API only
    # Reports decompressed and decoded at once; the others wait with their compressed body
    # (at most max_report_bytes each), so memory under a burst of (hostile) reports is bounded
    # by this many decoded reports.
    ingest_concurrency: int = 2
    # Origins (scheme://host[:port]) whose pages may open the UI's WebSocket besides the
    # app's own (the Host the request was sent to), e.g. a Vite dev server.
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    # /metrics only for a caller holding METRICS (auth.py); False: open, counts only
    metrics_auth: bool = False


class Rejected(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json_response({"error": message}, status)


def _node_filter(request: web.Request) -> NodeFilter:
    """The filters of a topology read, each at most MAX_QUERY_CHARS, at most 32 of them."""
    query = request.query
    if len(query) > 32 or any(len(k) + len(v) > MAX_QUERY_CHARS for k, v in query.items()):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"at most 32 filters of {MAX_QUERY_CHARS} characters"}),
            content_type="application/json",
        )
    return node_filter_from_query(query)


class MonitorApp:
    def __init__(self, config: AppConfig, platform_reader: PlatformReader | None = None) -> None:
        if config.auth is None and not config.token:
            raise ValueError("the app needs a token")
        self.config = config
        self.auth: Authenticator = config.auth or StaticAuth.from_tokens(
            config.token, config.read_only_token, config.probe_token
        )
        self.audit = AuditLog(config.audit_log, config.events_namespace, config.app_pod)
        # probe id -> the identity that claimed it (ProbeIdentity.principal), while that
        # probe is merged or holds a control channel: no other identity may use the id.
        self.probe_owners: dict[str, str] = {}
        # MesosClusters and ZkMigrations for the platform pages; the Kubernetes client is
        # made on the first request, so the app starts without cluster credentials.
        self.platform_reader: PlatformReader = platform_reader or KubePlatformReader()
        self.store = Store(ttl=config.probe_ttl)
        self.metrics = AppMetrics()
        self.hub = Hub(config.flush_interval, on_sent=self.metrics.diffs.inc)
        self.controls = ControlRouter(config.control_timeout)
        self.renderer = TopologyRenderer(self.store)
        self._tasks: list[asyncio.Task[None]] = []
        # Decompression and decoding run here, off the event loop (bounded by the semaphore).
        self._decoder_pool = ThreadPoolExecutor(
            max_workers=max(1, config.ingest_concurrency), thread_name_prefix="report-decode"
        )
        self._ingest_slots: asyncio.Semaphore | None = None

    # -- auth --------------------------------------------------------------------------------

    @staticmethod
    def _presented(request: web.Request) -> bytes:
        """The token presented: ``Authorization: Bearer``, or on a WebSocket upgrade the
        token subprotocol. Never the URL. Header bytes that are not UTF-8 (aiohttp keeps them
        as surrogates) compare as bytes and simply do not match."""
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        if header.startswith("Bearer "):
            return header[7:].strip().encode("utf-8", "surrogateescape")[:MAX_TOKEN_BYTES]
        for offered in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(","):
            offered = offered.strip()
            if offered.startswith(WS_TOKEN_PREFIX):
                encoded = offered[len(WS_TOKEN_PREFIX) :][: MAX_TOKEN_BYTES * 2]
                try:
                    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
                except (binascii.Error, ValueError):
                    return b""
        return b""

    async def _require(self, request: web.Request, role: str = VIEW) -> str:
        """The caller's name when it holds `role`; else 401, 403 or 503 in JSON."""
        try:
            return await self.auth.person(self._presented(request), role)
        except AuthError as exc:
            raise _auth_http_error(exc) from None

    async def _require_reader(self, request: web.Request) -> None:
        await self._require(request, VIEW)

    async def _probe_identity(self, request: web.Request) -> ProbeIdentity:
        try:
            return await self.auth.probe(self._presented(request))
        except AuthError as exc:
            raise Rejected(exc.status, "unauthorized", str(exc)) from None

    def _claim(self, identity: ProbeIdentity, probe_id: str) -> None:
        """Bind `probe_id` to `identity`: refused while another identity's probe uses it."""
        owner = self.probe_owners.get(probe_id)
        if owner is not None and owner != identity.principal:
            live = probe_id in self.store.probes or self.controls.principal(probe_id) is not None
            if live:
                raise Rejected(
                    403,
                    "not_owner",
                    f"probe id {probe_id!r} belongs to another probe; this token may not use it",
                )
        self.probe_owners[probe_id] = identity.principal

    def _prune_owners(self) -> None:
        for pid in [
            p
            for p in self.probe_owners
            if p not in self.store.probes and p not in self.controls.channels
        ]:
            del self.probe_owners[pid]

    def _check_origin(self, request: web.Request) -> None:
        """A browser's WebSocket must come from a page of this app (same host and port as the
        request) or of an allowed origin; clients that send no Origin are not browsers."""
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or origin in self.config.allowed_origins:
            return
        try:
            o = URL(origin)
            own = URL(f"{o.scheme}://{request.host}")
            same = bool(o.host) and (o.host, o.port) == (own.host, own.port)
        except (ValueError, TypeError):
            same = False
        if not same:
            raise web.HTTPForbidden(
                text=json.dumps({"error": "this WebSocket is not open to pages of that origin"}),
                content_type="application/json",
            )

    # -- ingest ------------------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> tuple[bytes, str]:
        """The raw body (bounded) and its Content-Encoding."""
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
        return b"".join(chunks), request.headers.get("Content-Encoding", "identity").lower()

    def _decompress(self, body: bytes, encoding: str) -> bytes:
        if encoding in ("gzip", "deflate"):
            wbits = 47 if encoding == "gzip" else 15
            d = zlib.decompressobj(wbits)
            try:
                out = d.decompress(body, self.config.max_decompressed_bytes)
            except zlib.error as exc:
                raise Rejected(400, "bad_encoding", f"the body is not valid {encoding}") from exc
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
            raise Rejected(415, "bad_encoding", "unsupported Content-Encoding (gzip, deflate)")
        return body

    @staticmethod
    def decode(data: bytes) -> Report:
        """Decode and validate a report body (raises Rejected). Every bound is checked here,
        before anything is merged."""
        try:
            return decode_report(data)
        except msgspec.ValidationError as exc:
            raise Rejected(422, "invalid", f"invalid report: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise Rejected(400, "malformed", f"malformed report: {exc}") from exc
        except RecursionError as exc:
            raise Rejected(400, "malformed", "malformed report: nested too deeply") from exc
        except ReportInvalid as exc:
            raise Rejected(422, "invalid", f"invalid report: {exc}") from exc

    def _decompress_and_decode(self, body: bytes, encoding: str) -> Report:
        return self.decode(self._decompress(body, encoding))

    def ingest_bytes(self, data: bytes, now: float | None = None) -> TopologyChanges:
        """Decode, validate and merge a report body (raises Rejected)."""
        return self.merge(self.decode(data), now)

    def merge(self, report: Report, now: float | None = None) -> TopologyChanges:
        """Merge a decoded, valid report (raises Rejected when too many probes)."""
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
            identity = await self._probe_identity(request)
            body, encoding = await self._read_body(request)
            if self._ingest_slots is None:
                self._ingest_slots = asyncio.Semaphore(max(1, self.config.ingest_concurrency))
            # The body is read concurrently (a slow sender holds no slot); decompressing and
            # decoding, where memory grows up to 64 MiB and the objects, go a few at a time.
            async with self._ingest_slots:
                report = await asyncio.get_running_loop().run_in_executor(
                    self._decoder_pool, self._decompress_and_decode, body, encoding
                )
            del body
            if identity.node is not None and report.host.hostname != identity.node:
                raise Rejected(
                    403,
                    "wrong_node",
                    f"this probe's token is bound to node {identity.node!r}; it may not "
                    f"report as {report.host.hostname[:253]!r}",
                )
            self._claim(identity, report.probe_id)
            self.merge(report)
        except Rejected as exc:
            self.metrics.rejected.labels(exc.reason).inc()
            if exc.status == 503:
                log.warning("report not checked (%s): %s", exc.reason, exc)
            log.info("report rejected (%s): %s", exc.reason, exc)
            return _error(exc.status, str(exc))
        self.metrics.reports.inc()
        self.metrics.report_bytes.inc(request.content_length or 0)
        self.metrics.ingest_seconds.observe(time.perf_counter() - started)
        return _json_response({"ok": True})

    # -- reads -------------------------------------------------------------------------------

    async def handle_topologies(self, request: web.Request) -> web.Response:
        await self._require(request, VIEW)
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
        await self._require(request, VIEW)
        name = request.match_info["topology"]
        nodes = self._topology_or_404(name)
        node_filter = _node_filter(request)
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
        try:
            await response.prepare(request)
            await response.write(b"")  # the headers alone (else joined with the body)
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:
                # The event loop refills the socket once per iteration, each time it is
                # writable: a send buffer as large as the system allows (net.core.wmem_max;
                # the kernel doubles it) takes the body in fewer refills than autotuning does.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, len(body))
            await response.write(memoryview(body))
            await response.write_eof()
        except ConnectionResetError:
            # the client hung up (aiohttp's ClientConnectionResetError): nobody to answer,
            # not an error of ours (it used to be logged with a traceback)
            log.debug("%s %s: the client went away during the answer", request.method, request.path)
        return response

    async def handle_node(self, request: web.Request) -> web.Response:
        await self._require(request, VIEW)
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
        answer: dict[str, Any] = {
            "node": node, "series": self.store.series.get(node_id), "children": children,
        }  # fmt: skip
        if name == "processes":
            # Command lines carry secrets often enough: only the control role sees them.
            if await self.auth.holds(self._presented(request), CONTROL):
                answer["cmdline"] = self.store.process_cmdline(node)
            else:
                answer["redacted"] = ["cmdline"]
        return _json_response(answer)

    async def handle_search(self, request: web.Request) -> web.Response:
        await self._require(request, VIEW)
        q = request.query.get("q", "").strip().lower()
        if not q:
            return _error(400, "query parameter q is required")
        if len(q) > MAX_QUERY_CHARS:
            return _error(400, f"q is over {MAX_QUERY_CHARS} characters")
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
        self._check_origin(request)
        await self._require(request, VIEW)
        name = request.match_info["topology"]
        self._topology_or_404(name)
        node_filter = _node_filter(request)
        ws = web.WebSocketResponse(heartbeat=30, protocols=(WS_PROTOCOL,))
        await ws.prepare(request)
        self.metrics.websockets.inc()
        self.store.eager.add(name)  # build this topology at ingest while someone watches
        try:
            await self.hub.serve(ws, name, node_filter, lambda: self.store.topology(name))
        finally:
            self.metrics.websockets.dec()
            if not self.hub.has_viewers(name):
                self.store.eager.discard(name)
        return ws

    # -- controls ----------------------------------------------------------------------------

    async def handle_control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        who = await self._require(request, LOGS if action == "logs" else CONTROL)
        node_id = request.match_info["node"]
        if len(node_id) > 2 * LIMITS.name:
            return _error(404, "no such container node")
        if action not in CONTROLS:
            return _error(400, f"unknown control {action!r}; known: {', '.join(CONTROLS)}")
        owner = self.store.container_owner(node_id)
        if owner is None:
            return _error(404, f"no container node {node_id[:200]!r}")
        args: dict[str, Any] | None = None
        if request.can_read_body:
            if (request.content_length or 0) > MAX_CONTROL_BODY_BYTES:
                return _error(413, f"a control body is at most {MAX_CONTROL_BODY_BYTES} bytes")
            raw = await request.content.read(MAX_CONTROL_BODY_BYTES + 1)
            if len(raw) > MAX_CONTROL_BODY_BYTES:
                return _error(413, f"a control body is at most {MAX_CONTROL_BODY_BYTES} bytes")
            if raw.strip():
                try:
                    parsed = _control_args.decode(raw)
                except msgspec.ValidationError as exc:
                    return _error(422, f"invalid control body: {exc}")
                except (msgspec.DecodeError, RecursionError):
                    return _error(
                        400,
                        'the body must be a JSON object such as {"tail": 100} or {"timeout": 5}',
                    )
                args = {k: v for k, v in msgspec.structs.asdict(parsed).items() if v is not None}
        probe_id, cid = owner
        pod = self._probe_pod(probe_id)

        def audit(result: str, detail: str = "") -> None:
            self.audit.record(who, action, node_id, cid, probe_id, result, detail, pod)

        refusal = self._protected(node_id, probe_id) if action != "logs" else None
        if refusal is not None:
            self.metrics.controls.labels(action, "refused").inc()
            audit("refused", refusal)
            return _error(403, refusal)
        try:
            result = await self.controls.request(probe_id, action, cid, args)
        except ControlUnavailable as exc:
            self.metrics.controls.labels(action, "unavailable").inc()
            audit("unavailable", str(exc))
            return _error(503, str(exc))
        except ControlFailed as exc:
            self.metrics.controls.labels(action, "failed").inc()
            audit("failed", str(exc))
            return _error(502, str(exc))
        self.metrics.controls.labels(action, "ok").inc()
        audit("ok")
        return _json_response({"ok": True, "node": node_id, "action": action, "result": result})

    async def handle_probe_control(self, request: web.Request) -> web.StreamResponse:
        self._check_origin(request)  # probes send no Origin; a browser page may not use it
        try:
            identity = await self._probe_identity(request)
        except Rejected as exc:
            return _error(exc.status, str(exc))
        probe_id = request.headers.get("X-Probe-Id", "")
        if not probe_id or len(probe_id) > LIMITS.name or not probe_id.isprintable():
            return _error(400, f"X-Probe-Id (1-{LIMITS.name} printable characters) is required")
        try:
            probe_id.encode()
        except UnicodeEncodeError:
            return _error(400, "X-Probe-Id must be UTF-8")
        try:
            self._claim(identity, probe_id)
        except Rejected as exc:
            log.info("control channel refused: %s", exc)
            return _error(exc.status, str(exc))
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.metrics.control_channels.inc()
        try:
            await self.controls.serve_probe(probe_id, ws, identity.principal)
        finally:
            self.metrics.control_channels.dec()
        return ws

    def _probe_pod(self, probe_id: str) -> tuple[str, str] | None:
        owner = self.probe_owners.get(probe_id, "")
        if owner.startswith("pod:") and "/" in owner:
            namespace, name = owner[4:].split("/", 1)
            return namespace, name
        return None

    def _protected(self, node_id: str, probe_id: str) -> str | None:
        """Why a control on this container is refused: a container of a protected namespace
        (the system's, the app's own) or the reporting probe's own pod; None: allowed."""
        if self.config.allow_protected_controls:
            return None
        node = self.store.topology("containers").get(node_id)
        if node is None:
            return None
        namespace = node.metadata.get(NAMESPACE_LABEL, "")
        if namespace and namespace in self.config.protected_namespaces:
            return (
                f"containers of namespace {namespace!r} are protected from controls "
                "(the app's --allow-protected-controls allows them)"
            )
        pod = self._probe_pod(probe_id)
        if pod is not None and (namespace, node.metadata.get(POD_NAME_LABEL, "")) == pod:
            return "a probe's own container is protected from controls"
        return None

    # -- misc --------------------------------------------------------------------------------

    async def handle_metrics(self, request: web.Request) -> web.Response:
        if self.config.metrics_auth:
            await self._require(request, METRICS)
        self.metrics.probes.set(len(self.store.probes))
        for topo, count in self.store.counts().items():
            self.metrics.nodes.labels(topo).set(count)
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_openapi(self, request: web.Request) -> web.Response:
        await self._require(request, VIEW)
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
            self._prune_owners()
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
        await self.audit.drain()
        self._decoder_pool.shutdown(wait=False, cancel_futures=True)
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
        app = web.Application(
            client_max_size=self.config.max_report_bytes + 1024, middlewares=[_errors_middleware]
        )
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


def _auth_http_error(exc: AuthError) -> web.HTTPException:
    text = json.dumps({"error": str(exc)})
    if exc.status == 403:
        return web.HTTPForbidden(text=text, content_type="application/json")
    if exc.status == 503:
        return web.HTTPServiceUnavailable(text=text, content_type="application/json")
    return web.HTTPUnauthorized(text=text, content_type="application/json")


@web.middleware
async def _errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error is JSON ``{"error": ...}``, aiohttp's own (unknown route, wrong method, not
    a WebSocket upgrade) included. No exception text in a response: an unexpected error is
    logged with its traceback and answered with a plain 500 (a bug to fix: bad input has its
    own 4xx)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        response = _error(exc.status, exc.reason)
        if hdrs.ALLOW in exc.headers:
            response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(500, "internal error (see the app's log)")
