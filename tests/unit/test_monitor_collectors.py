"""Probe collectors on this host: own sockets, own process, host facts."""

from __future__ import annotations

import os
import socket

from orchestrator_operator.monitor.collectors.connections import ConnectionCollector
from orchestrator_operator.monitor.collectors.host import HostCollector
from orchestrator_operator.monitor.collectors.processes import ProcessCollector
from orchestrator_operator.monitor.sender import Backoff


def test_sock_diag_and_proc_net_agree_on_our_sockets() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                scans = [
                    ConnectionCollector(use_sock_diag=flag).collect() for flag in (True, False)
                ]
                local = client.getsockname()[1]
    for scan in scans:
        mine = {
            (c.state, c.local_port, c.remote_port)
            for c in scan.connections
            if c.pid == os.getpid() and c.proto == "tcp"
        }
        assert ("LISTEN", port, 0) in mine
        assert ("ESTABLISHED", local, port) in mine
        assert ("ESTABLISHED", port, local) in mine
        assert scan.fd_counts[os.getpid()] > 0
        assert scan.pid_netns[os.getpid()] == scan.host_netns


def test_process_and_host_collectors_see_this_process() -> None:
    procs = {p.pid: p for p in ProcessCollector().collect()}
    me = procs[os.getpid()]
    assert me.ppid == os.getppid()
    assert "python" in me.cmdline or "pytest" in me.cmdline
    assert me.rss > 0
    host = HostCollector().collect()
    assert host.hostname == socket.gethostname()
    assert host.cpus >= 1 and host.memory_total > 0
    assert "127.0.0.1" in host.addresses


def test_backoff_grows_and_resets() -> None:
    b = Backoff(initial=1.0, maximum=8.0)
    delays = [b.delay() for _ in range(6)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert delays[-1] >= 4.0
    b.reset()
    assert b.delay() <= 1.0
