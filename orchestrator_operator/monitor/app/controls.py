"""Control forwarding: probes keep a WebSocket open to the app; a control request for a
container goes to the probe that reported it and the reply comes back on the same socket."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

from aiohttp import web

from orchestrator_operator.monitor.report import CONTROLS

MAX_ERROR_CHARS = 1000


class ControlUnavailable(RuntimeError):
    pass


class ControlFailed(RuntimeError):
    pass


class ControlRouter:
    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.channels: dict[str, web.WebSocketResponse] = {}
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    async def serve_probe(self, probe_id: str, ws: web.WebSocketResponse) -> None:
        """Hold one probe's control channel open, resolving replies to pending requests."""
        old = self.channels.get(probe_id)
        self.channels[probe_id] = ws
        if old is not None and not old.closed:
            await old.close()
        try:
            async for msg in ws:
                if msg.type != web.WSMsgType.TEXT:
                    continue
                try:
                    reply = json.loads(msg.data)
                    fut = self._pending.get(int(reply["id"]))
                except (ValueError, KeyError, TypeError, RecursionError):
                    continue  # not a reply: ignored, the channel stays open
                if fut is not None and not fut.done():
                    fut.set_result(reply)
        finally:
            if self.channels.get(probe_id) is ws:
                del self.channels[probe_id]

    async def request(
        self, probe_id: str, action: str, container_id: str, args: dict[str, Any] | None = None
    ) -> Any:
        if action not in CONTROLS:
            raise ValueError(f"unknown control {action!r}; known: {', '.join(CONTROLS)}")
        ws = self.channels.get(probe_id)
        if ws is None or ws.closed:
            raise ControlUnavailable(f"probe {probe_id} has no open control channel")
        req_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await ws.send_str(
                json.dumps(
                    {"id": req_id, "action": action, "container_id": container_id, "args": args}
                )
            )
            try:
                reply = await asyncio.wait_for(fut, self.timeout)
            except TimeoutError as exc:
                raise ControlUnavailable(f"probe {probe_id} did not answer in time") from exc
        finally:
            self._pending.pop(req_id, None)
        if not reply.get("ok"):
            # the engine's refusal as the probe relays it, cut to a readable length
            raise ControlFailed(str(reply.get("error", "control failed"))[:MAX_ERROR_CHARS])
        return reply.get("result")

    async def close(self) -> None:
        for ws in list(self.channels.values()):
            with contextlib.suppress(Exception):
                await ws.close()
