"""Pure parts of the monitoring app: merge, topology building, diffs, ring buffers."""

from __future__ import annotations

import math

import msgspec
import pytest

from orchestrator_operator.monitor.app.diff import changes_between, view_diff
from orchestrator_operator.monitor.app.render import TopologyRenderer
from orchestrator_operator.monitor.app.series import SLOTS, STEP, Ring, SeriesStore
from orchestrator_operator.monitor.app.store import Store
from orchestrator_operator.monitor.app.topology import (
    PER_PROBE_TOPOLOGIES,
    Node,
    NodeFilter,
    build_contribution,
    container_edges,
    container_id,
    host_id,
    listen_endpoints,
    process_id,
    resolve_edges,
)
from orchestrator_operator.monitor.probe.collectors.connections import (
    decode_address,
    parse_proc_net,
)
from orchestrator_operator.monitor.report import (
    Connection,
    Container,
    Host,
    Pod,
    Process,
    Report,
    ReportInvalid,
    Service,
    decode_report,
    encode_report,
)
from testenv.synthetic_reports import container_hex, synthetic_report

NS_A, NS_B, NS_C = 4026531840, 4026532001, 4026532002


def two_hosts() -> tuple[Report, Report]:
    """Host a: a client process and a client container; host b: a server container."""
    cid_client = "a" * 64
    cid_server = "b" * 64
    a = Report(
        probe_id="pa",
        host=Host(hostname="a", addresses=("127.0.0.1", "192.168.1.10")),
        timestamp=1.0,
        host_netns=NS_A,
        processes=(
            Process(pid=100, name="curl", cmdline="curl http://10.0.0.2"),
            Process(pid=200, name="client", container_id=cid_client),
        ),
        containers=(
            Container(
                id=cid_client,
                name="client",
                state="running",
                ips=("10.0.1.5",),
                pid=200,
                netns=NS_C,
            ),
        ),
        connections=(
            Connection("tcp", "192.168.1.10", 40000, "10.0.0.2", 80, "ESTABLISHED", 100, NS_A),
            Connection("tcp", "10.0.1.5", 40001, "10.0.0.2", 80, "ESTABLISHED", 200, NS_C),
        ),
    )
    b = Report(
        probe_id="pb",
        host=Host(hostname="b", addresses=("127.0.0.1", "192.168.1.11")),
        timestamp=1.0,
        host_netns=NS_A,
        processes=(Process(pid=300, name="httpd", container_id=cid_server),),
        containers=(
            Container(
                id=cid_server,
                name="server",
                state="running",
                ips=("10.0.0.2",),
                pid=300,
                netns=NS_B,
            ),
        ),
        connections=(
            Connection("tcp", "0.0.0.0", 80, state="LISTEN", pid=300, netns=NS_B),
            Connection("tcp", "10.0.0.2", 80, "192.168.1.10", 40000, "ESTABLISHED", 300, NS_B),
        ),
    )
    return a, b


def test_report_roundtrip_and_limits() -> None:
    a, _ = two_hosts()
    assert decode_report(encode_report(a)) == a
    with pytest.raises(msgspec.DecodeError):
        decode_report(b"{not json")
    with pytest.raises(msgspec.ValidationError):
        decode_report(b'{"probe_id": 5, "host": {}, "timestamp": 1}')
    bad = msgspec.structs.replace(a, probe_id="")
    with pytest.raises(ReportInvalid):
        decode_report(encode_report(bad))


def test_proc_net_parsing() -> None:
    assert decode_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert decode_address("00000000000000000000000000000000:0050") == ("::", 80)
    assert decode_address("0000000000000000FFFF00000100007F:0016") == ("127.0.0.1", 22)
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
        "        0 12345 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0"
        "        0 12346 1 0000000000000000 100 0 0 10 0\n"
        "   2: 0100007F:9C41 0100007F:1F90 06 00000000:00000000 00:00000000 00000000     0"
        "        0 0 1 0000000000000000 100 0 0 10 0\n"
    )
    rows = parse_proc_net(text, "tcp")
    assert rows == [
        ("0.0.0.0", 8080, "0.0.0.0", 0, "LISTEN", 12345),
        ("127.0.0.1", 40000, "127.0.0.1", 8080, "ESTABLISHED", 12346),
    ]


def test_listen_endpoints_expand_wildcards_to_the_namespace_addresses() -> None:
    _, b = two_hosts()
    eps = listen_endpoints(b)
    owner = eps[("tcp", "10.0.0.2", 80)]
    assert owner.container == "b" * 64 and owner.pid == 300 and owner.host == "b"
    assert ("tcp", "192.168.1.11", 80) not in eps  # the container's port is not the host's


def test_cross_host_edges_in_every_topology() -> None:
    a, b = two_hosts()
    store = Store()
    store.ingest(b, 1.0)
    store.ingest(a, 1.0)
    procs = store.topology("processes")
    assert procs[process_id("a", 100)].adjacency == (process_id("b", 300),)
    conts = store.topology("containers")
    assert conts[container_id("a" * 64)].adjacency == (container_id("b" * 64),)
    hosts = store.topology("hosts")
    assert hosts[host_id("a")].adjacency == (host_id("b"),)
    # The server side of an accepted connection makes no edge of its own.
    assert conts[container_id("b" * 64)].adjacency == ()
    assert procs[process_id("b", 300)].parents == {
        "host": host_id("b"),
        "container": container_id("b" * 64),
    }


def test_merge_replaces_a_probes_snapshot_and_expires_it() -> None:
    a, b = two_hosts()
    store = Store(ttl=10.0, eager=set(PER_PROBE_TOPOLOGIES))
    store.ingest(a, 0.0)
    store.ingest(b, 0.0)
    assert len(store.topology("containers")) == 2
    # b's next snapshot has no container: it is removed, a's stays.
    b2 = msgspec.structs.replace(b, containers=(), processes=(), connections=())
    changes = store.ingest(b2, 5.0)
    assert changes["containers"] == {container_id("b" * 64): None}
    assert set(store.topology("containers")) == {container_id("a" * 64)}
    # a stops reporting: expired after ttl (5 intervals of 3 s = 15 s here).
    expired = store.expire(16.0)
    assert container_id("a" * 64) in expired["containers"]
    assert set(store.probes) == {"pb"}
    assert store.topology("hosts").keys() == {host_id("b")}


def test_identical_report_gives_no_changes() -> None:
    a, b = two_hosts()
    store = Store(eager=set(PER_PROBE_TOPOLOGIES))
    store.ingest(b, 1.0)
    first = store.ingest(a, 1.0)
    assert first
    assert store.ingest(a, 2.0) == {}


def test_lazy_topologies_are_built_on_read_only_for_probes_that_reported() -> None:
    a, b = two_hosts()
    store = Store(eager={"containers"})
    changes = store.ingest(b, 1.0)
    assert set(changes) == {"containers"}
    assert store.stale["processes"] == {"pb"}
    assert store.merged["processes"] == {}
    assert store.counts()["processes"] == 1  # counted from the report, nothing built
    assert set(store.topology("processes")) == {process_id("b", 300)}
    assert store.stale["processes"] == set()
    store.ingest(a, 2.0)
    assert store.stale["processes"] == {"pa"}
    procs = store.topology("processes")
    assert procs[process_id("a", 100)].adjacency == (process_id("b", 300),)


def test_pods_and_services() -> None:
    a, b = two_hosts()
    a = msgspec.structs.replace(
        a,
        pods=(
            Pod(
                uid="pa1",
                name="client-pod",
                namespace="ns",
                labels={"app": "client"},
                containers=("a" * 64,),
            ),
        ),
    )
    b = msgspec.structs.replace(
        b,
        pods=(
            Pod(
                uid="pb1",
                name="server-pod",
                namespace="ns",
                labels={"app": "server"},
                containers=("b" * 64,),
                ip="10.0.0.2",
            ),
        ),
        services=(
            Service(
                uid="s1",
                name="server",
                namespace="ns",
                selector={"app": "server"},
                cluster_ip="10.96.0.10",
                ports=(80,),
            ),
            Service(uid="s2", name="client", namespace="ns", selector={"app": "client"}),
        ),
    )
    store = Store()
    store.ingest(b, 1.0)
    store.ingest(a, 1.0)
    pods = store.topology("pods")
    assert pods["pod:pa1"].adjacency == ("pod:pb1",)
    services = store.topology("services")
    assert services["service:s1"].metadata["pods"] == "pod:pb1"
    assert services["service:s2"].adjacency == ("service:s1",)


def test_changes_and_filtered_view_diff() -> None:
    n1 = Node(id="x", topology="containers", label="one", metadata={"state": "running"})
    n2 = Node(id="y", topology="containers", label="two", metadata={"state": "running"})
    n2b = Node(id="y", topology="containers", label="two", metadata={"state": "exited"})
    changes = changes_between({"x": n1, "y": n2}, {"y": n2b})
    assert changes == {"x": None, "y": n2b}
    visible = {"x", "y"}
    only_running = NodeFilter(state="running")
    diff = view_diff("containers", visible, changes, only_running)
    assert sorted(diff.remove) == ["x", "y"] and diff.add == [] and visible == set()
    diff = view_diff("containers", visible, {"x": n1}, only_running)
    assert [n.id for n in diff.add] == ["x"] and visible == {"x"}
    diff = view_diff("containers", visible, {"x": n1}, only_running)
    assert [n.id for n in diff.update] == ["x"]


def test_ring_buffer_keeps_an_hour_of_15s_buckets() -> None:
    ring = Ring()
    t0 = 1_000_000 * STEP
    for k in range(SLOTS + 10):
        ring.put(t0 + k * STEP, float(k))
    pts = ring.points()
    assert len(pts) == SLOTS
    assert pts[0] == (t0 + 10 * STEP, 10.0)
    assert pts[-1][1] == float(SLOTS + 9)
    # a gap reads as missing, not as the values of an hour ago
    ring.put(t0 + (SLOTS + 20) * STEP, 1.5)
    pts = ring.points()
    times = [t for t, _ in pts]
    assert t0 + (SLOTS + 15) * STEP not in times
    assert pts[-1] == (t0 + (SLOTS + 20) * STEP, 1.5)
    # newest value in a bucket wins; older than the window is ignored
    ring.put(t0 + (SLOTS + 20) * STEP + 1, 2.5)
    ring.put(t0, -1.0)
    assert ring.points()[-1][1] == 2.5
    assert all(v != -1.0 for _, v in ring.points())
    assert not math.isnan(ring.points()[0][1])


def test_series_store_prunes_stale_series() -> None:
    store = SeriesStore()
    store.put("n1", [("cpu", 1.0), ("mem", 2.0)], 0.0)
    store.put("n2", [("cpu", 1.0)], 10_000.0)
    assert len(store) == 3
    assert store.prune(10_000.0) == 2
    assert list(store.series) == ["n2"]


def test_series_store_prunes_in_slices() -> None:
    store = SeriesStore()
    for k in range(5):
        store.put(f"old{k}", [("cpu", 1.0)], 0.0)
    store.put("new", [("cpu", 1.0)], 10_000.0)
    # two nodes per call: a pass over the six takes three calls, then a new pass starts
    assert sum(store.prune(10_000.0, budget=2) for _ in range(3)) == 5
    assert list(store.series) == ["new"] and len(store) == 1
    store.put("old5", [("cpu", 1.0)], 0.0)
    assert store.prune(10_000.0, budget=2) == 1
    assert list(store.series) == ["new"]


def test_synthetic_fleet_resolves_edges() -> None:
    store = Store()
    fleet = 5
    for i in range(fleet):
        store.ingest(synthetic_report(i, fleet), 1.0)
    for i in range(fleet):
        store.ingest(synthetic_report(i, fleet), 2.0)
    conts = store.topology("containers")
    assert len(conts) == fleet * 20
    assert len(store.topology("processes")) == fleet * 150
    edges = sum(len(n.adjacency) for n in conts.values())
    assert edges > 0
    some = conts[container_id(container_hex(0, 0))]
    assert all(d.startswith("container:") for d in some.adjacency)
    contribution = build_contribution(synthetic_report(1, fleet), store.endpoints.get)
    assert contribution.nodes["hosts"][host_id("host-1")].adjacency


def test_container_edges_agree_with_the_full_resolution() -> None:
    """The containers-only path gives the containers edges of the full resolution."""
    store = Store()
    fleet = 30
    for i in range(fleet):
        store.ingest(synthetic_report(i, fleet, containers=4, processes=10, connections=40), 1.0)
    a, b = two_hosts()
    store.ingest(a, 1.0)
    store.ingest(b, 1.0)
    edges = 0
    # the reports merged, and the next ones (10% of their connections re-drawn)
    reports = [
        synthetic_report(i, fleet, containers=4, processes=10, connections=40, seed=seed)
        for seed in (0, 1)
        for i in range(fleet)
    ]
    for report in [*reports, a, b]:
        full = resolve_edges(report, store.endpoints.get)["containers"]
        assert container_edges(report, store.endpoints.get) == full
        edges += len(full)
    assert edges > fleet


def test_rendered_topology_matches_the_merged_view() -> None:
    store = Store(eager={"containers"})
    renderer = TopologyRenderer(store)
    fleet = 4
    for i in range(fleet):
        store.ingest(synthetic_report(i, fleet, containers=3, processes=5, connections=12), 1.0)
    for topo in ("containers", "processes", "hosts", "services"):
        rendered = msgspec.json.decode(renderer.render(topo))
        expected = msgspec.json.decode(
            msgspec.json.encode({"topology": topo, "nodes": store.topology(topo)})
        )
        assert rendered == expected, topo
    # one probe changes and another leaves: fragments follow
    store.ingest(synthetic_report(1, fleet, containers=1, processes=5, connections=12), 2.0)
    store.remove_probe("probe-2")
    rendered = msgspec.json.decode(renderer.render("containers"))
    assert set(rendered["nodes"]) == set(store.topology("containers"))
    assert len(rendered["nodes"]) == 3 + 1 + 3
    # a topology read recently is kept warm: its changed fragments are encoded ahead of the
    # next read, which then has nothing left to encode
    store.ingest(synthetic_report(3, fleet, containers=2, processes=5, connections=12), 3.0)
    assert store.touched["containers"]
    renderer.warm()
    assert not store.touched["containers"]
    rendered = msgspec.json.decode(renderer.render("containers"))
    expected = msgspec.json.decode(
        msgspec.json.encode({"topology": "containers", "nodes": store.topology("containers")})
    )
    assert rendered == expected
    # not read within warm_seconds: no longer kept warm
    renderer.warm_seconds = 0.0
    store.ingest(synthetic_report(3, fleet, containers=3, processes=5, connections=12), 4.0)
    renderer.warm()
    assert store.touched["containers"]
    assert len(msgspec.json.decode(renderer.render("containers"))["nodes"]) == 3 + 1 + 3


def test_lazy_and_eager_materialization_agree() -> None:
    lazy = Store(eager={"containers"})
    eager = Store(eager=set(PER_PROBE_TOPOLOGIES))
    fleet = 12
    for seed in range(2):  # edges settle once every probe has reported after its peers
        for i in range(fleet):
            report = synthetic_report(
                i, fleet, containers=4, processes=12, connections=40, seed=seed
            )
            lazy.ingest(report, float(seed))
            eager.ingest(report, float(seed))
    for topo in PER_PROBE_TOPOLOGIES:
        assert lazy.topology(topo) == eager.topology(topo), topo
    assert any(n.adjacency for n in lazy.topology("containers").values())


def test_metrics_only_changes_become_slim_updates() -> None:
    a, b = two_hosts()
    store = Store(eager={"containers"})
    store.ingest(b, 1.0)
    store.ingest(a, 1.0)
    server = container_id("b" * 64)
    hotter = msgspec.structs.replace(
        b, containers=(msgspec.structs.replace(b.containers[0], cpu_percent=42.0),)
    )
    changes = store.ingest(hotter, 2.0)
    assert store.metrics_only["containers"] == {server}
    diff = view_diff("containers", {server}, changes["containers"], None, {server})
    assert diff.update == [] and [m.id for m in diff.metrics] == [server]
    assert diff.metrics[0].metrics["cpu_percent"] == 42.0
    # a viewer that does not have the node yet gets it whole
    diff = view_diff("containers", set(), changes["containers"], None, {server})
    assert [n.id for n in diff.add] == [server] and diff.metrics == []
    renamed = msgspec.structs.replace(
        hotter, containers=(msgspec.structs.replace(hotter.containers[0], name="renamed"),)
    )
    store.ingest(renamed, 3.0)
    assert store.metrics_only["containers"] == set()
