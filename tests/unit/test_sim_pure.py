"""Pure parts of the simulator: URLs, MasterInfo, resources, latch and store layout."""

from __future__ import annotations

import json

import pytest

from orchestrator_operator.mesos.leader import lowest_contender, parse_master_info
from sim import masterinfo
from sim.marathon import layout
from sim.resources import fits, parse_resources
from sim.zkurl import ZkUrl


def test_zk_url_parses_hosts_and_path() -> None:
    url = ZkUrl.parse("zk://a:2181,b:2181/ns/mesos/")
    assert url.hosts == "a:2181,b:2181"
    assert url.path == "/ns/mesos"
    assert str(url) == "zk://a:2181,b:2181/ns/mesos"


@pytest.mark.parametrize("bad", ["http://a/mesos", "zk:///mesos", "zk://a:2181", "zk://a:1/"])
def test_zk_url_rejects_bad_urls(bad: str) -> None:
    with pytest.raises(ValueError):
        ZkUrl.parse(bad)


def test_master_info_ip_is_network_order_uint32() -> None:
    assert masterinfo.ip_to_uint32("127.0.0.1") == 16777343
    assert masterinfo.ip_to_uint32("10.0.6.183") == 3070623754
    assert masterinfo.uint32_to_ip(3070623754) == "10.0.6.183"


def test_master_info_shape_and_operator_parser_agree() -> None:
    info = masterinfo.master_info("id-1", "127.0.0.1", 5050, "m1", "1.11.0")
    assert info["pid"] == "master@127.0.0.1:5050"
    assert info["address"] == {"hostname": "m1", "ip": "127.0.0.1", "port": 5050}
    parsed = parse_master_info("json.info_0000000001", masterinfo.encode(info))
    assert (parsed.ip, parsed.port, parsed.hostname, parsed.id) == ("127.0.0.1", 5050, "m1", "id-1")
    legacy = {k: v for k, v in info.items() if k != "address"}
    parsed = parse_master_info("json.info_0000000001", json.dumps(legacy).encode())
    assert parsed.ip == "127.0.0.1"


def test_leader_is_the_lowest_json_info_sequence() -> None:
    children = ["log_replicas", "json.info_0000000012", "json.info_0000000003", "other_1"]
    assert masterinfo.leader_node(children) == "json.info_0000000003"
    assert lowest_contender(children) == "json.info_0000000003"
    assert masterinfo.leader_node(["log_replicas"]) is None


def test_advertised_address_prefers_hostname() -> None:
    info = masterinfo.master_info("x", "127.0.0.1", 5050, "m1", "1")
    assert masterinfo.advertised(info) == "m1:5050"
    assert masterinfo.base_url(info) == "http://127.0.0.1:5050"


def test_resources_parse_scalars_and_skip_ranges() -> None:
    res = parse_resources("cpus:4;mem:8192;ports:[31000-32000];disk(*):100")
    assert res == {"cpus": 4.0, "mem": 8192.0, "disk": 100.0}
    assert fits({"cpus": 4.0}, res)
    assert not fits({"mem": 9000.0}, res)
    with pytest.raises(ValueError):
        parse_resources("cpus")


def test_curator_latch_leader_is_lowest_suffix() -> None:
    children = [
        "_c_b1-latch-0000000007",
        "_c_a2-latch-0000000002",
        "garbage",
        "_c_c3-latch-0000000010",
    ]
    assert layout.latch_leader(children) == "_c_a2-latch-0000000002"
    assert layout.latch_leader([]) is None


def test_framework_id_protobuf_round_trip() -> None:
    fid = "483d8d56-2775-492a-bec7-fb8c3f5dd1a0-0000"
    data = layout.encode_framework_id(fid)
    assert data[:2] == b"\x0a" + bytes([len(fid)])
    assert layout.decode_framework_id(data) == fid
    long_id = "x" * 300
    assert layout.decode_framework_id(layout.encode_framework_id(long_id)) == long_id
    with pytest.raises(ValueError):
        layout.decode_framework_id(b"garbage")


def test_app_ids_and_buckets() -> None:
    assert layout.normalize_app_id("prod/web/") == "/prod/web"
    assert layout.safe_id("/prod/web") == "prod_web"
    assert layout.valid_app_id("/prod/web-1")
    assert not layout.valid_app_id("/Prod")
    assert not layout.valid_app_id("/a//b")
    assert layout.bucket("prod_web") == layout.bucket("prod_web")
    assert int(layout.bucket("anything"), 16) < layout.BUCKETS
