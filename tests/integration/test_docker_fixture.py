"""The real Docker Engine fixture: containers run commands and talk to each other over TCP."""

from __future__ import annotations

import pytest

from testenv.docker import DockerEngine

pytestmark = pytest.mark.docker


def test_container_runs_a_command(docker_engine: DockerEngine, busybox_image: str) -> None:
    client = docker_engine.client()
    try:
        out = client.containers.run(
            busybox_image, ["sh", "-c", "echo hello from $(uname -s)"], remove=True
        )
    finally:
        client.close()
    assert out.decode().strip() == "hello from Linux"


def test_two_containers_talk_over_tcp(docker_engine: DockerEngine, busybox_image: str) -> None:
    client = docker_engine.client()
    server = client.containers.run(
        busybox_image,
        ["sh", "-c", "echo served-by-httpd > /var/www/index.html && httpd -f -p 8080 -h /var/www"],
        detach=True,
        name="fixture-http-server",
    )
    try:
        server.reload()
        address = server.attrs["NetworkSettings"]["IPAddress"]
        assert address
        # The client retries briefly in case httpd is not listening yet.
        out = client.containers.run(
            busybox_image,
            [
                "sh",
                "-c",
                f"for i in $(seq 50); do wget -qO- http://{address}:8080/ && exit 0; "
                "sleep 0.1; done; exit 1",
            ],
            remove=True,
        )
        assert out.decode().strip() == "served-by-httpd"
    finally:
        server.remove(force=True)
        client.close()
