"""The load balancer's pure parts: marathon-lb's labels to backends, slots, the config text,
the runtime API commands, the traffic ConfigMap and the weight arithmetic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator_operator.lb import config as cfg
from orchestrator_operator.lb.requestlog import RequestLog, parse, percentile
from orchestrator_operator.lb.weights import (
    TrafficError,
    expected_shares,
    parse_traffic,
    server_weights,
)


def task(app_id: str, n: int, state: str = "TASK_RUNNING", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{app_id.strip('/')}.{n}",
        "host": "10.0.0.1",
        "ports": [31000 + n],
        "state": state,
        **extra,
    }


def app(app_id: str, tasks: list[dict[str, Any]], **labels: str) -> dict[str, Any]:
    return {"id": app_id, "labels": labels, "portDefinitions": [{"port": 10001}], "tasks": tasks}


def test_an_app_gets_a_backend_on_its_service_port_with_its_running_tasks() -> None:
    plan = cfg.build_plan(
        [app("/shop/web", [task("/shop/web", 1), task("/shop/web", 2)])], {}, ["external"]
    )
    (backend,) = plan.backends
    assert backend.name == "shop_web_10001"
    assert backend.port == 10001
    assert [(s.host, s.port, s.state) for s in backend.servers] == [
        ("10.0.0.1", 31001, "ready"),
        ("10.0.0.1", 31002, "ready"),
    ]


def test_haproxy_0_port_wins_over_the_service_port_and_a_bad_one_is_reported() -> None:
    good = app("/a", [task("/a", 1)], HAPROXY_0_PORT="8080")
    bad = app("/b", [task("/b", 1)], HAPROXY_0_PORT="http")
    plan = cfg.build_plan([good, bad], {}, ["external"])
    assert [b.port for b in plan.backends] == [8080]
    assert any("HAPROXY_0_PORT='http' is not a port" in p for p in plan.problems)


def test_only_the_groups_served_and_the_default_group_is_external() -> None:
    apps = [
        app("/pub", [task("/pub", 1)]),
        app("/int", [task("/int", 1)], HAPROXY_GROUP="internal"),
    ]
    assert [b.apps for b in cfg.build_plan(apps, {}, ["external"]).backends] == [("/pub",)]
    assert [b.apps for b in cfg.build_plan(apps, {}, ["internal"]).backends] == [("/int",)]


def test_staging_unhealthy_and_portless_tasks_are_no_servers_and_killing_ones_drain() -> None:
    checks = [{"protocol": "HTTP", "path": "/health"}]
    tasks = [
        task("/a", 1, healthCheckResults=[{"alive": True}]),
        task("/a", 2, healthCheckResults=[{"alive": False}]),
        task("/a", 3),  # no result yet: not healthy
        task("/a", 4, state="TASK_STAGING"),
        task("/a", 5, state="TASK_KILLING"),
        {**task("/a", 6), "ports": []},
    ]
    plan = cfg.build_plan([{**app("/a", tasks), "healthChecks": checks}], {}, ["external"])
    servers = {s.task_id: s.state for s in plan.backends[0].servers}
    assert servers == {"a.1": "ready", "a.5": "drain"}


def test_a_ready_task_without_any_health_result_stays_ready_after_a_marathon_failover() -> None:
    checks = [{"protocol": "HTTP", "path": "/health"}]
    failed = {"alive": False, "lastFailure": "2026-12-03T21:00:00.000Z"}
    placeholder = {"alive": False, "lastSuccess": None, "lastFailure": None}
    tasks = [
        task("/a", 1, healthCheckResults=[placeholder]),
        task("/a", 2, healthCheckResults=[failed]),
        task("/a", 3),
    ]
    fresh = {**app("/a", tasks), "healthChecks": checks}
    # a.1 and a.2 were ready: a.1 has no result yet (a new leader; a placeholder that never
    # ran), a.2 failed a check; a.3 is new and has never passed one.
    plan = cfg.build_plan([fresh], {}, ["external"], ready_before=frozenset({"a.1", "a.2"}))
    assert [s.task_id for s in plan.backends[0].servers] == ["a.1"]


def test_a_deployment_group_is_one_backend_weighted_by_its_configmap() -> None:
    stable = app("/web", [task("/web", 1), task("/web", 2)], HAPROXY_DEPLOYMENT_GROUP="web")
    canary = app("/web-canary", [task("/web-canary", 3)], HAPROXY_DEPLOYMENT_GROUP="web")
    plan = cfg.build_plan([stable, canary], {"web": {"/web": 90, "/web-canary": 10}}, ["external"])
    (backend,) = plan.backends
    assert backend.name == "web_10001"
    assert backend.apps == ("/web", "/web-canary")
    weights = {s.task_id: s.weight for s in backend.servers}
    assert weights == {"web.1": 256, "web.2": 256, "web-canary.3": 57}
    # 57 / (2 * 256 + 57) = 10.0 %
    share = weights["web-canary.3"] / sum(weights.values())
    assert abs(share - 0.10) < 0.005


def test_without_a_configmap_every_server_weighs_the_same() -> None:
    stable = app("/web", [task("/web", 1), task("/web", 2)], HAPROXY_DEPLOYMENT_GROUP="web")
    canary = app("/web-canary", [task("/web-canary", 3)], HAPROXY_DEPLOYMENT_GROUP="web")
    plan = cfg.build_plan([stable, canary], {}, ["external"])
    assert {s.weight for s in plan.backends[0].servers} == {100}


def test_two_backends_on_one_port_the_second_is_left_out_and_said() -> None:
    apps = [app("/a", [task("/a", 1)]), app("/b", [task("/b", 1)])]
    plan = cfg.build_plan(apps, {}, ["external"])
    assert [b.apps for b in plan.backends] == [("/a",)]
    assert "port 10001 is already served by a_10001" in plan.problems[0]


def test_an_app_on_one_of_the_lbs_own_ports_is_left_out_and_said() -> None:
    apps = [app("/a", [task("/a", 1)], HAPROXY_0_PORT="9090"), app("/b", [task("/b", 1)])]
    plan = cfg.build_plan(apps, {}, ["external"], {9090: "stats port"})
    assert [b.apps for b in plan.backends] == [("/b",)]
    assert plan.problems == ("/a: port 9090 is the load balancer's stats port; left out",)


def test_vhosts_are_validated_and_routed_on_the_host_header() -> None:
    plan = cfg.build_plan(
        [app("/a", [task("/a", 1)], HAPROXY_0_VHOST="Shop.example.com, *.shop.example")],
        {},
        ["external"],
    )
    assert plan.backends[0].vhosts == ("*.shop.example", "shop.example.com")
    _, slots = cfg.assign_slots(plan, cfg.Assignment(), None)
    text = cfg.render(plan, slots, cfg.Options(bind_address="127.0.0.1", http_port=8080))
    assert "bind 127.0.0.1:8080" in text
    assert "acl host_a_10001 hdr(host),field(1,:) -i shop.example.com" in text
    assert "acl host_a_10001 hdr(host),field(1,:) -i -m end .shop.example" in text
    assert "use_backend a_10001 if host_a_10001" in text
    bad = cfg.build_plan([app("/b", [task("/b", 1)], HAPROXY_0_VHOST="x y; acl")], {}, ["external"])
    assert not bad.backends
    assert "is not a host name" in bad.problems[0]


def test_render_has_retries_redispatch_slots_stats_and_tls() -> None:
    plan = cfg.build_plan(
        [app("/a", [task("/a", 1)], HAPROXY_0_VHOST="a.example")], {}, ["external"]
    )
    _, slots = cfg.assign_slots(plan, cfg.Assignment(), None)
    options = cfg.Options(
        https_port=8443,
        tls_certificate="/run/lb/tls.pem",
        stats_port=9999,
        log_target="127.0.0.1:5140",
    )
    text = cfg.render(plan, slots, options)
    for line in (
        "retries 3",
        "option redispatch 1",
        "retry-on conn-failure empty-response",
        "http-request disable-l7-retry if !METH_GET !METH_OPTIONS",
        "http-request use-service prometheus-exporter if { path /metrics }",
        "bind 0.0.0.0:9999",
        "bind 0.0.0.0:8443 ssl crt /run/lb/tls.pem",
        "server srv1 10.0.0.1:31001 weight 100",
        "server srv8 127.0.0.1:1 disabled",
        "log 127.0.0.1:5140 len 1024 format raw local0 info",
        "timeout http-request 10000ms",
    ):
        assert line in text, line
    assert "srv9" not in text  # 8 slots for one server


def test_a_task_keeps_its_slot_and_new_tasks_fill_free_slots_without_a_new_layout() -> None:
    first = cfg.build_plan(
        [app("/a", [task("/a", 1), task("/a", 2), task("/a", 3)])], {}, ["external"]
    )
    assignment, slots = cfg.assign_slots(first, cfg.Assignment(), None)
    layout = cfg.layout_of(first, slots, None)
    assert [s.task_id for s in slots["a_10001"][:4]] == ["a.1", "a.2", "a.3", None]
    # a.2 goes, a.4 and a.5 come: a.1 and a.3 stay where they are
    second = cfg.build_plan(
        [app("/a", [task("/a", 1), task("/a", 3), task("/a", 4), task("/a", 5)])], {}, ["external"]
    )
    assignment2, slots2 = cfg.assign_slots(second, assignment, layout)
    assert [s.task_id for s in slots2["a_10001"][:5]] == ["a.1", "a.4", "a.3", "a.5", None]
    assert cfg.layout_of(second, slots2, None) == layout  # no reload
    # 9 tasks do not fit 8 slots: a new layout with 32 slots (room to double)
    many = cfg.build_plan([app("/a", [task("/a", n) for n in range(1, 10)])], {}, ["external"])
    _, slots3 = cfg.assign_slots(many, assignment2, layout)
    assert len(slots3["a_10001"]) == 32
    assert cfg.layout_of(many, slots3, None) != layout
    # A backend whose app has no task yet gets its slots at once: its first tasks need no
    # second reload.
    empty = cfg.build_plan([app("/a", [])], {}, ["external"])
    _, slots4 = cfg.assign_slots(empty, cfg.Assignment(), None)
    assert len(slots4["a_10001"]) == 8
    assert cfg.layout_of(empty, slots4, None) == layout


def test_runtime_commands_add_move_weigh_drain_and_empty_a_slot() -> None:
    empty = cfg.SlotState(None)
    new = cfg.SlotState("a.1", "10.0.0.1", 31001, 100, cfg.READY)
    assert cfg.runtime_commands("b", 1, empty, new, "10.0.0.1") == [
        "set server b/srv1 addr 10.0.0.1 port 31001",
        "set server b/srv1 weight 100",
        "set server b/srv1 state ready",
    ]
    assert cfg.runtime_commands("b", 1, new, new, "10.0.0.1") == []
    heavier = cfg.SlotState("a.1", "10.0.0.1", 31001, 200, cfg.READY)
    assert cfg.runtime_commands("b", 1, new, heavier, "10.0.0.1") == [
        "set server b/srv1 weight 200"
    ]
    draining = cfg.SlotState("a.1", "10.0.0.1", 31001, 0, cfg.DRAIN)
    assert cfg.runtime_commands("b", 1, new, draining, "10.0.0.1") == [
        "set server b/srv1 weight 0",
        "set server b/srv1 state drain",
    ]
    assert cfg.runtime_commands("b", 1, draining, empty, "") == ["set server b/srv1 state maint"]
    assert cfg.runtime_commands("b", 1, empty, empty, "") == []
    assert cfg.runtime_commands("b", 1, None, empty, "") == ["set server b/srv1 state maint"]
    other = cfg.SlotState("a.9", "10.0.0.2", 31009, 100, cfg.READY)
    assert (
        cfg.runtime_commands("b", 1, new, other, "10.0.0.2")[0] == "set server b/srv1 state maint"
    )


def test_a_traffic_configmap_is_parsed_and_bad_ones_say_why() -> None:
    body = {"group": "web", "weights": {"/web": 90, "web-canary": 10}}
    traffic = parse_traffic("web-traffic", {"weights.json": json.dumps(body)})
    assert traffic.group == "web"
    assert traffic.weights == {"/web": 90, "/web-canary": 10}
    for data, message in (
        ({}, "no weights.json key"),
        ({"weights.json": "{"}, "is not JSON"),
        ({"weights.json": json.dumps({"weights": {"/a": 100}})}, "non-empty string 'group'"),
        (
            {"weights.json": json.dumps({"group": "g", "weights": {"/a": 60, "/b": 30}})},
            "sum to 90",
        ),
        ({"weights.json": json.dumps({"group": "g", "weights": {"/a": 101}})}, "integer 0-100"),
        ({"weights.json": json.dumps({"group": "g", "weights": {"/a": True}})}, "integer 0-100"),
        ({"weights.json": "x" * 20000}, "larger than"),
    ):
        with pytest.raises(TrafficError, match=message):
            parse_traffic("t", data)


@pytest.mark.parametrize(
    ("shares", "healthy"),
    [
        ({"/s": 90, "/c": 10}, {"/s": 3, "/c": 1}),
        ({"/s": 75, "/c": 25}, {"/s": 4, "/c": 4}),
        ({"/s": 50, "/c": 50}, {"/s": 10, "/c": 1}),
        ({"/s": 25, "/c": 75}, {"/s": 5, "/c": 2}),
        ({"/s": 99, "/c": 1}, {"/s": 2, "/c": 2}),
        ({"/s": 0, "/c": 100}, {"/s": 3, "/c": 3}),
    ],
)
def test_the_weights_give_each_app_its_share_within_half_a_point(
    shares: dict[str, int], healthy: dict[str, int]
) -> None:
    weights = server_weights(shares, healthy)
    assert all(0 <= w <= 256 for w in weights.values())
    got = expected_shares(weights, healthy)
    for app_id, share in shares.items():
        assert abs(got[app_id] - share / 100) < 0.005, (weights, got)


def test_weights_of_apps_without_servers_or_share_and_the_fallback() -> None:
    assert server_weights({"/s": 90, "/c": 10}, {"/s": 2, "/c": 0, "/x": 1}) == {
        "/s": 256,
        "/c": 0,
        "/x": 0,
    }
    # the ConfigMap names only apps that have no healthy server: serve the group evenly
    assert server_weights({"/gone": 100}, {"/s": 2, "/c": 1}) == {"/s": 100, "/c": 100}


def test_the_request_log_gives_the_error_rate_and_percentiles_per_app() -> None:
    log = RequestLog()
    for n in range(100):
        entry = parse(
            f"<134>1 host haproxy - lbreq web_80 srv{1 + n % 2}"
            f" {500 if n % 10 == 0 else 200} {n} {n}",
            1000.0,
        )
        assert entry is not None
        log.add(
            entry.__class__(**{**entry.__dict__, "app": "/web" if n % 2 == 0 else "/web-canary"})
        )
    assert parse("garbage", 0.0) is None
    summary = log.summary("web_80", 30, now=1010.0)
    assert summary["requests"] == 100
    assert summary["errors5xx"] == 10
    assert summary["errorRate"] == 0.1
    assert summary["latencyP99Ms"] == 99.0
    apps: Any = summary["apps"]
    assert apps["/web"]["errors5xx"] == 10 and apps["/web-canary"]["errors5xx"] == 0
    assert log.summary("web_80", 5, now=1010.0)["requests"] == 0  # out of the window
    assert percentile([5], 0.99) == 5.0


def test_marathon_is_found_from_the_lowest_latch_member_and_urls_are_parsed(
    tmp_path: Any,
) -> None:
    from orchestrator_operator.lb.marathon import latch_leader, parse_zk_url, read_credentials

    # Curator's LeaderLatch: the lowest sequence leads, whatever the uuid prefix.
    assert latch_leader(["_c_b-latch-0000000003", "_c_a-latch-0000000002", "junk"]) == (
        "_c_a-latch-0000000002"
    )
    assert latch_leader([]) is None
    assert parse_zk_url("zk://z1:2181,z2:2181/mesos/marathon") == (
        "z1:2181,z2:2181",
        "/mesos/marathon",
        None,
    )
    url_file = tmp_path / "marathon"
    url_file.write_text("zk://user:s3cret@z1:2181/marathon\n")
    assert parse_zk_url(f"file://{url_file}") == ("z1:2181", "/marathon", ("user", "s3cret"))
    with pytest.raises(ValueError, match="must look like zk://host:port/path") as error:
        parse_zk_url("http://user:s3cret@z1/marathon")
    assert "s3cret" not in str(error.value)  # the message never carries the URL
    credentials = tmp_path / "credentials"
    credentials.write_text("admin:pass:word\n")
    assert read_credentials(credentials) is not None
    credentials.write_text("no-colon")
    with pytest.raises(ValueError, match="must be 'user:password'"):
        read_credentials(credentials)
