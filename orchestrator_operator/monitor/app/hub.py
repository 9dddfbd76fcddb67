"""WebSocket fan-out: each viewer of a topology gets coalesced add/update/remove diffs.

Changes are merged into a per-viewer pending map (newest node wins), so a slow viewer costs at
most one entry per node, and a flush happens at most ``flush_interval`` after a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import msgspec
from aiohttp import WSMsgType, web

from orchestrator_operator.monitor.app.diff import Changes, Diff, view_diff
from orchestrator_operator.monitor.app.topology import Node, NodeFilter

_encoder = msgspec.json.Encoder()


class Viewer:
    def __init__(self, ws: web.WebSocketResponse, topology: str, node_filter: NodeFilter) -> None:
        self.ws = ws
        self.topology = topology
        self.filter = None if node_filter.is_empty() else node_filter
        self.visible: set[str] = set()
        self.pending: Changes = {}
        self.metrics_only: set[str] = set()  # pending ids whose every change was metrics
        self.wake = asyncio.Event()


class Hub:
    def __init__(self, flush_interval: float = 0.1, on_sent: Callable[[], None] | None = None):
        self.flush_interval = flush_interval
        self.viewers: dict[str, set[Viewer]] = {}
        self.on_sent = on_sent

    def has_viewers(self, topology: str) -> bool:
        return bool(self.viewers.get(topology))

    def count(self) -> int:
        return sum(len(v) for v in self.viewers.values())

    def publish(
        self, topology: str, changes: Changes, metrics_only: set[str] | None = None
    ) -> None:
        for viewer in self.viewers.get(topology, ()):
            pending = viewer.pending
            flags = viewer.metrics_only
            for nid in changes:
                if metrics_only and nid in metrics_only:
                    if nid not in pending:
                        flags.add(nid)
                else:
                    flags.discard(nid)
            pending.update(changes)
            viewer.wake.set()

    async def serve(
        self,
        ws: web.WebSocketResponse,
        topology: str,
        node_filter: NodeFilter,
        snapshot: Callable[[], Mapping[str, Node]],
    ) -> None:
        """Send the current topology as a reset diff, then diffs until the socket closes."""
        viewer = Viewer(ws, topology, node_filter)
        self.viewers.setdefault(topology, set()).add(viewer)
        try:
            first = view_diff(topology, viewer.visible, dict(snapshot()), viewer.filter)
            first.reset = True
            await ws.send_frame(_encoder.encode(first), WSMsgType.TEXT)
            reader = asyncio.create_task(self._drain(ws))
            try:
                while not ws.closed and not reader.done():
                    waiter = asyncio.create_task(viewer.wake.wait())
                    await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    if reader.done():
                        break
                    await asyncio.sleep(self.flush_interval)
                    viewer.wake.clear()
                    pending, viewer.pending = viewer.pending, {}
                    flags, viewer.metrics_only = viewer.metrics_only, set()
                    diff: Diff = view_diff(topology, viewer.visible, pending, viewer.filter, flags)
                    if not diff.empty():
                        # a text frame straight from the encoder's UTF-8 bytes (send_str
                        # would decode and encode again)
                        await ws.send_frame(_encoder.encode(diff), WSMsgType.TEXT)
                        if self.on_sent is not None:
                            self.on_sent()
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        finally:
            self.viewers[topology].discard(viewer)

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        async for _msg in ws:
            pass
