"""Probe and app against a real Docker Engine: containers, edges, controls, logs, processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator_operator.monitor.app.server import AppConfig
from orchestrator_operator.monitor.probe.agent import ProbeConfig
from testenv.docker import DockerEngine
from tests.fixtures.monitor import MonitorHarness, quote, wait_for

pytestmark = pytest.mark.docker

TOKEN = "monitor-test-token"


@pytest.fixture(scope="module")
def monitor(docker_engine: DockerEngine, busybox_image: str) -> Iterator[MonitorHarness]:
    harness = MonitorHarness(
        AppConfig(token=TOKEN),
        ProbeConfig(app_url="", token=TOKEN, interval=1.0, docker_url=docker_engine.base_url),
    ).start()
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture(scope="module")
def docker_client(docker_engine: DockerEngine) -> Iterator[Any]:
    client = docker_engine.client()
    try:
        yield client
    finally:
        client.close()


def topology(h: MonitorHarness, name: str) -> dict[str, Any]:
    with h.client() as c:
        nodes: dict[str, Any] = c.get(f"/api/topology/{name}").json()["nodes"]
    return nodes


def node(h: MonitorHarness, name: str, node_id: str) -> dict[str, Any] | None:
    with h.client() as c:
        r = c.get(f"/api/topology/{name}/{quote(node_id)}")
    return r.json() if r.status_code == 200 else None


def control(h: MonitorHarness, node_id: str, action: str) -> dict[str, Any]:
    with h.client() as c:
        r = c.post(f"/api/control/{quote(node_id)}/{action}")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def http_server(client: Any, image: str, name: str) -> Any:
    return client.containers.run(
        image,
        [
            "sh",
            "-c",
            "echo ok > /var/www/index.html; echo server-started; exec httpd -f -p 8080 -h /var/www",
        ],
        detach=True,
        name=name,
    )


def ip_of(container: Any) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["IPAddress"])


def test_containers_appear_with_metadata(
    monitor: MonitorHarness, docker_client: Any, busybox_image: str
) -> None:
    c = docker_client.containers.run(
        busybox_image,
        ["sleep", "600"],
        detach=True,
        name="meta-check",
        labels={"team": "monitoring", "purpose": "test"},
        ports={"8080/tcp": ("127.0.0.1", None)},
        mem_limit="64m",
    )
    try:
        nid = f"container:{c.id}"
        n = wait_for(
            "the running container in the containers topology",
            lambda: (
                (x := topology(monitor, "containers").get(nid))
                and x["metadata"]["state"] == "running"
                and x
            ),
        )
        ip = ip_of(c)
        meta = n["metadata"]
        assert n["label"] == "meta-check"
        assert meta["image"] == busybox_image
        assert meta["state"] == "running"
        assert meta["label.team"] == "monitoring" and meta["label.purpose"] == "test"
        assert meta["ips"] == ip
        assert meta["memory_limit_bytes"] == str(64 * 1024 * 1024)
        assert "->8080/tcp" in meta["ports"] and meta["ports"].startswith("127.0.0.1:")
        assert n["parents"]["host"] == f"host:{socket.gethostname()}"
        assert set(n["controls"]) >= {"stop", "pause", "restart", "logs"}
        detail = wait_for(
            "container memory in its series",
            lambda: (
                (d := node(monitor, "containers", nid))
                and d["series"].get("memory_usage_bytes")
                and d
            ),
        )
        assert detail["node"]["metrics"]["memory_usage_bytes"] > 0
        sleeper = f"process:{socket.gethostname()};{int(c.attrs['State']['Pid'])}"
        assert sleeper in detail["children"]["processes"]
    finally:
        c.remove(force=True)
    wait_for(
        "the removed container to leave the topology",
        lambda: nid not in topology(monitor, "containers"),
    )


def test_connection_between_containers_is_an_edge(
    monitor: MonitorHarness, docker_client: Any, busybox_image: str
) -> None:
    server = http_server(docker_client, busybox_image, "edge-server")
    try:
        ip = ip_of(server)
        # An HTTP connection held open (httpd waits for the request), re-opened in a loop.
        client = docker_client.containers.run(
            busybox_image,
            ["sh", "-c", f"while true; do sleep 30 | nc {ip} 8080; sleep 0.2; done"],
            detach=True,
            name="edge-client",
        )
        try:
            src, dst = f"container:{client.id}", f"container:{server.id}"
            n = wait_for(
                "the client->server edge",
                lambda: (
                    (x := topology(monitor, "containers").get(src))
                    and dst in x.get("adjacency", [])
                    and x
                ),
            )
            assert n["label"] == "edge-client"
            assert src not in topology(monitor, "containers")[dst].get("adjacency", [])
        finally:
            client.remove(force=True)
    finally:
        server.remove(force=True)


def test_stop_restart_pause_and_logs_through_the_api(
    monitor: MonitorHarness, docker_client: Any, busybox_image: str
) -> None:
    c = http_server(docker_client, busybox_image, "control-target")
    nid = f"container:{c.id}"
    try:
        wait_for("the container", lambda: topology(monitor, "containers").get(nid))

        logs = control(monitor, nid, "logs")["result"]["logs"]
        assert "server-started" in logs

        assert control(monitor, nid, "stop")["result"]["state"] == "exited"
        c.reload()
        assert c.status == "exited"
        wait_for(
            "stopped state in the topology",
            lambda: topology(monitor, "containers")[nid]["metadata"]["state"] == "exited",
        )
        assert "start" in topology(monitor, "containers")[nid]["controls"]

        assert control(monitor, nid, "start")["result"]["state"] == "running"
        c.reload()
        assert c.status == "running"
        pid_before = c.attrs["State"]["Pid"]

        assert control(monitor, nid, "restart")["result"]["state"] == "running"
        c.reload()
        assert c.status == "running" and c.attrs["State"]["Pid"] != pid_before
        assert c.attrs["RestartCount"] == 0 or c.attrs["State"]["StartedAt"]

        assert control(monitor, nid, "pause")["result"]["state"] == "paused"
        c.reload()
        assert c.status == "paused"
        wait_for(
            "paused state in the topology",
            lambda: topology(monitor, "containers")[nid]["metadata"]["state"] == "paused",
        )
        assert control(monitor, nid, "unpause")["result"]["state"] == "running"

        assert control(monitor, nid, "remove")["result"]["removed"] == c.id
        assert c.id not in {x.id for x in docker_client.containers.list(all=True)}
        wait_for(
            "the removed container to leave the topology",
            lambda: nid not in topology(monitor, "containers"),
        )
    finally:
        with contextlib.suppress(Exception):  # already removed by the test
            c.remove(force=True)


def test_a_process_appears_under_its_host_with_its_connections(
    monitor: MonitorHarness, docker_client: Any, busybox_image: str
) -> None:
    server = http_server(docker_client, busybox_image, "proc-server")
    try:
        ip = ip_of(server)
        script = (
            "import socket, sys, time\n"
            "lst = socket.socket(); lst.bind(('127.0.0.1', 0)); lst.listen()\n"
            f"out = socket.create_connection(('{ip}', 8080))\n"
            "print(lst.getsockname()[1], flush=True)\n"
            "time.sleep(600)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            host = socket.gethostname()
            pid_node = f"process:{host};{proc.pid}"
            n = wait_for(
                "the test's process with its connection to the container",
                lambda: (
                    (x := topology(monitor, "processes").get(pid_node)) and x.get("adjacency") and x
                ),
            )
            assert n["parents"]["host"] == f"host:{host}"
            assert n["metadata"]["pid"] == str(proc.pid)
            assert n["metadata"]["ppid"] == str(os.getpid())
            # the command line is on the node's detail, for the control role only (point 8)
            assert "cmdline" not in n["metadata"]
            assert "import socket" in (node(monitor, "processes", pid_node) or {})["cmdline"]
            assert n["metrics"]["connections"] >= 2  # the listener and the client socket
            server_pid = int(server.attrs["State"]["Pid"])
            httpd = f"process:{host};{server_pid}"
            assert httpd in n["adjacency"]
            host_detail = node(monitor, "hosts", f"host:{host}")
            assert host_detail is not None
            assert pid_node in host_detail["children"]["processes"]
            assert port > 0
        finally:
            proc.kill()
            proc.wait()
    finally:
        server.remove(force=True)
