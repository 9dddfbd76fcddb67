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


def wait_for_voting(sim: SimCluster, masters: list[int]) -> None:
    """Wait until each of `masters` has a VOTING replica (`registrar/log/recovered` 1).

    A leader is elected by a quorum, so another replica of a fresh log may still be
    STARTING; auto-initialization makes it VOTING only once every replica answered
    (src/log/recover.cpp), so a test that stops a replica first must wait for this."""
    sim.wait_for(
        lambda: all(snapshot(sim, i)["registrar/log/recovered"] == 1.0 for i in masters),
        timeout=60,
        what=f"the replicas of masters {masters} VOTING",
    )
