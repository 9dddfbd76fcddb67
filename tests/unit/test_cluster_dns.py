"""The local platform's cluster DNS (testenv/cluster_dns.py) and the zoo.cfg a ZooKeeper pod
runs with (testenv/simpods.py): what `make run`'s processes resolve and bind."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from testenv.cluster_dns import parse_hosts, render_hosts, write_hosts
from testenv.simpods import zoo_cfg_for_pod

REPO = Path(__file__).resolve().parents[2]


def test_hosts_lines_give_every_address_of_a_name_in_order() -> None:
    text = render_hosts(
        [
            ("127.9.0.1", ["zk-0.zk-headless.default.svc", "ZK-CLIENT.default.svc."]),
            ("127.9.0.2", ["zk-client.default.svc"]),
        ]
    )
    names = parse_hosts(text + "# a comment\n\nbroken-line\n")
    assert names["zk-client.default.svc"] == ["127.9.0.1", "127.9.0.2"]
    assert names["zk-0.zk-headless.default.svc"] == ["127.9.0.1"]
    assert "broken-line" not in names


def test_a_python_process_with_the_site_dir_resolves_the_file_and_nothing_else(
    tmp_path: Path,
) -> None:
    hosts = tmp_path / "hosts"
    assert write_hosts(hosts, "127.9.0.7 zk-client.default.svc\n")
    assert not write_hosts(hosts, "127.9.0.7 zk-client.default.svc\n")  # unchanged: kept
    script = (
        "import socket\n"
        "print(sorted({a[4][0] for a in socket.getaddrinfo('zk-client.default.svc', 2181)}))\n"
        "try:\n"
        "    socket.getaddrinfo('not-there.default.svc', 2181)\n"
        "except socket.gaierror:\n"
        "    print('unknown')\n"
    )
    env = {"PYTHONPATH": str(REPO / "testenv" / "site"), "TESTENV_HOSTS_FILE": str(hosts)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[:2] == ["['127.9.0.7']", "unknown"]
    # Without the variable the hook is not installed: this process resolves as ever.
    try:
        found = socket.getaddrinfo("zk-client.default.svc", 2181)
    except socket.gaierror:
        found = []
    assert "127.9.0.7" not in {a[4][0] for a in found}


def test_a_zookeeper_pod_binds_its_client_port_to_its_own_address(tmp_path: Path) -> None:
    config = (
        "tickTime=2000\ndataDir=/data\nclientPort=2181\nstandaloneEnabled=false\n"
        "server.1=zk-0.zk-headless.ns.svc.cluster.local:2888:3888;2181\n"
        "server.2=zk-1.zk-headless.ns.svc.cluster.local:2888:3888;2181\n"
        "server.3=elsewhere.example:2888:3888;2181\n"
    )
    addresses = {"zk-0": "127.9.0.1", "zk-1": "127.9.0.2"}

    def address_of(host: str) -> str | None:
        labels = host.split(".")
        return addresses.get(labels[0]) if len(labels) > 3 and labels[3] == "svc" else None

    out = zoo_cfg_for_pod(config, tmp_path / "data", address_of).splitlines()
    assert "server.1=zk-0.zk-headless.ns.svc.cluster.local:2888:3888;127.9.0.1:2181" in out
    assert "server.2=zk-1.zk-headless.ns.svc.cluster.local:2888:3888;127.9.0.2:2181" in out
    assert "server.3=elsewhere.example:2888:3888;2181" in out  # not ours: as it was
    assert f"dataDir={tmp_path / 'data'}" in out
    assert not [line for line in out if line.startswith(("clientPort", "dataDir=/data"))]
