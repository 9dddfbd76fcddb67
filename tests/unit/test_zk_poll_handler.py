"""PollHandler.select keeps select.select's contract, which kazoo's connection loop uses."""

from __future__ import annotations

import socket
import time

import pytest

from orchestrator_operator.zk.handler import PollHandler


def test_select_reports_readable_writable_and_times_out() -> None:
    handler = PollHandler()
    left, right = socket.socketpair()
    try:
        t0 = time.monotonic()
        assert handler.select([left], [], [], 0.05) == ([], [], [])
        assert time.monotonic() - t0 >= 0.04  # waited for the timeout
        right.sendall(b"x")
        assert handler.select([left, right.fileno()], [right], [], 1.0) == ([left], [right], [])
        right.close()
        left.recv(1)
        assert handler.select([left], [], [], 1.0)[0] == [left]  # peer gone: readable (EOF)
    finally:
        left.close()
        right.close()


def test_select_rejects_a_negative_timeout() -> None:
    with pytest.raises(ValueError):
        PollHandler().select([], [], [], -1)
