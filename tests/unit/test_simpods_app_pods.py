"""testenv/simpods.py's translated MarathonApp pods (issue 21): the pod IP KWOK assigned
goes on `lo` only when it cannot shadow anything of this machine's."""

from __future__ import annotations

import ipaddress

from testenv.simpods import pod_ip_problem

HOST_NETS = [ipaddress.IPv4Network("192.0.2.0/24"), ipaddress.IPv4Network("10.100.0.0/16")]


def test_a_pod_ip_outside_the_machines_networks_may_go_on_lo() -> None:
    assert pod_ip_problem("10.244.0.7", HOST_NETS) is None


def test_a_pod_ip_inside_a_network_of_the_machine_is_refused_in_words() -> None:
    problem = pod_ip_problem("10.100.3.4", HOST_NETS)
    assert problem == "pod IP 10.100.3.4 is in this machine's network 10.100.0.0/16: not put on lo"


def test_loopback_unspecified_and_garbage_are_refused() -> None:
    for ip in ("127.0.0.5", "0.0.0.0", "224.0.0.1", "not-an-ip", "fe80::1"):
        assert pod_ip_problem(ip, HOST_NETS) is not None, ip
