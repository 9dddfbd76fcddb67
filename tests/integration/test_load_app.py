"""The monitoring app's load test (tests/load/app_locustfile.py) for a few seconds against a
real app: Locust's REST users (Authorization header), WebSocket viewers (token in the
subprotocol) and synthetic probes (read-write token) all get through, with no failed request.
Only a smoke run: the figures and thresholds are `make load`'s (docs/performance.md); no
timing is asserted here."""

from __future__ import annotations

from pathlib import Path

from tests.load.run import local_app, run_locust


def test_the_app_load_test_runs_every_request_kind_without_a_failure(tmp_path: Path) -> None:
    with local_app(tmp_path) as (url, token):
        rows = run_locust(
            "app", url, users=8, spawn_rate=8, seconds=10, out=tmp_path,
            env={"LOAD_APP_TOKEN": token, "LOAD_PROBE_REPORTS": "1", "LOAD_PROBES": "3",
                 "LOAD_WS_HOLD_SECONDS": "4"},
            classes=["ApiUser", "ViewerUser", "ProbeUser"],
        )  # fmt: skip
    made = {name for name, row in rows.items() if row.requests > 0}
    for name in ("/api/report", "/api/topology", "/api/topology/[name]", "WS connect+snapshot"):
        assert name in made, (name, sorted(made))
    failed = {name: row.failures for name, row in rows.items() if row.failures}
    assert failed == {}, Path(f"{tmp_path}/app_failures.csv").read_text()
