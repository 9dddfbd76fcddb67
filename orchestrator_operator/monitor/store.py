"""Merged state: the newest report of each probe, merged into every topology, with expiry.

A report replaces its probe's previous contribution; only that probe's nodes are compared,
so ingest cost is proportional to one report, not to the fleet. Every change is returned as
``{topology: {node id: node or None}}`` for the WebSocket hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator_operator.monitor.diff import Changes, changes_between
from orchestrator_operator.monitor.report import Report
from orchestrator_operator.monitor.series import SeriesStore
from orchestrator_operator.monitor.topology import (
    PER_PROBE_TOPOLOGIES,
    TOPOLOGIES,
    Contribution,
    EndpointKey,
    Node,
    Owner,
    build_contribution,
    build_services,
    listen_endpoints,
)

SERIES_TOPOLOGIES = ("hosts", "containers", "pods")

TopologyChanges = dict[str, Changes]


@dataclass
class ProbeState:
    report: Report
    received: float
    contribution: Contribution
    reports: int = 1


@dataclass
class Store:
    ttl: float = 15.0
    probes: dict[str, ProbeState] = field(default_factory=dict)
    endpoints: dict[EndpointKey, Owner] = field(default_factory=dict)
    merged: dict[str, dict[str, Node]] = field(
        default_factory=lambda: {t: {} for t in PER_PROBE_TOPOLOGIES}
    )
    node_owner: dict[str, dict[str, str]] = field(
        default_factory=lambda: {t: {} for t in PER_PROBE_TOPOLOGIES}
    )
    series: SeriesStore = field(default_factory=SeriesStore)
    version: int = 0
    _services: dict[str, Node] = field(default_factory=dict)
    _services_dirty: bool = False

    # -- ingest / expiry ---------------------------------------------------------------------

    def ingest(self, report: Report, now: float) -> TopologyChanges:
        """Merge one validated report received at ``now`` (seconds, wall clock)."""
        prev = self.probes.get(report.probe_id)
        old_contribution = prev.contribution if prev is not None else None
        # Endpoints first, so this report's own connections resolve against its listeners.
        self._drop_endpoints(
            report.probe_id, old_contribution.endpoints if old_contribution else {}
        )
        new_endpoints = listen_endpoints(report)
        self._add_endpoints(report.probe_id, new_endpoints)
        contribution = build_contribution(report, self.endpoints.get, new_endpoints)
        changes = self._replace_nodes(report.probe_id, old_contribution, contribution)
        if old_contribution is None or old_contribution.services != contribution.services:
            self._services_dirty = True
        self.probes[report.probe_id] = ProbeState(
            report=report,
            received=now,
            contribution=contribution,
            reports=(prev.reports + 1) if prev is not None else 1,
        )
        for topo in SERIES_TOPOLOGIES:
            for node in contribution.nodes[topo].values():
                self.series.put(node.id, node.metrics.items(), now)
        self.version += 1
        return changes

    def remove_probe(self, probe_id: str) -> TopologyChanges:
        state = self.probes.pop(probe_id, None)
        if state is None:
            return {}
        self._drop_endpoints(probe_id, state.contribution.endpoints)
        empty = Contribution(
            probe=probe_id,
            nodes={t: {} for t in PER_PROBE_TOPOLOGIES},
            endpoints={},
            services=[],
        )
        if state.contribution.services:
            self._services_dirty = True
        self.version += 1
        return self._replace_nodes(probe_id, state.contribution, empty)

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

    def _drop_endpoints(self, probe_id: str, old: dict[EndpointKey, Owner]) -> None:
        for key in old:
            owner = self.endpoints.get(key)
            if owner is not None and owner.probe == probe_id:
                del self.endpoints[key]

    def _add_endpoints(self, probe_id: str, new: dict[EndpointKey, Owner]) -> None:
        for key, owner in new.items():
            current = self.endpoints.get(key)
            # A ClusterIP entry never shadows a real listener.
            if current is None or current.probe == probe_id or current.service:
                self.endpoints[key] = owner

    def _replace_nodes(
        self, probe_id: str, old: Contribution | None, new: Contribution
    ) -> TopologyChanges:
        out: TopologyChanges = {}
        for topo in PER_PROBE_TOPOLOGIES:
            old_nodes = old.nodes[topo] if old is not None else {}
            changes = changes_between(old_nodes, new.nodes[topo])
            if not changes:
                continue
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
                    merged[nid] = node
                    owners[nid] = probe_id
                    applied[nid] = node
            if applied:
                out[topo] = applied
                if topo == "pods":
                    self._services_dirty = True
        return out

    # -- reads -------------------------------------------------------------------------------

    def services_changes(self) -> Changes:
        """Rebuild the services topology if its inputs changed; returns what changed."""
        if not self._services_dirty:
            return {}
        self._services_dirty = False
        services = [s for st in self.probes.values() for s in st.contribution.services]
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
        return self.merged[name]

    def node(self, name: str, node_id: str) -> Node | None:
        return self.topology(name).get(node_id)

    def counts(self) -> dict[str, int]:
        return {t: len(self.topology(t)) for t in TOPOLOGIES}

    def container_owner(self, node_id: str) -> tuple[str, str] | None:
        """(probe id, container id) for a container node."""
        probe = self.node_owner["containers"].get(node_id)
        if probe is None:
            return None
        return probe, node_id.split(":", 1)[1]
