"""testenv/simpods.py's translated MarathonApp pods (issue 21): the pod IP KWOK assigned
goes on `lo` only when it cannot shadow anything of this machine's."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import cast

from testenv.kube import KubeTestEnv
from testenv.simpods import AGENT, SimPodRunner, _Wanted, pod_ip_problem

HOST_NETS = [ipaddress.IPv4Network("192.0.2.0/24"), ipaddress.IPv4Network("10.100.0.0/16")]


def test_a_pod_ip_outside_the_machines_networks_may_go_on_lo() -> None:
    assert pod_ip_problem("10.244.0.7", HOST_NETS) is None


def test_a_pod_ip_inside_a_network_of_the_machine_is_refused_in_words() -> None:
    problem = pod_ip_problem("10.100.3.4", HOST_NETS)
    assert problem == "pod IP 10.100.3.4 is in this machine's network 10.100.0.0/16: not put on lo"


def test_loopback_unspecified_and_garbage_are_refused() -> None:
    for ip in ("127.0.0.5", "0.0.0.0", "224.0.0.1", "not-an-ip", "fe80::1"):
        assert pod_ip_problem(ip, HOST_NETS) is not None, ip


def test_with_cluster_dns_each_agents_node_name_resolves_to_an_address_of_its_own(
    tmp_path: Path,
) -> None:
    # An agent's --hostname is its node name: Marathon's health checks and the load
    # balancer connect to its tasks there, so the hosts file must name it.
    hosts = tmp_path / "hosts"
    runner = SimPodRunner(cast(KubeTestEnv, object()), "apps", tmp_path, cluster_dns=hosts)
    wanted = {
        f"agent-{node}": _Wanted(f"agent-{node}", f"uid-{node}", AGENT, node, {}, {})
        for node in ("kwok-node-0", "kwok-node-1")
    }
    runner._write_cluster_dns(wanted)
    lines = _names(hosts)
    assert set(lines) == {"kwok-node-0", "kwok-node-1"}
    addresses = set(lines.values())
    assert len(addresses) == 2
    assert all(ipaddress.IPv4Address(a).is_loopback for a in addresses)
    runner._write_cluster_dns(wanted)  # the same addresses on every write
    assert _names(hosts) == lines
    if runner._subnet is not None:
        runner._subnet.release()


def _names(hosts: Path) -> dict[str, str]:
    """name -> address of a hosts file."""
    names: dict[str, str] = {}
    for line in hosts.read_text().splitlines():
        address, *rest = line.split()
        names.update((name, address) for name in rest)
    return names
