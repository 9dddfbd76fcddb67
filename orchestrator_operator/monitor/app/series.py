"""Fixed-size time series: one 15-second bucket per slot, one hour per ring (240 slots).

Memory per series is constant (a float32 array); writing a bucket far ahead clears the slots
it skipped, so a gap reads as missing, never as stale values.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

STEP = 15.0
SLOTS = 240  # 1 hour


class Ring:
    __slots__ = ("last", "values")

    def __init__(self) -> None:
        self.values = array("f", [math.nan]) * SLOTS
        self.last = -1  # bucket number of the newest write

    def put(self, ts: float, value: float) -> None:
        bucket = int(ts // STEP)
        if self.last >= 0 and bucket < self.last - SLOTS + 1:
            return  # older than the window
        if bucket > self.last:
            if self.last >= 0:
                for b in range(max(self.last + 1, bucket - SLOTS + 1), bucket):
                    self.values[b % SLOTS] = math.nan
            self.last = bucket
        self.values[bucket % SLOTS] = value  # the newest value in a bucket wins

    def points(self, now: float | None = None) -> list[tuple[float, float]]:
        """(bucket start, value) for the filled buckets in the last hour, oldest first."""
        if self.last < 0:
            return []
        newest = self.last if now is None else max(self.last, int(now // STEP))
        out: list[tuple[float, float]] = []
        for b in range(max(0, newest - SLOTS + 1), self.last + 1):
            v = self.values[b % SLOTS]
            if not math.isnan(v):
                out.append((b * STEP, float(v)))
        return out


class SeriesStore:
    """node id -> metric -> Ring, with pruning of series not written for an hour."""

    def __init__(self, max_series: int = 500_000) -> None:
        self.series: dict[str, dict[str, Ring]] = {}
        self.max_series = max_series
        self._count = 0
        self._to_prune: list[str] = []  # node ids left in the current pruning pass

    def put(self, node_id: str, metrics: Iterable[tuple[str, float]], ts: float) -> None:
        rings = self.series.get(node_id)
        if rings is None:
            rings = self.series[node_id] = {}
        for name, value in metrics:
            ring = rings.get(name)
            if ring is None:
                if self._count >= self.max_series:
                    continue
                ring = rings[name] = Ring()
                self._count += 1
            ring.put(ts, value)

    def get(self, node_id: str, now: float | None = None) -> dict[str, list[tuple[float, float]]]:
        return {name: ring.points(now) for name, ring in self.series.get(node_id, {}).items()}

    def prune(self, now: float, budget: int | None = None) -> int:
        """Drop series whose newest point is older than the window; returns how many.

        With a ``budget``, look at no more than that many nodes and go on from there on the
        next call (a pass over 20,000 nodes at once held the event loop for tens of ms)."""
        horizon = int(now // STEP) - SLOTS
        dropped = 0
        if not self._to_prune:
            self._to_prune = list(self.series)
        if budget is None or budget >= len(self._to_prune):
            batch, self._to_prune = self._to_prune, []
        else:
            batch = self._to_prune[-budget:]
            del self._to_prune[-budget:]
        for node_id in batch:
            rings = self.series.get(node_id)
            if rings is None:
                continue
            for name in [n for n, r in rings.items() if r.last < horizon]:
                del rings[name]
                dropped += 1
            if not rings:
                del self.series[node_id]
        self._count -= dropped
        return dropped

    def __len__(self) -> int:
        return self._count
