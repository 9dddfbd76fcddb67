"""Encoded full-topology responses, assembled from per-probe JSON fragments.

Each probe's nodes are encoded once per change; a full topology response joins the cached
fragments, so its cost follows the probes that reported since the last read, not the fleet.

A topology read in full within the last ``warm_seconds`` is kept warm: ``warm()`` (called by
the app every flush interval) encodes the fragments of the probes that reported since, so a
read finds at most one interval's worth to encode instead of a whole second of reports in
one burst on the event loop (333 probes, ~8 MB of JSON, at 1,000 probes every 3 s).
"""

from __future__ import annotations

import time

import msgspec

from orchestrator_operator.monitor.app.store import Store
from orchestrator_operator.monitor.app.topology import PER_PROBE_TOPOLOGIES

_encoder = msgspec.json.Encoder()


class TopologyRenderer:
    def __init__(self, store: Store, warm_seconds: float = 10.0) -> None:
        self.store = store
        self.warm_seconds = warm_seconds
        # probe -> its nodes as the inside of a JSON object (a view without the braces)
        self.fragments: dict[str, dict[str, memoryview]] = {t: {} for t in PER_PROBE_TOPOLOGIES}
        self._full: dict[str, tuple[int, bytes]] = {}
        self._read_at: dict[str, float] = {}  # topology -> monotonic time of its last full read

    def _update(self, topology: str) -> None:
        """Encode the fragments of the probes whose nodes changed since the last update
        (the store refreshed first)."""
        store = self.store
        fragments = self.fragments[topology]
        touched = store.touched[topology]
        for probe in touched:
            nodes = store.owned_nodes(probe, topology)
            if nodes:
                fragments[probe] = memoryview(_encoder.encode(nodes))[1:-1]
            else:
                fragments.pop(probe, None)
        touched.clear()
        if len(fragments) > len(store.probes):
            for probe in [p for p in fragments if p not in store.probes]:
                del fragments[probe]

    def warm(self) -> None:
        """Keep the fragments of recently read topologies up to date."""
        now = time.monotonic()
        for topology, read_at in list(self._read_at.items()):
            if now - read_at > self.warm_seconds:
                del self._read_at[topology]
            elif self.store.touched[topology] or self.store.stale[topology]:
                self.store.refresh(topology)
                self._update(topology)

    def render(self, topology: str) -> bytes:
        """``{"topology": name, "nodes": {...}}`` for a whole topology, as JSON bytes."""
        store = self.store
        if topology not in PER_PROBE_TOPOLOGIES:
            return _encoder.encode({"topology": topology, "nodes": store.topology(topology)})
        self._read_at[topology] = time.monotonic()
        store.refresh(topology)
        cached = self._full.get(topology)
        if cached is not None and cached[0] == store.version and not store.touched[topology]:
            return cached[1]
        self._update(topology)
        # one join (25 MiB at 20,000 containers): fragments and separators in one list
        parts: list[bytes | memoryview] = [
            b'{"topology":',
            _encoder.encode(topology),
            b',"nodes":{',
        ]
        for fragment in self.fragments[topology].values():
            parts.append(fragment)
            parts.append(b",")
        if len(parts) > 3:
            parts.pop()
        parts.append(b"}}")
        body = b"".join(parts)
        self._full[topology] = (store.version, body)
        return body
