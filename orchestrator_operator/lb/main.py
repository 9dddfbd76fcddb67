"""`orchestrator lb`: keeps an HAProxy's frontends, backends and servers equal to Marathon's
apps and tasks and the traffic ConfigMaps (docs/loadbalancer.md).

Threads: one follows Marathon's event stream (`/v2/events`), one watches the traffic
ConfigMaps, one receives HAProxy's request log; the main loop re-reads `/v2/apps?embed=
apps.tasks` when an event asks for it and every `--resync-seconds`, builds the plan
(lb/config.py, pure) and applies it: servers through the runtime API, a new config and a
reload only when the layout (frontends, backends, slot counts, TLS) changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from orchestrator_operator.common.health_server import build_app
from orchestrator_operator.lb import config as cfg
from orchestrator_operator.lb.endpoints import endpoint_servers
from orchestrator_operator.lb.haproxy import HaproxyError, Master, Runtime
from orchestrator_operator.lb.marathon import (
    LeaderFinder,
    MarathonClient,
    MarathonUnavailable,
    read_credentials,
)
from orchestrator_operator.lb.requestlog import LogReceiver, RequestLog
from orchestrator_operator.lb.weights import TRAFFIC_LABEL, Traffic, TrafficError, parse_traffic

log = logging.getLogger("orchestrator.lb")

REGISTRY = CollectorRegistry()
RELOADS = Counter("orchestrator_lb_reloads_total", "HAProxy config reloads.", registry=REGISTRY)
RUNTIME_COMMANDS = Counter(
    "orchestrator_lb_runtime_commands_total",
    "Commands sent to HAProxy's runtime API (servers added, removed, weighted).",
    registry=REGISTRY,
)
RESYNCS = Counter(
    "orchestrator_lb_marathon_resyncs_total", "Full reads of Marathon's apps.", registry=REGISTRY
)
EVENTS = Counter(
    "orchestrator_lb_marathon_events_total",
    "Marathon events received, by type.",
    ["type"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "orchestrator_lb_errors_total",
    "Failures, by what failed (marathon, kubernetes, haproxy).",
    ["source"],
    registry=REGISTRY,
)
BACKENDS = Gauge("orchestrator_lb_backends", "Backends served.", registry=REGISTRY)
SERVERS = Gauge(
    "orchestrator_lb_servers", "Servers by state (ready, drain).", ["state"], registry=REGISTRY
)
LAST_SYNC = Gauge(
    "orchestrator_lb_last_sync_timestamp_seconds",
    "When HAProxy last matched Marathon.",
    registry=REGISTRY,
)
MARATHON_UP = Gauge(
    "orchestrator_lb_marathon_connected",
    "1 while the event stream is attached to Marathon.",
    registry=REGISTRY,
)
LOG_LINES = Gauge(
    "orchestrator_lb_request_log_entries_total",
    "Request log lines received from HAProxy.",
    registry=REGISTRY,
)

TERMINAL = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_LOST",
        "TASK_ERROR",
        "TASK_GONE",
        "TASK_DROPPED",
        "TASK_UNREACHABLE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN",
    }
)
ENDPOINTSLICE_API = "discovery.k8s.io/v1"
MAX_SLICES = 4096  # EndpointSlices of the namespace kept in memory
MAX_SOCKET_PATH = 97  # HAProxy refuses a longer unix socket path
STALE_AFTER = 120.0  # /healthz fails when HAProxy has not matched Marathon for this long


@dataclass
class LbSettings:
    marathon_zk: str | None
    marathon_url: str | None
    credentials_file: Path | None
    namespace: str | None
    cluster: str | None
    groups: tuple[str, ...]
    run_dir: Path
    bind_address: str
    http_port: int | None
    https_port: int | None
    stats_port: int
    metrics_address: str
    metrics_port: int
    tls_dir: Path | None
    resync_seconds: float
    haproxy_binary: str | None
    log_port: int


@dataclass
class _Shared:
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    apps: dict[str, dict[str, Any]] | None = None
    resync: bool = True
    traffic: dict[str, Traffic] = field(default_factory=dict)
    traffic_problems: dict[str, str] = field(default_factory=dict)
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)  # EndpointSlices by name


def _resolve(host: str, cache: dict[str, str | None]) -> str | None:
    if cfg.is_ip(host):
        return host
    if host not in cache:
        try:
            cache[host] = str(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])
        except OSError:
            cache[host] = None
    return cache[host]


def resolved_apps(
    apps: Mapping[str, Mapping[str, Any]], cache: dict[str, str | None]
) -> list[dict[str, Any]]:
    """The apps with every task's host an IP (the runtime API takes addresses only): the
    agent's name resolved, else the task's first IP address."""
    out = []
    for app in apps.values():
        copied = dict(app)
        tasks = []
        for task in app.get("tasks") or []:
            task = dict(task)
            address = _resolve(str(task.get("host") or ""), cache)
            if address is None:
                ips = task.get("ipAddresses") or []
                address = str(ips[0].get("ipAddress")) if ips else None
            if address is not None:
                task["host"] = address
                tasks.append(task)
        copied["tasks"] = tasks
        out.append(copied)
    return out


class LoadBalancer:
    def __init__(self, settings: LbSettings) -> None:
        self.s = settings
        self.shared = _Shared()
        self.halt = threading.Event()
        self.run_dir = settings.run_dir
        self.config_path = self.run_dir / "haproxy.cfg"
        self.admin = str(self.run_dir / "admin.sock")
        self.runtime = Runtime(self.admin)
        self.master = Master(
            str(self.run_dir / "master.sock"), self.config_path, settings.haproxy_binary
        )
        self.requests = RequestLog()
        self.receiver = LogReceiver("127.0.0.1", settings.log_port, self.requests, self.app_of)
        self._apps_by_slot: dict[tuple[str, str], str] = {}
        finder = LeaderFinder(settings.marathon_zk, settings.marathon_url)
        self.finder = finder
        self.marathon = MarathonClient(finder, read_credentials(settings.credentials_file))
        self.layout: cfg.Layout | None = None
        self.assignment = cfg.Assignment()
        self.known: dict[str, list[cfg.SlotState | None]] = {}
        self.plan = cfg.Plan(())
        self.last_sync = 0.0
        self.heartbeat = time.monotonic()
        self.tls_pem: bytes | None = None
        self._dns: dict[str, str | None] = {}

    # ------------------------------------------------------------ threads
    def follow_events(self) -> None:
        while not self.halt.is_set():
            try:
                for event in self.marathon.events():
                    MARATHON_UP.set(1)
                    self.on_event(event)
                    if self.halt.is_set():
                        return
            except (MarathonUnavailable, OSError, Exception) as error:
                ERRORS.labels("marathon").inc()
                log.warning("Marathon event stream: %s", error)
            MARATHON_UP.set(0)
            self.request_resync()  # events may have been missed
            self.halt.wait(1.0)

    def on_event(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("eventType", ""))
        EVENTS.labels(kind if kind in _EVENT_NAMES else "other").inc()
        if kind == "event_stream_attached":
            self.request_resync()
            return
        if kind != "status_update_event":
            self.request_resync()
            return
        status, task_id = str(event.get("taskStatus")), str(event.get("taskId"))
        app_id = str(event.get("appId"))
        with self.shared.lock:
            app = (self.shared.apps or {}).get(app_id)
            if app is not None and (status == "TASK_KILLING" or status in TERMINAL):
                tasks = []
                for task in app.get("tasks") or []:
                    if task.get("id") == task_id:
                        if status in TERMINAL:
                            continue  # gone: its slot empties
                        task = {**task, "state": "TASK_KILLING"}  # drained at once
                    tasks.append(task)
                app["tasks"] = tasks
            if status not in TERMINAL and status != "TASK_KILLING":
                self.shared.resync = True  # a new task: its ports and health from /v2/apps
        self.shared.wake.set()

    def request_resync(self) -> None:
        with self.shared.lock:
            self.shared.resync = True
        self.shared.wake.set()

    def watch_traffic(self) -> None:
        if not self.s.namespace or not self.s.cluster:
            return
        from orchestrator_operator.common.kube_api import ApiError, KubeApi

        selector = f"{TRAFFIC_LABEL}={self.s.cluster}"
        api: KubeApi | None = None
        while not self.halt.is_set():
            try:
                api = api or KubeApi()
                items, version = api.list_with_version(
                    "v1", "ConfigMap", self.s.namespace, label_selector=selector
                )
                self._set_traffic({i["metadata"]["name"]: i for i in items}, replace=True)
                while not self.halt.is_set():
                    for event in api.watch(
                        "v1", "ConfigMap", self.s.namespace, version, 240, label_selector=selector
                    ):
                        kind, obj = event.get("type"), event.get("object") or {}
                        version = str(obj.get("metadata", {}).get("resourceVersion", version))
                        if kind == "ERROR":
                            raise ApiError(int(obj.get("code", 410)), str(obj.get("message")))
                        if kind == "BOOKMARK":
                            continue
                        name = obj["metadata"]["name"]
                        self._set_traffic({name: obj if kind != "DELETED" else None})
            except Exception as error:
                ERRORS.labels("kubernetes").inc()
                log.warning("traffic ConfigMaps: %s", error)
                self.halt.wait(2.0)

    def watch_endpoints(self) -> None:
        """The namespace's EndpointSlices (the off-ramp's Kubernetes servers): listed, then
        watched; a lost watch lists again. Only the slices of Services named by a traffic
        ConfigMap are used (lb/endpoints.py)."""
        if not self.s.namespace or not self.s.cluster:
            return
        from orchestrator_operator.common.kube_api import ApiError, KubeApi

        api: KubeApi | None = None
        while not self.halt.is_set():
            try:
                api = api or KubeApi()
                items, version = api.list_with_version(
                    ENDPOINTSLICE_API, "EndpointSlice", self.s.namespace
                )
                with self.shared.lock:
                    self.shared.slices = {i["metadata"]["name"]: _slim(i) for i in items}
                self.shared.wake.set()
                while not self.halt.is_set():
                    for event in api.watch(
                        ENDPOINTSLICE_API, "EndpointSlice", self.s.namespace, version, 240
                    ):
                        kind, obj = event.get("type"), event.get("object") or {}
                        version = str(obj.get("metadata", {}).get("resourceVersion", version))
                        if kind == "ERROR":
                            raise ApiError(int(obj.get("code", 410)), str(obj.get("message")))
                        if kind == "BOOKMARK":
                            continue
                        name = obj["metadata"]["name"]
                        with self.shared.lock:
                            if kind == "DELETED":
                                self.shared.slices.pop(name, None)
                            elif len(self.shared.slices) < MAX_SLICES or (
                                name in self.shared.slices
                            ):
                                self.shared.slices[name] = _slim(obj)
                        self.shared.wake.set()
            except Exception as error:
                ERRORS.labels("kubernetes").inc()
                log.warning("EndpointSlices: %s", error)
                self.halt.wait(2.0)

    def kubernetes_servers(self) -> dict[str, list[cfg.Server]]:
        """Traffic key (group or lone app id) -> the Kubernetes servers named by its
        ConfigMap's `kubernetes` (an empty list while the Service has no ready pod)."""
        with self.shared.lock:
            traffic = dict(self.shared.traffic)
            slices = list(self.shared.slices.values())
        out: dict[str, list[cfg.Server]] = {}
        for name in sorted(traffic):
            entry = traffic[name]
            if entry.kubernetes is not None and entry.group not in out:
                out[entry.group] = endpoint_servers(slices, entry.kubernetes)
        return out

    def _set_traffic(
        self, changes: Mapping[str, Mapping[str, Any] | None], replace: bool = False
    ) -> None:
        with self.shared.lock:
            traffic = {} if replace else dict(self.shared.traffic)
            problems = {} if replace else dict(self.shared.traffic_problems)
            for name, obj in changes.items():
                traffic.pop(name, None)
                problems.pop(name, None)
                if obj is None:
                    continue
                try:
                    traffic[name] = parse_traffic(name, obj.get("data"))
                except TrafficError as error:
                    problems[name] = str(error)
                    log.warning("%s", error)
            self.shared.traffic, self.shared.traffic_problems = traffic, problems
        self.shared.wake.set()

    # ------------------------------------------------------------ the loop
    def weights(self) -> dict[str, dict[str, int]]:
        with self.shared.lock:
            traffic = dict(self.shared.traffic)
        out: dict[str, dict[str, int]] = {}
        for name in sorted(traffic):
            group = traffic[name]
            if group.group in out:
                log.warning(
                    "configmap %s: group %s already has weights; ignored", name, group.group
                )
                continue
            out[group.group] = dict(group.weights)
            if group.kubernetes is not None:
                out[group.group][group.kubernetes.app_id] = group.kubernetes.weight
        return out

    def read_tls(self) -> None:
        if self.s.tls_dir is None:
            return
        try:
            crt = (self.s.tls_dir / "tls.crt").read_bytes()[: 1024 * 1024]
            key = (self.s.tls_dir / "tls.key").read_bytes()[: 1024 * 1024]
        except OSError as error:
            if self.tls_pem is None:
                log.warning("TLS: %s; the HTTPS frontend waits for the Secret", error)
            return
        pem = crt.rstrip(b"\n") + b"\n" + key
        if pem != self.tls_pem:
            path = self.run_dir / "tls.pem"
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            tmp.replace(path)
            self.tls_pem = pem

    def reserved(self) -> dict[int, str]:
        ports = {
            self.s.stats_port: "stats port",
            self.s.metrics_port: "metrics port",
            self.receiver.address[1]: "request log port",
        }
        if self.s.http_port:
            ports[self.s.http_port] = "HTTP port"
        if self.s.https_port:
            ports[self.s.https_port] = "HTTPS port"
        return ports

    def options(self) -> cfg.Options:
        tls = self.tls_pem is not None
        return cfg.Options(
            groups=self.s.groups,
            bind_address=self.s.bind_address,
            http_port=self.s.http_port,
            https_port=self.s.https_port if tls else None,
            tls_certificate=str(self.run_dir / "tls.pem") if tls else None,
            stats_port=self.s.stats_port,
            admin_socket=self.admin,
            log_target=f"127.0.0.1:{self.receiver.address[1]}",
        )

    def sync_once(self) -> None:
        with self.shared.lock:
            resync = self.shared.resync or self.shared.apps is None
            self.shared.resync = False
        if resync:
            try:
                apps = self.marathon.apps()
            except (MarathonUnavailable, OSError, ValueError) as error:
                ERRORS.labels("marathon").inc()
                log.warning("Marathon: %s", error)
                with self.shared.lock:
                    self.shared.resync = True
                if self.shared.apps is None:
                    return
            else:
                RESYNCS.inc()
                with self.shared.lock:
                    self.shared.apps = {str(a.get("id")): a for a in apps}
        with self.shared.lock:
            snapshot = copy.deepcopy(self.shared.apps or {})
        self.read_tls()
        ready = frozenset(
            s.task_id for b in self.plan.backends for s in b.servers if s.state == cfg.READY
        )
        plan = cfg.build_plan(
            resolved_apps(snapshot, self._dns),
            self.weights(),
            self.s.groups,
            self.reserved(),
            ready,
            self.kubernetes_servers(),
        )
        for problem in plan.problems:
            log.warning("%s", problem)
        self.apply(plan)

    def apply(self, plan: cfg.Plan) -> None:
        options = self.options()
        assignment, slots = cfg.assign_slots(plan, self.assignment, self.layout)
        layout = cfg.layout_of(plan, slots, cfg.tls_digest(self.tls_pem))
        if layout != self.layout or not self.runtime.available():
            text = cfg.render(plan, slots, options)
            tmp = self.config_path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.config_path)
            try:
                old_worker = self.runtime.worker_pid()
                self.master.reload()
                self._wait_for_worker(old_worker, {b.name for b in plan.backends})
            except HaproxyError as error:
                ERRORS.labels("haproxy").inc()
                log.error("HAProxy did not take the new config: %s", error)
                return
            RELOADS.inc()
            log.info("HAProxy reloaded: %d backends", len(plan.backends))
            self.layout = layout
            self.known = {name: [None] * len(states) for name, states in slots.items()}
        commands: list[str] = []
        for backend, states in slots.items():
            known = self.known.setdefault(backend, [None] * len(states))
            for number, state in enumerate(states, start=1):
                before = known[number - 1] if number - 1 < len(known) else None
                commands += cfg.runtime_commands(backend, number, before, state, state.host)
        if commands:
            try:
                problems = self.runtime.run(commands)
            except OSError as error:
                ERRORS.labels("haproxy").inc()
                log.error("HAProxy runtime API: %s", error)
                self.known = {}
                return
            RUNTIME_COMMANDS.inc(len(commands))
            if problems:
                ERRORS.labels("haproxy").inc()
                log.error("HAProxy runtime API answered: %s", "; ".join(problems[:5]))
                self.known = {name: [None] * len(v) for name, v in slots.items()}
                return
        self.known = {name: list(states) for name, states in slots.items()}
        counts = {b.name: _ready_count(b) for b in self.plan.backends}
        for changed in plan.backends:
            if counts.get(changed.name) != _ready_count(changed):
                log.info("backend %s: %d ready servers", changed.name, _ready_count(changed))
        self.assignment, self.plan = assignment, plan
        app_of_task = {s.task_id: s.app_id for b in plan.backends for s in b.servers}
        self._apps_by_slot = {
            (backend, f"srv{slot}"): app_of_task.get(task, "")
            for backend, tasks in assignment.slots.items()
            for task, slot in tasks.items()
        }
        self.last_sync = time.time()
        LAST_SYNC.set(self.last_sync)
        BACKENDS.set(len(plan.backends))
        for wanted in (cfg.READY, cfg.DRAIN):
            SERVERS.labels(wanted).set(
                sum(1 for b in plan.backends for srv in b.servers if srv.state == wanted)
            )

    def _wait_for_worker(self, before: int | None, names: set[str], timeout: float = 30.0) -> None:
        """Until the new worker (not `before`) answers on the admin socket with `names`:
        runtime commands sent to the old one would be lost or refused."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid = self.runtime.worker_pid()
                if pid is not None and pid != before and names <= self.runtime.backends():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HaproxyError(
                    f"backends {sorted(names)[:5]} not served {timeout:.0f} s after the reload"
                    f" (see HAProxy's log)"
                )
            time.sleep(0.1)

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.receiver.start()
        self.finder.start()
        server = _HttpServer(self, self.s.metrics_address, self.s.metrics_port)
        server.start()
        threads = [
            threading.Thread(target=self.follow_events, name="marathon-events", daemon=True),
            threading.Thread(target=self.watch_traffic, name="traffic", daemon=True),
            threading.Thread(target=self.watch_endpoints, name="endpoints", daemon=True),
        ]
        for thread in threads:
            thread.start()
        next_resync = 0.0
        try:
            while not self.halt.is_set():
                now = time.monotonic()
                if now >= next_resync:
                    self.request_resync()
                    next_resync = now + self.s.resync_seconds
                self.shared.wake.clear()
                self.heartbeat = time.monotonic()
                try:
                    self.sync_once()
                except Exception:
                    ERRORS.labels("haproxy").inc()
                    log.exception("sync failed")
                    self.known = {}
                LOG_LINES.set(self.requests.received)
                self.shared.wake.wait(min(2.0, max(0.05, next_resync - time.monotonic())))
                self.halt.wait(0.05)  # coalesce a burst of events into one sync
        finally:
            server.stop()
            self.master.stop()
            self.receiver.stop()
            self.finder.stop()
            self.marathon.close()
        return 0

    def app_of(self, backend: str, server: str) -> str:
        return self._apps_by_slot.get((backend, server), "")

    # ------------------------------------------------------------ HTTP
    def synced(self) -> bool:
        """Ready: HAProxy matched Marathon recently."""
        age = time.time() - self.last_sync if self.last_sync else None
        return age is not None and age < max(STALE_AFTER, 3 * self.s.resync_seconds)

    def health(self) -> tuple[bool, dict[str, object]]:
        """Alive while the loop turns (a Marathon that is down makes it unready, not dead:
        restarting the lb would not bring Marathon back)."""
        age = time.time() - self.last_sync if self.last_sync else None
        ok = time.monotonic() - self.heartbeat < STALE_AFTER
        with self.shared.lock:
            problems = dict(self.shared.traffic_problems)
        return ok, {
            "synced": self.synced(),
            "lastSyncSecondsAgo": round(age, 1) if age is not None else None,
            "backends": len(self.plan.backends),
            "problems": list(self.plan.problems)[:20] + list(problems.values())[:20],
        }

    def backend_view(self, name: str, seconds: float) -> dict[str, object] | None:
        backend = next((b for b in self.plan.backends if b.name == name), None)
        if backend is None:
            return None
        mapping = self.assignment.slots.get(name, {})
        summary = self.requests.summary(name, seconds)
        servers = [
            {
                "server": f"srv{mapping.get(s.task_id)}",
                "app": s.app_id,
                "task": s.task_id,
                "address": f"{s.host}:{s.port}",
                "weight": s.weight,
                "state": s.state,
            }
            for s in backend.servers
            if s.task_id in mapping
        ]
        return {**summary, "port": backend.port, "apps": summary["apps"], "servers": servers}


def _slim(endpoint_slice: Mapping[str, Any]) -> dict[str, Any]:
    """What lb/endpoints.py reads of an EndpointSlice (kept in memory per slice)."""
    meta = endpoint_slice.get("metadata") or {}
    return {
        "metadata": {"name": meta.get("name"), "labels": dict(meta.get("labels") or {})},
        "addressType": endpoint_slice.get("addressType"),
        "ports": list(endpoint_slice.get("ports") or []),
        "endpoints": [
            {
                "addresses": list(e.get("addresses") or [])[:1],
                "conditions": dict(e.get("conditions") or {}),
                "targetRef": {"name": (e.get("targetRef") or {}).get("name")},
            }
            for e in (endpoint_slice.get("endpoints") or [])[:1000]
            if isinstance(e, Mapping)
        ],
    }


def _ready_count(backend: cfg.Backend) -> int:
    return sum(1 for s in backend.servers if s.state == cfg.READY)


_EVENT_NAMES = frozenset(
    (
        "status_update_event",
        "health_status_changed_event",
        "deployment_info",
        "deployment_success",
        "deployment_failed",
        "deployment_step_success",
        "deployment_step_failure",
        "app_terminated_event",
        "api_post_event",
        "event_stream_attached",
    )
)


class _HttpServer:
    """/healthz, /readyz, /metrics and `GET /v1/backends[/<name>/stats?seconds=N]`."""

    def __init__(self, lb: LoadBalancer, host: str, port: int) -> None:
        self.lb = lb
        app = build_app(lb.synced, lb.health, REGISTRY)
        app.router.add_get("/v1/backends", self.backends)
        app.router.add_get("/v1/backends/{name}/stats", self.stats)
        self.app, self.host, self.port = app, host, port
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="http", daemon=True)

    async def backends(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "backends": [
                    {"name": b.name, "port": b.port, "apps": list(b.apps), "vhosts": list(b.vhosts)}
                    for b in self.lb.plan.backends
                ]
            }
        )

    async def stats(self, request: web.Request) -> web.Response:
        try:
            seconds = float(request.query.get("seconds", "30"))
        except ValueError:
            return web.json_response({"message": "seconds must be a number"}, status=400)
        if not 1 <= seconds <= 600:
            return web.json_response({"message": "seconds must be 1-600"}, status=400)
        view = self.lb.backend_view(request.match_info["name"], seconds)
        if view is None:
            return web.json_response({"message": "no such backend"}, status=404)
        return web.json_response(view)

    def start(self) -> None:
        self.thread.start()

        async def serve() -> web.AppRunner:
            runner = web.AppRunner(self.app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, self.host, self.port).start()
            return runner

        self.runner = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(30)

    def stop(self) -> None:
        if self.runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is outside 0-65535")
    return value


def add_lb_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "lb", help="load balancer: HAProxy kept equal to Marathon's apps (docs/loadbalancer.md)"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--marathon-zk",
        help="Marathon's ZooKeeper URL zk://host:port/path (its leader latch), or file:///path"
        " holding it (a URL with credentials belongs in a file)",
    )
    where.add_argument("--marathon", help="a fixed Marathon URL instead of its leader latch")
    parser.add_argument(
        "--marathon-credentials-file", type=Path, help="Marathon's HTTP credentials user:password"
    )
    parser.add_argument("--namespace", help="where the traffic ConfigMaps are (with --cluster)")
    parser.add_argument("--cluster", help="the MesosCluster whose traffic ConfigMaps to follow")
    parser.add_argument(
        "--group",
        action="append",
        help="serve apps whose HAPROXY_GROUP is this (repeat; default: external)",
    )
    parser.add_argument("--run-dir", type=Path, default=Path("/var/run/lb"))
    parser.add_argument("--bind-address", default="0.0.0.0")
    parser.add_argument("--http-port", type=_port, default=80, help="the vhost frontend; 0: none")
    parser.add_argument("--https-port", type=_port, default=443)
    parser.add_argument(
        "--tls-dir", type=Path, help="a mounted kubernetes.io/tls Secret (tls.crt, tls.key)"
    )
    parser.add_argument("--stats-port", type=_port, default=9090, help="HAProxy's /metrics")
    parser.add_argument("--metrics-address", default="0.0.0.0")
    parser.add_argument("--metrics-port", type=_port, default=9091, help="the lb's own endpoints")
    parser.add_argument("--log-port", type=_port, default=0, help="UDP for HAProxy's request log")
    parser.add_argument("--resync-seconds", type=float, default=30.0)
    parser.add_argument(
        "--haproxy-binary",
        help="start HAProxy's master from here (else a haproxy container runs it)",
    )
    parser.add_argument("--log-format", choices=["plain", "json"], default="plain")
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(func=run_lb)


def run_lb(args: argparse.Namespace) -> int:
    from orchestrator_operator.common.logs import configure_logging

    configure_logging(args.verbose, args.log_format)
    if not args.verbose:  # one line per Marathon and API request otherwise
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if not 1.0 <= args.resync_seconds <= 3600.0:
        print("orchestrator lb: --resync-seconds must be 1-3600", file=sys.stderr)
        return 2
    if (args.namespace is None) != (args.cluster is None):
        print("orchestrator lb: give --namespace and --cluster together", file=sys.stderr)
        return 2
    settings = LbSettings(
        marathon_zk=args.marathon_zk,
        marathon_url=args.marathon,
        credentials_file=args.marathon_credentials_file,
        namespace=args.namespace,
        cluster=args.cluster,
        groups=tuple(args.group or [cfg.DEFAULT_GROUP]),
        run_dir=args.run_dir,
        bind_address=args.bind_address,
        http_port=args.http_port or None,
        https_port=args.https_port or None,
        stats_port=args.stats_port,
        metrics_address=args.metrics_address,
        metrics_port=args.metrics_port,
        tls_dir=args.tls_dir,
        resync_seconds=args.resync_seconds,
        haproxy_binary=args.haproxy_binary,
        log_port=args.log_port,
    )
    if len(str(args.run_dir / "master.sock")) > MAX_SOCKET_PATH:
        print(
            f"orchestrator lb: --run-dir is too long for HAProxy's sockets (at most"
            f" {MAX_SOCKET_PATH - len('/master.sock')} characters)",
            file=sys.stderr,
        )
        return 2
    try:
        lb = LoadBalancer(settings)
    except (ValueError, OSError) as error:
        print(f"orchestrator lb: {error}", file=sys.stderr)
        return 2

    def stop(*_: object) -> None:
        lb.halt.set()
        lb.shared.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return lb.run()
