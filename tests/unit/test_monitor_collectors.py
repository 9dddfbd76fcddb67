"""Probe collectors on this host: own sockets, own process, host facts."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import msgspec
import pytest

from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp
from orchestrator_operator.monitor.probe.agent import Probe
from orchestrator_operator.monitor.probe.collectors.connections import ConnectionCollector
from orchestrator_operator.monitor.probe.collectors.host import HostCollector
from orchestrator_operator.monitor.probe.collectors.processes import ProcessCollector
from orchestrator_operator.monitor.probe.main import add_probe_parser, probe_config
from orchestrator_operator.monitor.probe.sender import Backoff
from orchestrator_operator.monitor.report import encode_report


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


def _probe(*flags: str) -> Probe:
    parser = argparse.ArgumentParser()
    add_probe_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["probe", "--app", "http://127.0.0.1:1", "--no-docker", *flags])
    return Probe(probe_config(args, "t"))


def test_processes_get_their_own_fd_counts_without_a_socket_scan() -> None:
    me = {p.pid: p for p in ProcessCollector().collect()}[os.getpid()]
    assert me.open_files > 0
    given = {p.pid: p for p in ProcessCollector().collect({os.getpid(): 7})}
    assert given[os.getpid()].open_files == 7


def test_no_processes_no_connections_report_has_host_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("a disabled collector ran")

    monkeypatch.setattr(ProcessCollector, "collect", never)
    monkeypatch.setattr(ConnectionCollector, "collect", never)
    probe = _probe("--no-processes", "--no-connections", "--hostname", "quiet-node")
    assert probe.processes is None and probe.connections is None
    report = probe.collect()
    assert report.processes == () and report.connections == () and report.host_netns == 0
    assert report.host.hostname == "quiet-node"
    assert report.host.cpus >= 1 and report.host.memory_total > 0
    assert "127.0.0.1" in report.host.addresses
    body = encode_report(report)
    sent = msgspec.json.decode(body)
    assert "processes" not in sent and "connections" not in sent  # nothing sent for them
    app = MonitorApp(AppConfig(token="t"))
    app.ingest_bytes(body)  # the app takes it as a valid report
    assert list(app.store.topology("hosts")) == ["host:quiet-node"]
    assert app.store.topology("processes") == {}


def test_each_switch_leaves_the_other_collector_on() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        only_connections = _probe("--no-processes").collect()
        only_processes = _probe("--no-connections").collect()
    assert only_connections.processes == ()
    assert any(c.local_port == port and c.pid == os.getpid() for c in only_connections.connections)
    assert only_processes.connections == ()
    me = {p.pid: p for p in only_processes.processes}[os.getpid()]
    assert me.open_files > 0  # counted by the process collector itself


def test_the_probe_knows_its_own_container() -> None:
    """Issue 17, point 6: a probe refuses controls on its own container, found from the
    mounts Docker gives every container (or the cgroup path)."""
    from orchestrator_operator.monitor.probe.agent import own_container_id

    cid = "4f" * 32
    mountinfo = (
        "612 590 0:52 / / rw,relatime - overlay overlay rw\n"
        f"640 590 8:1 /var/lib/docker/containers/{cid}/hostname /etc/hostname rw - ext4 /dev/sda1\n"
    )
    assert own_container_id(mountinfo, "") == cid
    assert own_container_id("", f"0::/system.slice/docker-{cid}.scope\n") == cid
    assert own_container_id("", f"12:pids:/docker/{cid}\n") == cid
    assert own_container_id("612 590 0:52 / / rw - ext4 /dev/sda1\n", "0::/user.slice\n") is None
    probe = _probe("--no-processes", "--no-connections")
    probe.own_container = cid
    assert probe.is_own_container(cid[:12]) and probe.is_own_container(cid)
    assert not probe.is_own_container("ab" * 32) and not probe.is_own_container("")


def test_the_probe_reads_a_rotated_token_file(tmp_path: Path) -> None:
    """The kubelet rotates a projected token by swapping the file (a new inode): the next
    report and control connection carry the new token (issue 17, point 5)."""
    token = tmp_path / "token"
    token.write_text("first\n")
    probe = _probe("--no-processes", "--no-connections", "--token-file", str(token))
    assert probe.token() == "first" and probe.sender.token == "first"
    rotated = tmp_path / "token.new"
    rotated.write_text("second\n")
    os.replace(rotated, token)
    assert probe.token() == "second" and probe.sender.token == "second"
    token.unlink()  # unreadable for a moment: the last token stays
    assert probe.token() == "second"
