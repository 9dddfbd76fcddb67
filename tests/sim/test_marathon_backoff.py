"""Conformance: Marathon 1.11's launch back-off and `/v2/queue`.

Sources (read, not copied): `core/launchqueue/impl/RateLimiter.scala` (backoffSeconds, then
x backoffFactor per failure, capped at maxLaunchDelaySeconds; per app and configuration;
dropped once maxLaunchDelaySeconds passed since it was last set or advanced),
`core/task/update/impl/steps/NotifyRateLimiterStepImpl.scala` (Failed/Error/Finished/Gone/
Dropped add to it; Staging/Starting/Running advance it; Killed does neither),
`core/launchqueue/LaunchStats.scala` (`timeLeftSeconds`, `overdue`),
`api/v2/QueueResource.scala` (`GET /v2/queue`, `DELETE /v2/queue/{app}/delay`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from sim.marathon import backoff
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import EventStream, marathon_cluster

HOUR = 3600


@pytest.fixture(scope="module")
def cluster(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    with marathon_cluster(
        _zk_ensemble_module.connect_string, tmp_path_factory.mktemp("backoff")
    ) as sim:
        yield sim


def _app(app_id: str, cmd: str, **fields: Any) -> dict[str, Any]:
    return {"id": app_id, "instances": 1, "cpus": 0.1, "mem": 32, "cmd": cmd, **fields}


def _queued(url: str, app_id: str) -> dict[str, Any] | None:
    for item in httpx.get(url + "/v2/queue", timeout=5).json()["queue"]:
        if item["app"]["id"] == app_id:
            return dict(item)
    return None


def _wait(predicate: Any, what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}; last {last!r}")


def test_the_delay_grows_by_the_factor_up_to_the_maximum() -> None:
    app = {
        "id": "/a",
        "version": "v1",
        "versionInfo": {"lastConfigChangeAt": "v1"},
        "backoffSeconds": 1,
        "backoffFactor": 2,
        "maxLaunchDelaySeconds": 5,
    }
    limiter = backoff.RateLimiter()
    assert limiter.deadline(app) == 0.0
    deadlines = [limiter.add(app, 100.0) - 100.0 for _ in range(5)]
    assert deadlines == [1, 2, 4, 5, 5]
    assert limiter.queue_delay(app, 101.0) == {"timeLeftSeconds": 4, "overdue": False}
    limiter.advance(app, 103.0)  # a task running again: the same delay from now
    assert limiter.deadline(app) == 108.0
    # a scale keeps the configuration (and the delay); a new configuration has none
    assert limiter.deadline({**app, "version": "v2"}) == 108.0
    newer = {**app, "version": "v3", "versionInfo": {"lastConfigChangeAt": "v3"}}
    assert limiter.deadline(newer) == 0.0
    # dropped once maxLaunchDelaySeconds (5) passed since its reference (103)
    limiter.clean_up(107.9)
    assert limiter.deadline(app) == 108.0
    limiter.clean_up(108.1)
    assert limiter.deadline(app) == 0.0
    assert {"TASK_FAILED", "TASK_FINISHED", "TASK_ERROR"} <= backoff.LIMIT_WORTHY
    assert "TASK_KILLED" not in backoff.LIMIT_WORTHY


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_failing_app_is_delayed_and_a_new_version_or_a_reset_launches_at_once(
    cluster: SimCluster,
) -> None:
    url = cluster.marathon_url()
    failing = _app("/backoff/crash", "exit 3", backoffSeconds=HOUR, maxLaunchDelaySeconds=HOUR)
    query = "?event_type=status_update_event&event_type=event_stream_attached"
    with EventStream(url + "/v2/events" + query) as stream:
        stream.wait_for(lambda: bool(stream.of_type("event_stream_attached")), what="attached")
        assert httpx.post(url + "/v2/apps", json=failing, timeout=10).status_code == 201

        def failures() -> int:
            return sum(
                1
                for e in stream.of_type("status_update_event")
                if e["appId"] == "/backoff/crash" and e["taskStatus"] == "TASK_FAILED"
            )

        stream.wait_for(lambda: failures() == 1, what="the first TASK_FAILED")
        item = _wait(
            lambda: (q := _queued(url, "/backoff/crash")) and not q["delay"]["overdue"] and q,
            "a launch delay in /v2/queue",
        )
        assert item["count"] == 1
        assert HOUR - 60 < item["delay"]["timeLeftSeconds"] <= HOUR
        time.sleep(2.0)  # several scheduler rounds: no new launch while delayed
        assert failures() == 1

        # QueueResource: DELETE .../delay resets it, the next launch follows at once
        reset = httpx.delete(url + "/v2/queue/backoff/crash/delay", timeout=5)
        assert reset.status_code == 204
        stream.wait_for(lambda: failures() == 2, what="a second TASK_FAILED after the reset")

        # a new configuration has no delay: its task starts at once and runs
        fixed = httpx.put(
            url + "/v2/apps/backoff/crash",
            json={"cmd": "exec python3 -m http.server $PORT0 --bind 127.0.0.1"},
            params={"force": "true"},
            timeout=10,
        )
        assert fixed.status_code == 200, fixed.text
        stream.wait_for(
            lambda: any(
                e["appId"] == "/backoff/crash" and e["taskStatus"] == "TASK_RUNNING"
                for e in stream.of_type("status_update_event")
            ),
            what="the new version's task running",
        )
    assert failures() == 2
    unknown = httpx.delete(url + "/v2/queue/nope/delay", timeout=5)
    assert unknown.status_code == 404
