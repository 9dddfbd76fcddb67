"""A client that hangs up while the monitoring app answers is not an error of the app.

Found by the chaos harness (tests/chaos/test_monitor_chaos.py, issue 20): with the app frozen
by SIGSTOP, the sampler's reads timed out and hung up; when the app resumed, each answer to a
closed connection was logged at ERROR with a traceback ("Error handling request ... Cannot
write to closing transport")."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator

import pytest

from orchestrator_operator.monitor.app.server import AppConfig
from tests.fixtures.monitor import MonitorHarness

TOKEN = "hangup-test-token-0123456789"


@pytest.fixture
def app() -> Iterator[MonitorHarness]:
    harness = MonitorHarness(AppConfig(token=TOKEN)).start()
    try:
        yield harness
    finally:
        harness.stop()


def test_a_client_hanging_up_mid_answer_logs_no_error(
    app: MonitorHarness, caplog: pytest.LogCaptureFixture
) -> None:
    request = (
        f"GET /api/topology/hosts HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", app.port), timeout=5)
            sock.sendall(request)
            # close with a reset at once: the app finds the connection gone when it answers
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        with app.client(TOKEN) as client:  # and it still answers the next client
            assert client.get("/api/topology/hosts").status_code == 200
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
