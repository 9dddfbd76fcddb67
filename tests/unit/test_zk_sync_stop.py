"""The sync engine stops promptly: a long read stops between windows of requests, and a
worker stuck on a request is cut short by closing the sessions (no ZooKeeper needed)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest
from kazoo.exceptions import ConnectionClosedError

from orchestrator_operator.sync.engine import SyncConfig, SyncEngine
from orchestrator_operator.zk.model import ReadAborted, Side
from orchestrator_operator.zk.reader import read_tree


class StuckClient:
    """A kazoo client whose requests never answer until the client is stopped."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.stopped = False

    def request(self) -> Any:
        self.closed.wait(30)
        raise ConnectionClosedError("Connection has been closed")

    def stop(self) -> None:
        self.stopped = True
        self.closed.set()

    def close(self) -> None:
        pass


def test_stop_closes_the_sessions_under_a_stuck_worker() -> None:
    engine = SyncEngine(SyncConfig("127.0.0.1:1", "127.0.0.1:2", ["/m"]))
    clients = {Side.A: StuckClient(), Side.B: StuckClient()}
    engine.clients = dict(clients)
    exited = threading.Event()

    def worker() -> None:  # as _run: a request that blocks, then the loop sees the stop
        with contextlib.suppress(ConnectionClosedError):
            clients[Side.A].request()
        exited.set()

    engine._worker = threading.Thread(target=worker, daemon=True)
    engine._worker.start()
    t0 = time.monotonic()
    engine.stop(timeout=0.3)
    assert time.monotonic() - t0 < 5
    assert exited.is_set() and all(c.stopped for c in clients.values())
    assert not engine.clients


def test_stop_lets_a_finishing_worker_finish_before_closing() -> None:
    engine = SyncEngine(SyncConfig("127.0.0.1:1", "127.0.0.1:2", ["/m"]))
    client = StuckClient()
    engine.clients = {Side.A: client}
    seen_open: list[bool] = []

    def worker() -> None:
        engine._stop.wait(5)
        seen_open.append(not client.stopped)  # the sessions were still open at the stop

    engine._worker = threading.Thread(target=worker, daemon=True)
    engine._worker.start()
    engine.stop(timeout=5)
    assert seen_open == [True] and client.stopped


class Tree:
    """Answers reads of a chain /r, /r/n0, /r/n0/n1, ... (kazoo async style)."""

    class Stat:
        ephemeralOwner = 0  # kazoo's names
        mtime = version = aversion = cversion = 0
        numChildren = 1

    class Done:
        def __init__(self, value: Any) -> None:
            self.value = value

        def get(self, timeout: float | None = None) -> Any:
            return self.value

    def __init__(self) -> None:
        self.reads = 0

    def get_async(self, path: str, watch: Any = None) -> Any:
        self.reads += 1
        return self.Done((b"", self.Stat()))

    def get_acls_async(self, path: str) -> Any:
        return self.Done(([], self.Stat()))

    def get_children_async(self, path: str, watch: Any = None) -> Any:
        return self.Done([f"n{path.count('/')}"])


def test_read_tree_stops_when_told() -> None:
    tree = Tree()
    stop = threading.Event()

    def abort() -> bool:
        if tree.reads >= 5:
            stop.set()
        return stop.is_set()

    with pytest.raises(ReadAborted):
        read_tree(tree, ["/r"], abort=abort)  # an endless chain: only the abort ends it
    assert tree.reads == 5
