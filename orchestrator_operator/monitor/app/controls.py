"""Control forwarding: probes keep a WebSocket open to the app; a control request for a
container goes to the probe that reported it and the reply comes back on the same socket.

Each channel keeps its own pending requests: a reply resolves only a request sent on the
channel it arrives on, so one probe cannot answer another's control requests. Which probe may
hold which channel is the app's decision (``MonitorApp``: a probe id belongs to the identity
that claimed it)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

from aiohttp import web

from orchestrator_operator.monitor.report import CONTROLS

MAX_ERROR_CHARS = 1000
MAX_PENDING = 64  # control requests waiting on one channel


class ControlUnavailable(RuntimeError):
    pass


class ControlFailed(RuntimeError):
    pass


class Channel:
    def __init__(self, probe_id: str, ws: web.WebSocketResponse, principal: str) -> None:
        self.probe_id = probe_id
        self.ws = ws
        self.principal = principal
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}

    def fail_pending(self, message: str) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ControlUnavailable(message))
        self.pending.clear()


class ControlRouter:
    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.channels: dict[str, Channel] = {}
        self._ids = itertools.count(1)

    def principal(self, probe_id: str) -> str | None:
        """Who holds `probe_id`'s open channel, if anyone."""
        channel = self.channels.get(probe_id)
        return channel.principal if channel is not None and not channel.ws.closed else None

    async def serve_probe(
        self, probe_id: str, ws: web.WebSocketResponse, principal: str = ""
    ) -> None:
        """Hold one probe's control channel open, resolving replies to its pending requests."""
        channel = Channel(probe_id, ws, principal)
        old = self.channels.get(probe_id)
        self.channels[probe_id] = channel
        if old is not None:
            old.fail_pending(f"probe {probe_id} opened a new control channel")
            if not old.ws.closed:
                await old.ws.close()
        try:
            async for msg in ws:
                if msg.type != web.WSMsgType.TEXT:
                    continue
                try:
                    reply = json.loads(msg.data)
                    fut = channel.pending.get(int(reply["id"]))
                except (ValueError, KeyError, TypeError, RecursionError):
                    continue  # not a reply: ignored, the channel stays open
                if fut is not None and not fut.done() and isinstance(reply, dict):
                    fut.set_result(reply)
        finally:
            channel.fail_pending(f"probe {probe_id}'s control channel closed")
            if self.channels.get(probe_id) is channel:
                del self.channels[probe_id]

    async def request(
        self, probe_id: str, action: str, container_id: str, args: dict[str, Any] | None = None
    ) -> Any:
        if action not in CONTROLS:
            raise ValueError(f"unknown control {action!r}; known: {', '.join(CONTROLS)}")
        channel = self.channels.get(probe_id)
        if channel is None or channel.ws.closed:
            raise ControlUnavailable(f"probe {probe_id} has no open control channel")
        if len(channel.pending) >= MAX_PENDING:
            raise ControlUnavailable(f"probe {probe_id} has {MAX_PENDING} controls in progress")
        req_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        channel.pending[req_id] = fut
        try:
            await channel.ws.send_str(
                json.dumps(
                    {"id": req_id, "action": action, "container_id": container_id, "args": args}
                )
            )
            try:
                reply = await asyncio.wait_for(fut, self.timeout)
            except TimeoutError as exc:
                raise ControlUnavailable(f"probe {probe_id} did not answer in time") from exc
        finally:
            channel.pending.pop(req_id, None)
        if not reply.get("ok"):
            # the engine's refusal as the probe relays it, cut to a readable length
            raise ControlFailed(str(reply.get("error", "control failed"))[:MAX_ERROR_CHARS])
        return reply.get("result")

    async def close(self) -> None:
        for channel in list(self.channels.values()):
            with contextlib.suppress(Exception):
                await channel.ws.close()
