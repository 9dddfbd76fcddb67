"""Finding the leading Mesos master the way Mesos clients do."""

from __future__ import annotations

import json
import socket
import struct

import pytest

from orchestrator_operator.mesos.leader import lowest_contender, parse_master_info


def test_lowest_sequence_leads_and_other_znodes_are_ignored() -> None:
    children = ["log_replicas", "json.info_0000000012", "json.info_0000000003", "info_0000000001"]
    assert lowest_contender(children) == "json.info_0000000003"
    assert lowest_contender(["log_replicas"]) is None


def test_master_info_with_address() -> None:
    data = json.dumps({
        "id": "abc", "port": 5050, "hostname": "m1",
        "address": {"hostname": "m1.example", "ip": "10.1.2.3", "port": 5050},
    }).encode()  # fmt: skip
    info = parse_master_info("json.info_0000000001", data)
    assert (info.hostname, info.address, info.id) == ("m1.example", "10.1.2.3:5050", "abc")


def test_master_info_with_only_the_packed_ip() -> None:
    # Mesos writes `ip` as the uint32 of the address in network byte order.
    packed = struct.unpack("<I", socket.inet_aton("192.168.7.9"))[0]
    info = parse_master_info("json.info_1", json.dumps({"ip": packed, "port": 5051}).encode())
    assert info.address == "192.168.7.9:5051"


def test_garbage_master_info_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_master_info("json.info_1", b'{"port": 5050}')
