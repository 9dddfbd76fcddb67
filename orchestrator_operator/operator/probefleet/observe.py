"""What a ProbeFleet really runs: how many probes report to its app (workload readiness
comes from the indexes)."""

from __future__ import annotations

import httpx


def reporting_probes(url: str) -> tuple[int | None, str | None]:
    """Probes with an unexpired report, from the app's unauthenticated /healthz."""
    try:
        response = httpx.get(f"{url}/healthz", timeout=1.0)
        response.raise_for_status()
        return int(response.json()["probes"]), None
    except (httpx.HTTPError, ValueError, KeyError) as error:
        return None, str(error) or type(error).__name__
