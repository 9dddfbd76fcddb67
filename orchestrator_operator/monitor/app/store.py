"""Merged state: the newest report of each probe, merged into every topology, with expiry.

A report replaces its probe's previous one. Topologies are materialized per probe and per
topology: eagerly for topologies someone is watching (WebSocket viewers, so diffs go out at
once), lazily on the next read for the others. Either way only the reporting probe's nodes
are rebuilt and compared, so ingest cost is proportional to one report, not to the fleet.
Changes come back as ``{topology: {node id: node or None}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator_operator.monitor.app.diff import Changes, changes_between, metrics_only_change
from orchestrator_operator.monitor.app.series import SeriesStore
from orchestrator_operator.monitor.app.topology import (
    PER_PROBE_TOPOLOGIES,
    Edges,
    EndpointKey,
    EndpointOwner,
    Local,
    Node,
    ProcessCache,
    build_services,
    build_topology,
    container_edges,
    listen_endpoints,
    resolve_edges,
    series_points,
)
from orchestrator_operator.monitor.report import Report, Service

TopologyChanges = dict[str, Changes]


@dataclass
class ProbeState:
    report: Report
    received: float
    endpoints: dict[EndpointKey, EndpointOwner]
    nodes: dict[str, dict[str, Node]] = field(
        default_factory=lambda: {t: {} for t in PER_PROBE_TOPOLOGIES}
    )
    built: set[str] = field(default_factory=set)  # topologies built from ``report``
    edges: Edges | None = None
    container_edges: dict[str, tuple[str, ...]] | None = None
    process_cache: ProcessCache | None = None
    reports: int = 1

    @property
    def hostname(self) -> str:
        return self.report.host.hostname

    @property
    def services(self) -> tuple[Service, ...]:
        return self.report.services


@dataclass
class Store:
    ttl: float = 15.0
    probes: dict[str, ProbeState] = field(default_factory=dict)
    endpoints: dict[EndpointKey, EndpointOwner] = field(default_factory=dict)
    merged: dict[str, dict[str, Node]] = field(
        default_factory=lambda: {t: {} for t in PER_PROBE_TOPOLOGIES}
    )
    node_owner: dict[str, dict[str, str]] = field(
        default_factory=lambda: {t: {} for t in PER_PROBE_TOPOLOGIES}
    )
    stale: dict[str, set[str]] = field(
        default_factory=lambda: {t: set() for t in PER_PROBE_TOPOLOGIES}
    )
    eager: set[str] = field(default_factory=set)  # topologies built at ingest
    # ids in the latest ingest's changes that differ from the old node in metrics alone
    metrics_only: dict[str, set[str]] = field(
        default_factory=lambda: {t: set() for t in PER_PROBE_TOPOLOGIES}
    )
    # probes whose merged nodes changed, per topology (drained by the response cache)
    touched: dict[str, set[str]] = field(
        default_factory=lambda: {t: set() for t in PER_PROBE_TOPOLOGIES}
    )
    series: SeriesStore = field(default_factory=SeriesStore)
    version: int = 0
    _services: dict[str, Node] = field(default_factory=dict)
    _services_dirty: bool = False

    # -- ingest / expiry ---------------------------------------------------------------------

    def ingest(self, report: Report, now: float) -> TopologyChanges:
        """Merge one validated report received at ``now`` (seconds, wall clock); returns the
        changes of the eager topologies."""
        probe = report.probe_id
        for ids in self.metrics_only.values():
            ids.clear()
        prev = self.probes.get(probe)
        local = Local(report)
        if prev is not None:
            self._drop_endpoints(probe, prev.endpoints)
        endpoints = listen_endpoints(report, local)
        self._add_endpoints(probe, endpoints)
        if prev is None:
            state = ProbeState(report=report, received=now, endpoints=endpoints)
            self.probes[probe] = state
            self._services_dirty = self._services_dirty or bool(report.services)
        else:
            if prev.report.services != report.services:
                self._services_dirty = True
            state = prev
            state.report = report
            state.received = now
            state.endpoints = endpoints
            state.edges = None
            state.container_edges = None
            state.built = set()
            state.reports += 1
        for node_id, metrics in series_points(report):
            self.series.put(node_id, metrics.items(), now)
        changes: TopologyChanges = {}
        for topo in PER_PROBE_TOPOLOGIES:
            if topo in self.eager:
                ch = self._materialize(state, topo, local)
                if ch:
                    changes[topo] = ch
            else:
                self.stale[topo].add(probe)
        self.version += 1
        return changes

    def remove_probe(self, probe_id: str) -> TopologyChanges:
        for ids in self.metrics_only.values():
            ids.clear()
        state = self.probes.pop(probe_id, None)
        if state is None:
            return {}
        self._drop_endpoints(probe_id, state.endpoints)
        if state.services:
            self._services_dirty = True
        out: TopologyChanges = {}
        for topo in PER_PROBE_TOPOLOGIES:
            self.stale[topo].discard(probe_id)
            applied = self._apply(probe_id, topo, changes_between(state.nodes[topo], {}))
            if applied:
                out[topo] = applied
        self.version += 1
        return out

    def expire(self, now: float) -> TopologyChanges:
        """Remove probes whose newest report is older than ``ttl`` (or 5 intervals)."""
        out: TopologyChanges = {}
        for probe_id, state in list(self.probes.items()):
            ttl = max(self.ttl, 5 * state.report.interval)
            if now - state.received > ttl:
                for topo, ch in self.remove_probe(probe_id).items():
                    out.setdefault(topo, {}).update(ch)
        return out

    # -- internals ---------------------------------------------------------------------------

    def _drop_endpoints(self, probe_id: str, old: dict[EndpointKey, EndpointOwner]) -> None:
        for key in old:
            owner = self.endpoints.get(key)
            if owner is not None and owner.probe == probe_id:
                del self.endpoints[key]

    def _add_endpoints(self, probe_id: str, new: dict[EndpointKey, EndpointOwner]) -> None:
        for key, owner in new.items():
            current = self.endpoints.get(key)
            # A ClusterIP entry never shadows a real listener.
            if current is None or current.probe == probe_id or current.service:
                self.endpoints[key] = owner

    def _materialize(self, state: ProbeState, topo: str, local: Local | None = None) -> Changes:
        """Build one probe's nodes of one topology from its newest report; apply the diff.

        ``local`` (the report's lookups) is passed at ingest and made again for a lazy build:
        it is not kept, since its lists would stay tracked by the cyclic GC for every probe."""
        if topo in state.built:
            return {}
        report = state.report
        local = local or Local(report)
        if topo == "containers" and state.edges is None and state.container_edges is None:
            # Only containers are wanted now: resolve just the containers' connections.
            state.container_edges = container_edges(report, self.endpoints.get, local)
        if topo == "containers" and state.container_edges is not None:
            adjacency = state.container_edges
        else:
            if state.edges is None:
                state.edges = resolve_edges(report, self.endpoints.get, local)
            adjacency = state.edges[topo]
        nodes, cache = build_topology(report, topo, adjacency, local, state.process_cache)
        if cache is not None:
            state.process_cache = cache
        changes = changes_between(state.nodes[topo], nodes)
        state.nodes[topo] = nodes
        state.built.add(topo)
        self.stale[topo].discard(report.probe_id)
        return self._apply(report.probe_id, topo, changes)

    def _apply(self, probe_id: str, topo: str, changes: Changes) -> Changes:
        merged = self.merged[topo]
        owners = self.node_owner[topo]
        applied: Changes = {}
        for nid, node in changes.items():
            if node is None:
                if owners.get(nid) == probe_id:
                    del merged[nid]
                    del owners[nid]
                    applied[nid] = None
            else:
                old = merged.get(nid)
                if (
                    old is not None
                    and owners.get(nid) == probe_id
                    and metrics_only_change(old, node)
                ):
                    self.metrics_only[topo].add(nid)
                merged[nid] = node
                owners[nid] = probe_id
                applied[nid] = node
        if applied:
            self.touched[topo].add(probe_id)
            if topo == "pods":
                self._services_dirty = True
        return applied

    def refresh(self, topo: str) -> Changes:
        """Materialize every probe that reported since ``topo`` was last built."""
        out: Changes = {}
        for probe in list(self.stale[topo]):
            state = self.probes.get(probe)
            if state is None:
                self.stale[topo].discard(probe)
                continue
            out.update(self._materialize(state, topo))
        return out

    # -- reads -------------------------------------------------------------------------------

    def services_changes(self) -> Changes:
        """Rebuild the services topology if its inputs changed; returns what changed."""
        self.refresh("pods")
        if not self._services_dirty:
            return {}
        self._services_dirty = False
        services = [s for st in self.probes.values() for s in st.services]
        new = build_services(services, self.merged["pods"])
        changes = changes_between(self._services, new)
        self._services = new
        return changes

    def topology(self, name: str) -> dict[str, Node]:
        if name == "services":
            self.services_changes()
            return self._services
        if name not in self.merged:
            raise KeyError(name)
        self.refresh(name)
        return self.merged[name]

    def probe_nodes(self, probe_id: str, topo: str) -> dict[str, Node]:
        """One probe's nodes of a per-probe topology (built if stale)."""
        state = self.probes.get(probe_id)
        if state is None:
            return {}
        self._materialize(state, topo)
        return state.nodes[topo]

    def process_cmdline(self, node: Node) -> str:
        """The command line of a process node, from its probe's latest report (kept out of
        the node itself, so topologies, WebSockets and search never carry it)."""
        state = self.probes.get(node.probe)
        pid = node.metadata.get("pid", "")
        if state is None or not pid.isdigit():
            return ""
        for p in state.report.processes:
            if p.pid == int(pid):
                return p.cmdline
        return ""

    def owned_nodes(self, probe_id: str, topo: str) -> dict[str, Node]:
        """The nodes of ``topo`` that this probe owns in the merged view (no build)."""
        state = self.probes.get(probe_id)
        if state is None:
            return {}
        owners = self.node_owner[topo]
        return {nid: n for nid, n in state.nodes[topo].items() if owners.get(nid) == probe_id}

    def node(self, name: str, node_id: str) -> Node | None:
        return self.topology(name).get(node_id)

    def counts(self) -> dict[str, int]:
        """Node counts without materializing stale topologies (then: report sizes)."""
        out: dict[str, int] = {}
        for topo in PER_PROBE_TOPOLOGIES:
            if self.stale[topo]:
                out[topo] = sum(_report_size(st.report, topo) for st in self.probes.values())
            else:
                out[topo] = len(self.merged[topo])
        out["services"] = len(self.topology("services"))
        return out

    def container_owner(self, node_id: str) -> tuple[str, str] | None:
        """(probe id, container id) for a container node."""
        self.refresh("containers")
        probe = self.node_owner["containers"].get(node_id)
        if probe is None:
            return None
        return probe, node_id.split(":", 1)[1]


def _report_size(report: Report, topo: str) -> int:
    if topo == "hosts":
        return 1
    if topo == "containers":
        return len(report.containers)
    if topo == "processes":
        return len(report.processes)
    return len(report.pods)
