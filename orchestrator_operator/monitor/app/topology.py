"""Topology building: pure functions from reports to nodes and edges (no I/O, no clocks).

Each probe's report yields its own *contribution*: the nodes it owns in every topology (hosts,
containers, processes, pods) with their adjacency. Edges come from client-side connections
resolved against a global index of listening endpoints built from every probe's report, so a
process on host A connected to a container's address on host B is one edge. Services are
derived from the merged pods and the services the probes saw (``build_services``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import msgspec

from orchestrator_operator.monitor.report import Container, Pod, Process, Report, Service

TOPOLOGIES = ("hosts", "containers", "processes", "pods", "services")
PER_PROBE_TOPOLOGIES = ("hosts", "containers", "processes", "pods")
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
CLIENT_STATES = frozenset({"ESTABLISHED", "SYN_SENT"})


class Node(msgspec.Struct, omit_defaults=True, gc=False):
    id: str
    topology: str
    label: str
    label_minor: str = ""
    host: str = ""
    probe: str = ""
    parents: dict[str, str] = {}
    metadata: dict[str, str] = {}
    metrics: dict[str, float] = {}
    adjacency: tuple[str, ...] = ()  # tuples of str are not tracked by the cyclic GC
    controls: tuple[str, ...] = ()


class EndpointOwner(msgspec.Struct, frozen=True, gc=False):
    """Who is behind an endpoint: enough to name its node in every topology."""

    probe: str
    host: str
    pid: int = 0
    container: str = ""
    pod: str = ""
    service: str = ""


EndpointKey = tuple[str, str, int]  # (proto, ip or loopback scope, port)
Lookup = Callable[[EndpointKey], EndpointOwner | None]


class Contribution(NamedTuple):
    probe: str
    nodes: dict[str, dict[str, Node]]  # topology -> node id -> node
    endpoints: dict[EndpointKey, EndpointOwner]
    services: list[Service]
    interval: float = 3.0
    processes: dict[int, tuple[Process, int, Node]] | None = None  # reuse cache


# -- node ids ------------------------------------------------------------------------------


def host_id(hostname: str) -> str:
    return f"host:{hostname}"


def container_id(cid: str) -> str:
    return f"container:{cid}"


def process_id(hostname: str, pid: int) -> str:
    return f"process:{hostname};{pid}"


def pod_id(uid: str) -> str:
    return f"pod:{uid}"


def service_id(uid: str) -> str:
    return f"service:{uid}"


_LOOPBACK_PREFIXES = ("127.", "::ffff:127.")


def _is_loopback(ip: str) -> bool:
    return ip.startswith(_LOOPBACK_PREFIXES) or ip == "::1"


def _loopback_scope(probe: str, netns: int) -> str:
    return f"lo:{probe}:{netns}"


_RUNNING_CONTROLS = ("stop", "pause", "restart", "logs")
_PAUSED_CONTROLS = ("unpause", "stop", "logs")
_STOPPED_CONTROLS = ("start", "remove", "logs")


def container_controls(state: str) -> tuple[str, ...]:
    if state == "running":
        return _RUNNING_CONTROLS
    if state == "paused":
        return _PAUSED_CONTROLS
    return _STOPPED_CONTROLS


# -- per-report local views -----------------------------------------------------------------


class Local:
    """Lookups inside one report."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.hostname = report.host.hostname
        self.procs = {p.pid: p for p in report.processes}
        self.containers = {c.id: c for c in report.containers}
        self.netns_container: dict[int, str] = {}
        for c in report.containers:
            if c.netns and c.state in ("running", "paused"):
                # A pod's containers share the pause container's netns: keep the first.
                self.netns_container.setdefault(c.netns, c.id)
        self.container_pod: dict[str, str] = {}
        for pod in report.pods:
            for cid in pod.containers:
                self.container_pod[cid] = pod.uid
        for c in report.containers:
            uid = c.labels.get("io.kubernetes.pod.uid")
            if uid:
                self.container_pod.setdefault(c.id, uid)
        self.netns_addresses: dict[int, list[str]] = {}
        for c in report.containers:
            if c.netns and c.ips:
                self.netns_addresses.setdefault(c.netns, []).extend(c.ips)
        if report.host_netns:
            self.netns_addresses[report.host_netns] = list(report.host.addresses)
        self._owners: dict[tuple[int, int], EndpointOwner] = {}

    def owner(self, pid: int, netns: int) -> EndpointOwner:
        key = (pid, netns)
        cached = self._owners.get(key)
        if cached is not None:
            return cached
        cached = self._owners[key] = self._owner(pid, netns)
        return cached

    def _owner(self, pid: int, netns: int) -> EndpointOwner:
        proc = self.procs.get(pid)
        cid = proc.container_id if proc is not None and proc.container_id else ""
        if not cid and netns != self.report.host_netns:
            cid = self.netns_container.get(netns, "")
        return EndpointOwner(
            probe=self.report.probe_id,
            host=self.hostname,
            pid=pid,
            container=cid,
            pod=self.container_pod.get(cid, ""),
        )


def listen_endpoints(
    report: Report, local: Local | None = None
) -> dict[EndpointKey, EndpointOwner]:
    """Every (proto, address, port) a report's sockets accept connections on, with owner."""
    local = local or Local(report)
    out: dict[EndpointKey, EndpointOwner] = {}
    for conn in report.connections:
        if conn.state != "LISTEN":
            continue
        owner = local.owner(conn.pid, conn.netns)
        if conn.local_ip in WILDCARDS:
            addrs = local.netns_addresses.get(conn.netns, [])
            for ip in addrs:
                if _is_loopback(ip):
                    continue
                out.setdefault((conn.proto, ip, conn.local_port), owner)
            out.setdefault(
                (conn.proto, _loopback_scope(report.probe_id, conn.netns), conn.local_port), owner
            )
        elif _is_loopback(conn.local_ip):
            out.setdefault(
                (conn.proto, _loopback_scope(report.probe_id, conn.netns), conn.local_port), owner
            )
        else:
            out.setdefault((conn.proto, conn.local_ip, conn.local_port), owner)
    # Published container ports: host address:port leads to the container (the proxy's pid
    # stays the process-level owner when it listens there).
    for c in report.containers:
        if c.state != "running":
            continue
        for p in c.ports:
            if not p.host_port:
                continue
            ips = report.host.addresses if p.host_ip in WILDCARDS else [p.host_ip]
            for ip in ips:
                key = (p.proto, ip, p.host_port)
                if _is_loopback(ip):
                    key = (
                        p.proto,
                        _loopback_scope(report.probe_id, report.host_netns),
                        p.host_port,
                    )
                prev = out.get(key)
                out[key] = EndpointOwner(
                    probe=report.probe_id,
                    host=report.host.hostname,
                    pid=prev.pid if prev is not None else 0,
                    container=c.id,
                    pod=local.container_pod.get(c.id, ""),
                )
    for svc in report.services:
        if svc.cluster_ip and svc.cluster_ip not in ("None", ""):
            for port in svc.ports:
                out.setdefault(
                    ("tcp", svc.cluster_ip, port),
                    EndpointOwner(probe=report.probe_id, host="", service=svc.uid),
                )
    return out


def client_connections(
    report: Report, local: Local | None = None
) -> list[tuple[EndpointOwner, EndpointKey]]:
    """(source owner, remote endpoint key) for each outgoing connection in a report."""
    local = local or Local(report)
    listening: set[tuple[int, str, int]] = set()
    for conn in report.connections:
        if conn.state == "LISTEN":
            listening.add((conn.netns, conn.proto, conn.local_port))
    out: list[tuple[EndpointOwner, EndpointKey]] = []
    for conn in report.connections:
        if conn.state not in CLIENT_STATES or not conn.remote_port:
            continue
        if (conn.netns, conn.proto, conn.local_port) in listening:
            continue  # server side of an accepted connection
        if _is_loopback(conn.remote_ip):
            key = (conn.proto, _loopback_scope(report.probe_id, conn.netns), conn.remote_port)
        else:
            key = (conn.proto, conn.remote_ip, conn.remote_port)
        out.append((local.owner(conn.pid, conn.netns), key))
    return out


def edge_ids(src: EndpointOwner, dst: EndpointOwner) -> dict[str, tuple[str, str]]:
    """The (source, destination) node ids an owner pair gives in each topology."""
    out: dict[str, tuple[str, str]] = {}
    if src.host and dst.host and src.host != dst.host:
        out["hosts"] = (host_id(src.host), host_id(dst.host))
    if src.container and dst.container and src.container != dst.container:
        out["containers"] = (container_id(src.container), container_id(dst.container))
    if src.pid and dst.pid and (src.host, src.pid) != (dst.host, dst.pid):
        out["processes"] = (process_id(src.host, src.pid), process_id(dst.host, dst.pid))
    if src.pod and dst.pod and src.pod != dst.pod:
        out["pods"] = (pod_id(src.pod), pod_id(dst.pod))
    return out


Edges = dict[str, dict[str, tuple[str, ...]]]  # topology -> source id -> destination ids


def resolve_edges(report: Report, lookup: Lookup, local: Local | None = None) -> Edges:
    """topology -> source node id -> destination node ids, for one report's connections."""
    local = local or Local(report)
    pairs: set[tuple[EndpointOwner, EndpointOwner]] = set()
    service_edges: set[tuple[str, str]] = set()
    hosts: dict[str, set[str]] = {}
    containers: dict[str, set[str]] = {}
    processes: dict[str, set[str]] = {}
    pods: dict[str, set[str]] = {}
    for src, key in client_connections(report, local):
        dst = lookup(key)
        if dst is None:
            continue
        if dst.service and not dst.container:
            if src.pod:
                service_edges.add((src.pod, dst.service))
            continue
        pairs.add((src, dst))
    for src, dst in pairs:
        if dst.host and src.host != dst.host:
            hosts.setdefault(src.host, set()).add(dst.host)
        if src.container and dst.container and src.container != dst.container:
            containers.setdefault(src.container, set()).add(dst.container)
        if src.pid and dst.pid and (src.host != dst.host or src.pid != dst.pid):
            processes.setdefault(process_id(src.host, src.pid), set()).add(
                process_id(dst.host, dst.pid)
            )
        if src.pod and dst.pod and src.pod != dst.pod:
            pods.setdefault(src.pod, set()).add(dst.pod)
    for pod, svc in service_edges:
        pods.setdefault(pod, set()).add(service_id(svc))
    # Sorted tuples of str: compact, and not tracked by the cyclic GC.
    return {
        "hosts": {host_id(a): tuple(sorted(host_id(b) for b in bs)) for a, bs in hosts.items()},
        "containers": {
            container_id(a): tuple(sorted(container_id(b) for b in bs))
            for a, bs in containers.items()
        },
        "processes": {a: tuple(sorted(bs)) for a, bs in processes.items()},
        "pods": {
            pod_id(a): tuple(sorted(b if b.startswith("service:") else pod_id(b) for b in bs))
            for a, bs in pods.items()
        },
    }


def container_edges(
    report: Report, lookup: Lookup, local: Local | None = None
) -> dict[str, tuple[str, ...]]:
    """The containers topology's adjacency alone: what ``resolve_edges`` gives for
    containers, without making an owner for every socket (the ingest path while only the
    containers topology is watched, so the loop is kept tight)."""
    local = local or Local(report)
    netns_container = local.netns_container
    pid_container = {pid: p.container_id for pid, p in local.procs.items() if p.container_id}
    host_netns = report.host_netns
    probe = report.probe_id
    connections = report.connections
    listening = {(c.netns, c.proto, c.local_port) for c in connections if c.state == "LISTEN"}
    out: dict[str, set[str]] = {}
    for conn in connections:
        remote_port = conn.remote_port
        if not remote_port or conn.state not in CLIENT_STATES:
            continue
        # the source container, as Local.owner names it
        netns = conn.netns
        src = pid_container.get(conn.pid)
        if src is None:
            if netns == host_netns:
                continue
            src = netns_container.get(netns)
            if src is None:
                continue
        proto = conn.proto
        if (netns, proto, conn.local_port) in listening:
            continue  # server side of an accepted connection
        ip = conn.remote_ip
        if ip.startswith(_LOOPBACK_PREFIXES) or ip == "::1":
            dst = lookup((proto, _loopback_scope(probe, netns), remote_port))
        else:
            dst = lookup((proto, ip, remote_port))
        if dst is None:
            continue
        target = dst.container
        if target and target != src:
            targets = out.get(src)
            if targets is None:
                targets = out[src] = set()
            targets.add(target)
    return {container_id(a): tuple(sorted(container_id(b) for b in bs)) for a, bs in out.items()}


# -- nodes ---------------------------------------------------------------------------------


def host_node(report: Report) -> Node:
    h = report.host
    return Node(
        id=host_id(h.hostname),
        topology="hosts",
        label=h.hostname,
        label_minor=h.os,
        host=h.hostname,
        probe=report.probe_id,
        metadata={
            "os": h.os,
            "kernel": h.kernel,
            "addresses": ",".join(a for a in h.addresses if not _is_loopback(a)),
            "cpus": str(h.cpus),
            "probe": report.probe_id,
        },
        metrics=host_metrics(report),
    )


def host_metrics(report: Report) -> dict[str, float]:
    h = report.host
    return {
        "cpu_percent": h.cpu_percent,
        "memory_used_bytes": float(h.memory_used),
        "memory_total_bytes": float(h.memory_total),
        "load1": h.load[0] if h.load else 0.0,
        "uptime_seconds": h.uptime,
        "processes": float(len(report.processes)),
        "containers": float(len(report.containers)),
    }


def container_metrics(c: Container) -> dict[str, float]:
    return {"cpu_percent": c.cpu_percent, "memory_usage_bytes": float(c.memory_usage)}


def pod_metrics(pod: Pod, containers: Mapping[str, Container]) -> dict[str, float]:
    members = [containers[c] for c in pod.containers if c in containers]
    return {
        "containers": float(len(pod.containers)),
        "cpu_percent": sum(c.cpu_percent for c in members),
        "memory_usage_bytes": float(sum(c.memory_usage for c in members)),
    }


def container_node(report: Report, c: Container, pod_uid: str) -> Node:
    hostname = report.host.hostname
    metadata = {
        "name": c.name,
        "image": c.image,
        "state": c.state,
        "status": c.status,
        "ips": ",".join(c.ips),
        "ports": ",".join(
            f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.proto}"
            if p.host_port
            else f"{p.container_port}/{p.proto}"
            for p in c.ports
        ),
        "pid": str(c.pid),
        "created": f"{c.created:.0f}",
        "memory_limit_bytes": str(c.memory_limit),
        "cpu_quota_cores": f"{c.cpu_quota:g}",
    }
    for k, v in c.labels.items():
        metadata[f"label.{k}"] = v
    parents = {"host": host_id(hostname)}
    if pod_uid:
        parents["pod"] = pod_id(pod_uid)
    return Node(
        id=container_id(c.id),
        topology="containers",
        label=c.name,
        label_minor=hostname,
        host=hostname,
        probe=report.probe_id,
        parents=parents,
        metadata=metadata,
        metrics=container_metrics(c),
        controls=container_controls(c.state),
    )


ProcessCache = dict[int, tuple[Process, int, Node]]


def process_nodes(report: Report, previous: ProcessCache | None = None) -> ProcessCache:
    """Process nodes keyed by pid. A process whose report entry and socket count did not
    change since ``previous`` keeps its node object (no diff, no allocation)."""
    hostname = report.host.hostname
    host_parent = {"host": host_id(hostname)}
    conns: dict[int, int] = {}
    for conn in report.connections:
        conns[conn.pid] = conns.get(conn.pid, 0) + 1
    previous = previous or {}
    out: ProcessCache = {}
    for p in report.processes:
        n_conns = conns.get(p.pid, 0)
        prev = previous.get(p.pid)
        if prev is not None and prev[1] == n_conns and prev[0] == p:
            out[p.pid] = (p, n_conns, prev[2])
            continue
        if p.container_id:
            parents = {"host": host_parent["host"], "container": container_id(p.container_id)}
        else:
            parents = host_parent
        nid = process_id(hostname, p.pid)
        node = Node(
            id=nid,
            topology="processes",
            label=p.name or str(p.pid),
            label_minor=f"{hostname} (pid {p.pid})",
            host=hostname,
            probe=report.probe_id,
            parents=parents,
            metadata={
                "pid": str(p.pid),
                "ppid": str(p.ppid),
                "user": p.user,
                "container": p.container_id,
            },
            metrics={
                "cpu_percent": p.cpu_percent,
                "rss_bytes": float(p.rss),
                "open_files": float(p.open_files),
                "connections": float(n_conns),
            },
        )
        out[p.pid] = (p, n_conns, node)
    return out


def pod_node(report: Report, pod: Pod, containers: Mapping[str, Container]) -> Node:
    return Node(
        id=pod_id(pod.uid),
        topology="pods",
        label=pod.name,
        label_minor=pod.namespace,
        host=report.host.hostname,
        probe=report.probe_id,
        parents={"host": host_id(report.host.hostname)},
        metadata={
            "namespace": pod.namespace,
            "phase": pod.phase,
            "ip": pod.ip,
            "node": pod.node,
            **{f"label.{k}": v for k, v in pod.labels.items()},
        },
        metrics=pod_metrics(pod, containers),
    )


def _with_adjacency(nodes: dict[str, Node], adjacency: Mapping[str, tuple[str, ...]]) -> None:
    for src, targets in adjacency.items():
        node = nodes.get(src)
        if node is not None and node.adjacency != targets:
            # never mutate: the node object may be shared with the previous snapshot
            nodes[src] = msgspec.structs.replace(node, adjacency=targets)


def build_topology(
    report: Report,
    topology: str,
    adjacency: Mapping[str, tuple[str, ...]],
    local: Local | None = None,
    process_cache: ProcessCache | None = None,
) -> tuple[dict[str, Node], ProcessCache | None]:
    """One report's nodes in one per-probe topology, with the given adjacency. For processes
    the new reuse cache is returned too."""
    nodes: dict[str, Node] = {}
    new_cache: ProcessCache | None = None
    if topology == "hosts":
        h = host_node(report)
        nodes[h.id] = h
    elif topology == "containers":
        local = local or Local(report)
        for c in report.containers:
            n = container_node(report, c, local.container_pod.get(c.id, ""))
            nodes[n.id] = n
    elif topology == "processes":
        new_cache = process_nodes(report, process_cache)
        nodes = {entry[2].id: entry[2] for entry in new_cache.values()}
    elif topology == "pods":
        local = local or Local(report)
        for pod in report.pods:
            n = pod_node(report, pod, local.containers)
            nodes[n.id] = n
    else:
        raise KeyError(topology)
    _with_adjacency(nodes, adjacency)
    return nodes, new_cache


def build_contribution(
    report: Report,
    lookup: Lookup,
    endpoints: dict[EndpointKey, EndpointOwner] | None = None,
    previous: Contribution | None = None,
) -> Contribution:
    """A report's nodes in every per-probe topology, with adjacency resolved via ``lookup``."""
    local = Local(report)
    if endpoints is None:
        endpoints = listen_endpoints(report, local)
    edges = resolve_edges(report, lookup, local)
    nodes: dict[str, dict[str, Node]] = {}
    process_cache: ProcessCache | None = None
    for topo in PER_PROBE_TOPOLOGIES:
        nodes[topo], cache = build_topology(
            report,
            topo,
            edges[topo],
            local,
            previous.processes if previous is not None else None,
        )
        if cache is not None:
            process_cache = cache
    return Contribution(
        probe=report.probe_id,
        nodes=nodes,
        endpoints=endpoints,
        services=list(report.services),
        interval=report.interval,
        processes=process_cache,
    )


def series_points(report: Report) -> list[tuple[str, dict[str, float]]]:
    """(node id, metrics) of the nodes that keep series (hosts, containers, pods), taken
    straight from a report so that no topology has to be built for them."""
    out: list[tuple[str, dict[str, float]]] = [
        (host_id(report.host.hostname), host_metrics(report))
    ]
    for c in report.containers:
        out.append((container_id(c.id), container_metrics(c)))
    if report.pods:
        containers = {c.id: c for c in report.containers}
        for pod in report.pods:
            out.append((pod_id(pod.uid), pod_metrics(pod, containers)))
    return out


def build_services(services: Iterable[Service], pods: Mapping[str, Node]) -> dict[str, Node]:
    """Services with the pods their selector matches; edges from the pods' edges."""
    by_uid: dict[str, Service] = {}
    for s in services:
        by_uid.setdefault(s.uid, s)
    pod_services: dict[str, list[str]] = {}
    members: dict[str, list[str]] = {}
    for svc in by_uid.values():
        if not svc.selector:
            continue
        for pod in pods.values():
            if pod.metadata.get("namespace") != svc.namespace:
                continue
            if all(pod.metadata.get(f"label.{k}") == v for k, v in svc.selector.items()):
                pod_services.setdefault(pod.id, []).append(service_id(svc.uid))
                members.setdefault(service_id(svc.uid), []).append(pod.id)
    out: dict[str, Node] = {}
    for svc in by_uid.values():
        sid = service_id(svc.uid)
        adjacency: set[str] = set()
        for pid in members.get(sid, []):
            for dst in pods[pid].adjacency:
                if dst.startswith("service:"):
                    adjacency.add(dst)
                adjacency.update(pod_services.get(dst, []))
        adjacency.discard(sid)
        out[sid] = Node(
            id=sid,
            topology="services",
            label=svc.name,
            label_minor=svc.namespace,
            metadata={
                "namespace": svc.namespace,
                "cluster_ip": svc.cluster_ip,
                "ports": ",".join(str(p) for p in svc.ports),
                "pods": ",".join(sorted(members.get(sid, []))),
            },
            metrics={"pods": float(len(members.get(sid, [])))},
            adjacency=tuple(sorted(adjacency)),
        )
    return out


# -- filters -------------------------------------------------------------------------------


class NodeFilter(NamedTuple):
    """Topology filters: substring ``q``, ``host``, container ``state``, ``namespace``, and
    exact ``metadata`` matches."""

    q: str = ""
    host: str = ""
    state: str = ""
    namespace: str = ""
    metadata: tuple[tuple[str, str], ...] = ()

    def matches(self, node: Node) -> bool:
        if self.host and node.host != self.host:
            return False
        if self.state and node.metadata.get("state") != self.state:
            return False
        if self.namespace and node.metadata.get("namespace") != self.namespace:
            return False
        for k, v in self.metadata:
            if node.metadata.get(k) != v:
                return False
        if self.q:
            needle = self.q.lower()
            if needle not in node.label.lower() and needle not in node.id.lower():
                return any(needle in v.lower() for v in node.metadata.values())
        return True

    def is_empty(self) -> bool:
        return self == NodeFilter()


def node_filter_from_query(query: Mapping[str, str]) -> NodeFilter:
    meta = tuple(sorted((k[5:], v) for k, v in query.items() if k.startswith("meta.")))
    return NodeFilter(
        q=query.get("q", ""),
        host=query.get("host", ""),
        state=query.get("state", ""),
        namespace=query.get("namespace", ""),
        metadata=meta,
    )
