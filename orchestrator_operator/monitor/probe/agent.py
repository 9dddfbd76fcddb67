"""The probe: collect a full host snapshot every interval, send it to the app, and obey
container controls arriving on a WebSocket control channel it keeps open to the app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from orchestrator_operator.common.logs import OnChange
from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.monitor.probe.collectors.connections import (
    ConnectionCollector,
    SocketScan,
)
from orchestrator_operator.monitor.probe.collectors.docker import ControlError, DockerCollector
from orchestrator_operator.monitor.probe.collectors.host import HostCollector
from orchestrator_operator.monitor.probe.collectors.k8s import KubernetesCollector
from orchestrator_operator.monitor.probe.collectors.processes import ProcessCollector
from orchestrator_operator.monitor.probe.sender import Backoff, ReportSender, SendError
from orchestrator_operator.monitor.report import Report, encode_report

log = logging.getLogger(__name__)
_CONTAINER_ID = re.compile(r"(?:/containers/|/docker/|docker-)([0-9a-f]{64})\b")


def own_container_id(*texts: str) -> str | None:
    """The Docker container this process runs in, from /proc/self/mountinfo (Docker mounts
    its hostname, hosts and resolv.conf from /var/lib/docker/containers/<id>/) or
    /proc/self/cgroup (``/docker/<id>``, ``docker-<id>.scope``); None outside Docker."""
    for text in texts:
        match = _CONTAINER_ID.search(text)
        if match:
            return match.group(1)
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


@dataclass
class ProbeConfig:
    app_url: str
    token: str
    interval: float = 3.0
    docker_url: str | None = "unix:///var/run/docker.sock"
    hostname: str | None = None
    kubernetes: bool = False
    kubeconfig: str | None = None
    probe_id: str | None = None
    processes: bool = True  # --no-processes turns the process collector off
    connections: bool = True  # --no-connections turns the socket scan off
    # Read the token again from this file when it changes (a projected ServiceAccount token
    # the kubelet rotates); `token` is its first content.
    token_file: str | None = None
    tls: ReloadingTls | None = None  # https:// to the app: its CA, our certificate (mTLS)


class Probe:
    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        self.hostname = config.hostname or socket.gethostname()
        self.probe_id = config.probe_id or f"{self.hostname}-{secrets.token_hex(4)}"
        self.host = HostCollector(self.hostname)
        # A collector switched off is never built: nothing is read for it, nothing is sent.
        self.processes = ProcessCollector() if config.processes else None
        self.connections = ConnectionCollector() if config.connections else None
        self.docker = DockerCollector(config.docker_url) if config.docker_url else None
        self.k8s = (
            KubernetesCollector(self.hostname, config.kubeconfig) if config.kubernetes else None
        )
        self.sender = ReportSender(config.app_url, config.token, tls=config.tls)
        # An app that is down or a name that does not resolve: said once, then on change.
        self._send_trouble = OnChange(log)
        self._control_trouble = OnChange(log, logging.INFO)
        self.seq = 0
        self.reports_sent = 0
        self._report_now = asyncio.Event()
        self._control_tasks: set[asyncio.Task[None]] = set()
        self._token_stamp: tuple[int, int] | None = None
        # Controls never act on the probe's own container (issue 17, point 6).
        self.own_container = own_container_id(
            _read("/proc/self/mountinfo"), _read("/proc/self/cgroup")
        )

    def token(self) -> str:
        """The current token: the file's content when it changed (rotation), else the last."""
        path = self.config.token_file
        if path:
            try:
                st = os.stat(path)
                stamp = (st.st_mtime_ns, st.st_ino)
                if stamp != self._token_stamp:
                    with open(path, encoding="utf-8") as f:
                        token = f.read().strip()
                    if token:
                        self.config.token = token
                        self._token_stamp = stamp
            except OSError as exc:
                log.warning("token file %s unreadable, keeping the last token: %s", path, exc)
        self.sender.token = self.config.token
        return self.config.token

    def collect(self) -> Report:
        # The socket scan also yields fd counts and each pid's network namespace. Without it
        # the process collector counts fds itself, and containers carry no netns (only
        # connections are attributed through it).
        scan = self.connections.collect() if self.connections else SocketScan()
        fd_counts = scan.fd_counts if self.connections else None
        processes = self.processes.collect(fd_counts) if self.processes else []
        containers = self.docker.collect(scan.pid_netns) if self.docker else []
        pods, services = self.k8s.collect() if self.k8s else ([], [])
        self.seq += 1
        return Report(
            probe_id=self.probe_id,
            host=self.host.collect(),
            timestamp=time.time(),
            interval=self.config.interval,
            seq=self.seq,
            host_netns=scan.host_netns,
            processes=tuple(processes),
            connections=tuple(scan.connections),
            containers=tuple(containers),
            pods=tuple(pods),
            services=tuple(services),
        )

    async def report_loop(self, stop: asyncio.Event) -> None:
        backoff = Backoff(maximum=max(30.0, self.config.interval))
        while not stop.is_set():
            started = time.monotonic()
            self._report_now.clear()
            try:
                report = await asyncio.to_thread(self.collect)
                self.token()  # a rotated token goes with this report
                await self.sender.send(encode_report(report))
                self.reports_sent += 1
                backoff.reset()
                self._send_trouble.clear("reports reach the app again")
                wait = max(0.0, self.config.interval - (time.monotonic() - started))
            except SendError as exc:
                wait = backoff.delay()
                self._send_trouble.report(
                    "reports not sent (%s); retrying (said again on change)", exc
                )
            except Exception:
                wait = backoff.delay()
                log.exception("collection failed; retrying in %.1f s", wait)
            await _wait_any(stop, self._report_now, wait)

    async def control_loop(self, stop: asyncio.Event) -> None:
        url = self.config.app_url.rstrip("/") + "/api/probe/control"
        backoff = Backoff()
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                headers = {"Authorization": f"Bearer {self.token()}", "X-Probe-Id": self.probe_id}
                try:
                    ssl_context = self.config.tls.current() if self.config.tls else True
                    async with session.ws_connect(
                        url, headers=headers, heartbeat=20, ssl=ssl_context
                    ) as ws:
                        backoff.reset()
                        if not self._control_trouble.clear("control channel open to %s", url):
                            log.info("control channel open to %s", url)
                        await self._serve_controls(ws, stop)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    self._control_trouble.report("control channel: %s", exc)
                await _wait_any(stop, None, backoff.delay())

    async def _serve_controls(
        self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event
    ) -> None:
        stop_task = asyncio.create_task(stop.wait())
        try:
            while True:
                recv = asyncio.create_task(ws.receive())
                done, _ = await asyncio.wait({recv, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                if stop_task in done:
                    recv.cancel()
                    return
                msg = recv.result()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return
                task = asyncio.create_task(self._run_control(ws, msg.data))
                self._control_tasks.add(task)
                task.add_done_callback(self._control_tasks.discard)
        finally:
            stop_task.cancel()

    async def _run_control(self, ws: aiohttp.ClientWebSocketResponse, data: str) -> None:
        reply: dict[str, Any]
        try:
            req = json.loads(data)
            req_id = req.get("id")
        except (ValueError, AttributeError):
            return
        try:
            if self.docker is None:
                raise ControlError("this probe has no Docker collector")
            if self.is_own_container(str(req["container_id"])) and req["action"] != "logs":
                raise ControlError("the probe's own container is protected from controls")
            result = await asyncio.to_thread(
                self.docker.control, str(req["action"]), str(req["container_id"]), req.get("args")
            )
            reply = {"id": req_id, "ok": True, "result": result}
        except (ControlError, KeyError, ValueError, TypeError) as exc:
            reply = {"id": req_id, "ok": False, "error": str(exc)}
        with contextlib.suppress(Exception):
            await ws.send_str(json.dumps(reply))
        self._report_now.set()  # show the new state without waiting for the interval

    def is_own_container(self, container_id: str) -> bool:
        own = self.own_container
        if not own or not container_id:
            return False
        return own.startswith(container_id) or container_id.startswith(own)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        tasks = [
            asyncio.create_task(self.report_loop(stop)),
            asyncio.create_task(self.control_loop(stop)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await self.sender.close()
            if self.docker is not None:
                self.docker.close()


async def _wait_any(stop: asyncio.Event, other: asyncio.Event | None, timeout: float) -> None:
    waiters = [asyncio.create_task(stop.wait())]
    if other is not None:
        waiters.append(asyncio.create_task(other.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def default_docker_url() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
