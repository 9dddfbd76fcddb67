"""The autoscaler's readers and its one-interval step (operator/marathonapp/autoscale.py), on the
answers Mesos, Marathon and HAProxy give: the policy from the spec, agents' addresses from the
master's state, the app's service port, HAProxy's stats CSV, and status.autoscaling written
from a decision, including when a source cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from orchestrator_operator.operator.marathonapp import autoscale
from orchestrator_operator.operator.marathonapp.autoscale import (
    MeasureError,
    Samples,
    agent_addresses,
    autoscale_once,
    backend_requests,
    policy_of,
    service_port,
)
from orchestrator_operator.operator.marathonapp.autoscale_plan import Metric, TaskSample

NOW = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)

# `show stat` as HAProxy 2.6 prints it (columns cut to the first ones and req_tot).
STATS = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,req_tot
stats,FRONTEND,,,1,1,20000,7,7
port_10080,FRONTEND,,,0,3,20000,130,130
web_10080,srv1,0,0,0,2,,65,65
web_10080,srv2,0,0,0,2,,65,65
web_10080,BACKEND,0,0,0,3,2000,130,130
shop_10081,BACKEND,0,0,0,1,2000,12,
"""


def test_policy_from_each_target() -> None:
    cpu = policy_of({"maxInstances": 5, "target": {"cpuUtilization": 0.6}})
    assert (cpu.metric, cpu.target, cpu.min_instances, cpu.max_instances) == (
        Metric.CPU, 0.6, 1, 5,
    )  # fmt: skip
    assert (cpu.scale_up_cooldown_seconds, cpu.scale_down_cooldown_seconds, cpu.max_step) == (
        30, 300, 4,
    )  # fmt: skip
    assert policy_of({"maxInstances": 2, "target": {"memoryUtilization": 0.8}}).metric is (
        Metric.MEMORY
    )
    rps = policy_of({"maxInstances": 9, "minInstances": 0, "maxStep": 2,
                     "target": {"requestsPerSecond": 50}})  # fmt: skip
    assert (rps.metric, rps.target, rps.min_instances, rps.max_step) == (
        Metric.REQUESTS, 50, 0, 2,
    )  # fmt: skip


def test_agent_addresses_from_the_masters_state() -> None:
    state = {
        "slaves": [
            {"id": "S0", "pid": "slave(1)@10.0.0.5:5051", "hostname": "node-0"},
            {"id": "S1", "pid": "slave(1)@10.0.0.6:5052"},
            {"id": "S2"},  # no pid: left out
            "garbage",
        ]
    }
    assert agent_addresses(state) == {"S0": "10.0.0.5:5051", "S1": "10.0.0.6:5052"}
    assert agent_addresses({"slaves": "x"}) == {} and agent_addresses(None) == {}


@pytest.mark.parametrize(
    ("app", "port"),
    [
        ({"labels": {"HAPROXY_0_PORT": "10080"}, "portDefinitions": [{"port": 10001}]}, 10080),
        ({"portDefinitions": [{"port": 10001}]}, 10001),
        ({"portDefinitions": [{"port": 0}], "tasks": [{"servicePorts": [10002]}]}, 10002),
        ({"labels": {"HAPROXY_0_PORT": "no"}}, None),
        ({}, None),
    ],
)
def test_the_apps_service_port(app: dict[str, Any], port: int | None) -> None:
    assert service_port(app) == port


def test_backend_requests_from_haproxys_csv() -> None:
    assert backend_requests(STATS, 10080) == 130.0  # the BACKEND row, not the servers'
    assert backend_requests(STATS, 10081) == 12.0  # no req_tot (TCP): sessions
    assert backend_requests(STATS, 10099) is None
    assert backend_requests("", 10080) is None


class _Sources:
    """Marathon's app (a callable, as the timer passes it) for autoscale_once."""

    def __init__(self, app: dict[str, Any] | None, error: str | None = None) -> None:
        self.app, self.error = app, error

    def __call__(self, app_id: str) -> dict[str, Any] | None:
        if self.error:
            raise MeasureError(self.error)
        return self.app


SPEC = {
    "cluster": "demo",
    "app": {"id": "/web", "instances": 2},
    "autoscaling": {"minInstances": 2, "maxInstances": 6, "target": {"cpuUtilization": 0.5},
                    "maxStep": 4},
}  # fmt: skip


def _sample(task: str, ts: float, cpu: float) -> TaskSample:
    return TaskSample(task, ts, cpu, 0.5, 1e6, 1e8)


def test_one_interval_writes_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [{"id": "web.1", "slaveId": "S0", "state": "TASK_RUNNING"},
             {"id": "web.2", "slaveId": "S0", "state": "TASK_RUNNING"}]  # fmt: skip
    current = {"web.1": _sample("web.1", 110, 5), "web.2": _sample("web.2", 110, 5)}
    monkeypatch.setattr(autoscale, "task_samples", lambda client, master, t: current)
    previous = Samples(tasks={"web.1": _sample("web.1", 100, 0), "web.2": _sample("web.2", 100, 0)})
    with httpx.Client() as client:
        written, kept = autoscale_once(
            client, SPEC, {}, _Sources({"id": "/web", "tasks": tasks}), "10.0.0.1:5050",
            "http://lb/stats;csv", previous, NOW,
        )  # fmt: skip
    # 5 CPU seconds in 10 s over a 0.5 limit: 100% against 50% -> 2 x 2 = 4
    assert written == {
        "desiredInstances": 4,
        "lastScaleAt": "2026-12-03T21:00:00Z",
        "reason": "100% against a target of 50%: scaled up from 2 to 4",
        "metric": {"name": "cpuUtilization", "value": 1.0, "target": 0.5},
    }
    assert kept.tasks == current


def test_the_previous_decision_is_the_current_count_and_its_time_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(autoscale, "task_samples", lambda client, master, t: {})
    before = {"autoscaling": {"desiredInstances": 5, "lastScaleAt": "2026-12-03T20:59:00Z"}}
    with httpx.Client() as client:
        written, _ = autoscale_once(
            client, SPEC, before, _Sources({"id": "/web", "tasks": []}), "m:5050", "x",
            Samples(), NOW,
        )  # fmt: skip
    assert written["desiredInstances"] == 5
    assert written["lastScaleAt"] == "2026-12-03T20:59:00Z"
    assert "no cpuUtilization measurement yet" in written["reason"]


@pytest.mark.parametrize(
    ("sources", "master", "words"),
    [
        (_Sources(None, "Marathon: GET /v2/apps/web: 503"), "m:5050", "Marathon: GET"),
        (_Sources(None), "m:5050", "Marathon has no app /web yet"),
        (_Sources({"id": "/web", "tasks": [{"id": "t", "slaveId": "S"}]}), None,
         "reports no leading master"),
    ],
)  # fmt: skip
def test_a_source_that_cannot_be_read_keeps_the_count_and_says_why(
    sources: _Sources, master: str | None, words: str
) -> None:
    previous = Samples(requests=(1.0, 2.0))
    with httpx.Client() as client:
        written, kept = autoscale_once(
            client, SPEC, {}, sources, master, "x", previous, NOW
        )  # fmt: skip
    assert written["desiredInstances"] == 2 and written["lastScaleAt"] is None
    assert written["reason"].startswith("cannot measure cpuUtilization: ")
    assert words in written["reason"] and written["reason"].endswith("kept 2 instances")
    assert kept is previous


def test_bounds_are_corrected_even_when_nothing_can_be_measured() -> None:
    before = {"autoscaling": {"desiredInstances": 9}}  # maxInstances is 6 now
    with httpx.Client() as client:
        written, _ = autoscale_once(
            client, SPEC, before, _Sources(None, "down"), "m", "x", Samples(), NOW
        )  # fmt: skip
    assert written["desiredInstances"] == 6
    assert written["reason"] == "9 instances is above the maximum 6: scaled to 6"


def test_an_agent_the_master_does_not_know_is_a_clear_error() -> None:
    state = {"slaves": [{"id": "S0", "pid": "slave(1)@127.0.0.1:9"}]}
    autoscale._MASTER_STATES.get_or_compute("m-unit:1", lambda: state)
    with httpx.Client() as client, pytest.raises(MeasureError, match="agent S9"):
        autoscale.task_samples(client, "m-unit:1", [{"id": "t", "slaveId": "S9"}])
