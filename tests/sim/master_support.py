"""Helpers of the masters' conformance tests: a registry write and a master's metrics."""

from __future__ import annotations

from sim.cluster import SimCluster

# A maintenance schedule: a registry operation a test can commit and look for afterwards.
SCHEDULE = {
    "windows": [
        {
            "machine_ids": [{"hostname": "spare", "ip": "10.0.0.9"}],
            "unavailability": {"start": {"nanoseconds": 1}},
        }
    ]
}


def snapshot(sim: SimCluster, i: int) -> dict[str, float]:
    """Master ``i``'s `/metrics/snapshot`."""
    answer: dict[str, float] = sim.get(sim.master_url(i) + "/metrics/snapshot")
    return answer
