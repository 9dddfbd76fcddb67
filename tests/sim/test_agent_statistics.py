"""Conformance: the agent's `GET /monitor/statistics` (Mesos 1.11).

Sources (read, not copied): `src/slave/http.cpp` (`Http::statistics`/`_statistics`: an array
of `{framework_id, executor_id, executor_name, source, statistics}` for executors with
statistics), `include/mesos/mesos.proto` (ResourceStatistics: `timestamp`,
`cpus_user_time_secs`, `cpus_system_time_secs`, `cpus_limit`, `mem_rss_bytes`,
`mem_limit_bytes`), `src/slave/slave.cpp` `getExecutorInfo` and `src/slave/constants.hpp`
(a command task's container also holds the command executor's 0.1 cpus and 32 MB, so its
limits are the task's plus those), `src/slave/containerizer/mesos/isolators/posix.hpp` (usage
summed over the container's processes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim.cluster import SimCluster
from testenv.zookeeper import ZkEnsemble

# Uses at least 0.7 s of CPU (the figures are in 10 ms ticks) and holds 64 MiB resident, then idles.
BUSY = (
    'exec python3 -c "import time\n'
    "b = bytearray(64 * 1024 * 1024)\n"
    "while time.process_time() < 0.7: pass\n"
    "open('busy-done', 'w').close()\n"
    'time.sleep(1000)"'
)


@pytest.fixture(scope="module")
def cluster(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    with SimCluster(
        _zk_ensemble_module.connect_string,
        masters=1,
        agents=1,
        marathons=1,
        base_dir=tmp_path_factory.mktemp("statistics"),
    ) as sim:
        yield sim


def _statistics(cluster: SimCluster) -> list[dict[str, Any]]:
    response = httpx.get(cluster.agent_url(0) + "/monitor/statistics", timeout=10)
    assert response.status_code == 200
    return list(response.json())


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_statistics_of_a_live_task(cluster: SimCluster) -> None:
    assert _statistics(cluster) == []  # no task, no entry
    url = cluster.marathon_url()
    app = {"id": "/stats/busy", "instances": 1, "cpus": 0.25, "mem": 100, "cmd": BUSY}
    assert httpx.post(url + "/v2/apps", json=app, timeout=10).status_code == 201
    cluster.wait_for_tasks("/stats/busy", 1)
    task_id = httpx.get(url + "/v2/apps/stats/busy/tasks").json()["tasks"][0]["id"]

    def busy_done() -> dict[str, Any] | None:
        for entry in _statistics(cluster):
            stats = entry["statistics"]
            used = stats["cpus_user_time_secs"] + stats["cpus_system_time_secs"]
            if entry["executor_id"] == task_id and used >= 0.5:
                return dict(entry)
        return None

    deadline = time.monotonic() + 60
    entry = busy_done()
    while entry is None and time.monotonic() < deadline:
        time.sleep(0.5)
        entry = busy_done()
    assert entry is not None, _statistics(cluster)
    assert entry["source"] == task_id and entry["framework_id"]
    assert entry["executor_name"] == f"Command Executor (Task: {task_id})"
    stats = entry["statistics"]
    assert stats["cpus_limit"] == pytest.approx(0.35)  # 0.25 + the executor's 0.1
    assert stats["mem_limit_bytes"] == (100 + 32) * 1024 * 1024
    assert stats["mem_rss_bytes"] >= 64 * 1024 * 1024
    assert abs(stats["timestamp"] - time.time()) < 60
    httpx.delete(url + "/v2/apps/stats/busy", timeout=10)
    deadline = time.monotonic() + 30
    while any(e["executor_id"] == task_id for e in _statistics(cluster)):
        assert time.monotonic() < deadline, "the killed task still has statistics"
        time.sleep(0.5)
