"""The blue-green and canary plan (operator/marathonapp/strategy_plan.py) driven against a
small model of Marathon: a PUT makes an app deploy, the next tick makes it ready (or
unhealthy, or failing, as the test says). Every reconcile passes status.rollout through JSON,
as the API server stores it, so each test also shows a restarted operator resumes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_operator.operator.marathonapp.analysis import (
    AnalysisConfig,
    Sample,
    evaluate,
    lb_sample,
    prometheus_scalar,
)
from orchestrator_operator.operator.marathonapp.strategy_plan import (
    GROUP_LABEL,
    PORT_LABEL,
    REVISION_LABEL,
    AppState,
    DeleteApp,
    Inputs,
    PutApp,
    ScaleApp,
    SetWeights,
    analysis_due,
    decide,
    definition_for,
    revision_of,
)

T0 = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)


def spec_app(image: str = "v1", instances: int = 2) -> dict[str, Any]:
    return {
        "id": "/web",
        "cmd": f"serve {image}",
        "instances": instances,
        "portDefinitions": [{"port": 0}],
    }


@dataclass
class World:
    """Marathon as the plan sees it, plus the traffic ConfigMap and the stored status."""

    strategy: dict[str, Any]
    app: dict[str, Any] = field(default_factory=spec_app)
    apps: dict[str, AppState] = field(default_factory=dict)
    weights: dict[str, int] | None = None
    rollout: dict[str, Any] = field(default_factory=dict)
    now: datetime = T0
    promote: int = 0
    abort: bool = False
    unhealthy: set[str] = field(default_factory=set)  # revisions whose tasks fail checks
    failing: set[str] = field(default_factory=set)  # revisions whose tasks keep failing
    slow: set[str] = field(default_factory=set)  # revisions that never become ready
    sample: Sample | None = None
    log: list[Any] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    weight_history: list[dict[str, int]] = field(default_factory=list)
    service_port: int = 10001

    def tick(self, seconds: float = 1.0) -> dict[str, Any]:
        # Deployments finish between reconciles.
        for app_id, app in list(self.apps.items()):
            rev = app.revision or ""
            if rev in self.slow:
                continue
            healthy = 0 if rev in self.unhealthy or rev in self.failing else app.instances
            self.apps[app_id] = replace(
                app,
                deploying=False,
                running=app.instances,
                healthy=healthy,
                unhealthy=app.instances if rev in self.unhealthy else 0,
                failure="launch delayed: tasks keep failing" if rev in self.failing else None,
            )
        inputs = Inputs(
            strategy=self.strategy,
            definition=self.app,
            revision=revision_of(self.app),
            promote=self.promote,
            abort=self.abort,
            apps=dict(self.apps),
            weights=self.weights,
            rollout=json.loads(json.dumps(self.rollout)),  # stored and read back
            now=self.now,
            sample=self.sample if analysis_due(self.rollout, self.now) else None,
        )
        decision = decide(inputs)
        for action in decision.actions:
            self.log.append(action)
            if isinstance(action, PutApp):
                d = action.definition
                self.apps[action.app_id] = AppState(
                    id=action.app_id,
                    revision=d["labels"][REVISION_LABEL],
                    instances=d["instances"],
                    health_checks=True,
                    deploying=True,
                    version=f"v{len(self.log)}",
                    service_port=int(d["labels"].get(PORT_LABEL, self.service_port)),
                )
            elif isinstance(action, ScaleApp):
                self.apps[action.app_id] = replace(
                    self.apps[action.app_id], instances=action.instances, deploying=True
                )
            elif isinstance(action, DeleteApp):
                # Traffic left the app before it is removed.
                assert (self.weights or {}).get(action.app_id, 0) == 0, self.weights
                self.apps.pop(action.app_id, None)
            elif isinstance(action, SetWeights):
                assert sum(action.weights.values()) == 100, action.weights
                for app_id, weight in action.weights.items():
                    if weight > 0:  # traffic only on ready apps
                        assert (
                            self.apps[app_id].ready
                            or app_id not in self.apps
                            or (self.apps[app_id].deploying and weight == 100)
                        ), (app_id, self.apps[app_id])
                self.weights = dict(action.weights)
                self.weight_history.append(dict(action.weights))
        self.rollout = json.loads(json.dumps(decision.rollout))
        self.phases.append(self.rollout["phase"])
        self.now += timedelta(seconds=seconds)
        return self.rollout

    def run_until(self, phase: str, limit: int = 60, seconds: float = 1.0) -> dict[str, Any]:
        for _ in range(limit):
            rollout = self.tick(seconds)
            if rollout["phase"] == phase:
                return rollout
        raise AssertionError(f"never {phase}: {self.rollout}")

    def settle(self, limit: int = 30) -> dict[str, Any]:
        """Ticks until nothing changes for five ticks in a row."""
        quiet = 0
        for _ in range(limit):
            before = (dict(self.apps), self.weights, self.rollout.get("stage"))
            self.tick()
            quiet = (
                quiet + 1
                if (dict(self.apps), self.weights, self.rollout.get("stage")) == before
                else 0
            )
            if quiet == 5:
                return self.rollout
        raise AssertionError(f"never settles: {self.rollout}")


def canary(*steps: dict[str, Any], analysis: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"steps": list(steps)}
    if analysis is not None:
        body["analysis"] = analysis
    return {"type": "canary", "canary": body}


def deployed(world: World) -> World:
    world.settle()
    assert world.rollout["phase"] == "Idle"
    return world


# --- first deployment, scaling -------------------------------------------------------------


def test_first_canary_deployment_creates_the_stable_app_with_all_traffic() -> None:
    world = World(canary({"setWeight": 50}))
    rollout = world.tick()
    assert rollout["phase"] == "Progressing"
    assert "creating /web" in rollout["message"]
    put = world.log[0]
    assert isinstance(put, PutApp) and put.app_id == "/web"
    assert put.definition["labels"][GROUP_LABEL] == "web"
    assert world.weights == {"/web": 100}
    rollout = world.settle()
    assert rollout["phase"] == "Idle"
    assert rollout["stableApp"] == "/web"
    assert "/web runs revision" in rollout["message"] and "ready" in rollout["message"]


def test_the_first_deployment_is_progressing_until_its_instances_are_ready() -> None:
    world = World(canary({"setWeight": 50}))
    world.slow.add(revision_of(spec_app()))
    for _ in range(3):
        rollout = world.tick()
        assert rollout["phase"] == "Progressing", rollout
    assert rollout["message"] == "deploying /web (0/2 healthy)"
    world.slow.clear()
    assert world.tick()["phase"] == "Idle"


def test_first_blue_green_deployment_is_blue() -> None:
    world = deployed(World({"type": "blueGreen"}))
    assert list(world.apps) == ["/web-blue"]
    assert world.weights == {"/web-blue": 100}


def test_scaling_alone_is_not_a_rollout() -> None:
    world = deployed(World(canary({"setWeight": 50})))
    world.app = spec_app(instances=5)
    world.tick()
    assert world.log[-1] == ScaleApp("/web", 5)
    world.settle()
    assert list(world.apps) == ["/web"] and world.apps["/web"].instances == 5
    assert world.rollout["phase"] == "Idle"


def test_revision_ignores_instances_and_changes_with_anything_else() -> None:
    assert revision_of(spec_app(instances=1)) == revision_of(spec_app(instances=9))
    assert revision_of(spec_app("v1")) != revision_of(spec_app("v2"))


def test_definition_for_labels_the_group_and_the_shared_port() -> None:
    d = definition_for(spec_app(), "/web-canary", "abc", 10001)
    assert d["id"] == "/web-canary"
    assert d["labels"] == {REVISION_LABEL: "abc", GROUP_LABEL: "web", PORT_LABEL: "10001"}
    nested = definition_for({**spec_app(), "id": "/team/web"}, "/team/web-blue", "abc", None)
    assert nested["labels"][GROUP_LABEL] == "teamweb" and PORT_LABEL not in nested["labels"]


# --- canary --------------------------------------------------------------------------------


def test_canary_runs_every_step_then_promotes_the_stable_app() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"pause": {}},
        {"setWeight": 50},
        {"pause": {"durationSeconds": 5}},
    ]
    world = deployed(World(canary(*steps)))
    world.app = spec_app("v2")
    rollout = world.tick()
    assert rollout["phase"] == "Progressing"
    assert "starting revision" in rollout["message"] and "/web-canary" in rollout["message"]
    canary_put = [a for a in world.log if isinstance(a, PutApp)][-1]
    assert isinstance(canary_put, PutApp) and canary_put.app_id == "/web-canary"
    # The canary takes the stable app's (Marathon-assigned) service port.
    assert canary_put.definition["labels"][PORT_LABEL] == "10001"
    assert world.weights == {"/web": 100, "/web-canary": 0}

    rollout = world.run_until("Paused")
    assert world.weights == {"/web": 90, "/web-canary": 10}
    assert rollout["step"] == 1
    assert "paused until spec.promote is bumped" in rollout["message"]
    for _ in range(5):  # stays paused until promoted
        assert world.tick()["phase"] == "Paused"
    world.promote = 1
    rollout = world.tick()
    assert rollout["phase"] == "Paused" and rollout["step"] == 3
    assert rollout["promotedGeneration"] == 1
    assert world.weights == {"/web": 50, "/web-canary": 50}
    assert "paused for 5 s more" in rollout["message"]
    world.run_until("Promoted", limit=30)
    assert list(world.apps) == ["/web"]
    assert world.apps["/web"].revision == revision_of(spec_app("v2"))
    assert world.weights == {"/web": 100}
    # The stable app took the new revision while the canary had all the traffic.
    assert {"/web": 0, "/web-canary": 100} in world.weight_history
    assert "promoted: /web runs revision" in world.rollout["message"]
    assert world.rollout["stage"] == "Idle"


def test_canary_with_default_steps_goes_to_100_in_one_go() -> None:
    world = deployed(World({"type": "canary"}))
    world.app = spec_app("v2")
    world.run_until("Promoted")
    assert world.weight_history[-3:] == [
        {"/web": 0, "/web-canary": 100},
        {"/web": 100, "/web-canary": 0},
        {"/web": 100},
    ]


def test_a_canary_never_gets_traffic_before_all_its_instances_are_healthy() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"pause": {}})))
    world.slow.add(revision_of(spec_app("v2")))
    world.app = spec_app("v2")
    world.tick()
    for _ in range(5):
        rollout = world.tick()
        assert rollout["phase"] == "Progressing"
        assert "waiting for /web-canary" in rollout["message"]
    assert world.weights == {"/web": 100, "/web-canary": 0}
    world.slow.clear()
    world.run_until("Paused")
    assert world.weights == {"/web": 90, "/web-canary": 10}


def test_canary_failing_health_checks_rolls_back() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"pause": {}})))
    world.unhealthy.add(revision_of(spec_app("v2")))
    world.app = spec_app("v2")
    rollout = world.run_until("RolledBack")
    assert "2 of 2 instances fail their health checks" in rollout["message"]
    assert list(world.apps) == ["/web"] and world.weights == {"/web": 100}
    # It stays rolled back: the same spec does not start again.
    for _ in range(3):
        assert world.tick()["phase"] == "RolledBack"
    assert not [a for a in world.log[-3:] if isinstance(a, PutApp)]


def test_canary_failing_after_traffic_rolls_back_weights_first() -> None:
    world = deployed(World(canary({"setWeight": 25}, {"pause": {}})))
    world.app = spec_app("v2")
    world.run_until("Paused")
    world.failing.add(revision_of(spec_app("v2")))
    rollout = world.tick()
    assert rollout["phase"] == "Progressing" and "rolling back" in rollout["message"]
    assert world.weights == {"/web": 100, "/web-canary": 0}
    assert "/web-canary" in world.apps  # removed only once the weights settled
    rollout = world.run_until("RolledBack")
    assert "launch delayed" in rollout["message"]
    assert list(world.apps) == ["/web"]


def test_canary_not_ready_within_the_deadline_rolls_back() -> None:
    world = deployed(World(canary({"setWeight": 10})))
    world.slow.add(revision_of(spec_app("v2")))
    world.app = spec_app("v2")
    rollout = world.run_until("RolledBack", limit=20, seconds=60)
    assert "was not ready within 600 s" in rollout["message"]


def test_a_new_spec_after_a_rollback_starts_again() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"pause": {}})))
    world.unhealthy.add(revision_of(spec_app("v2")))
    world.app = spec_app("v2")
    world.run_until("RolledBack")
    world.app = spec_app("v3")
    world.run_until("Paused")
    assert world.apps["/web-canary"].revision == revision_of(spec_app("v3"))


def test_abort_rolls_back_and_clearing_it_starts_again() -> None:
    world = deployed(World(canary({"setWeight": 30}, {"pause": {}})))
    world.app = spec_app("v2")
    world.run_until("Paused")
    world.abort = True
    rollout = world.run_until("Aborted")
    assert "spec.abort is set" in rollout["message"]
    assert list(world.apps) == ["/web"] and world.weights == {"/web": 100}
    for _ in range(3):
        assert world.tick()["phase"] == "Aborted"
    world.abort = False
    world.run_until("Paused")
    assert world.weights == {"/web": 70, "/web-canary": 30}


def test_abort_set_before_a_change_keeps_it_from_starting() -> None:
    world = deployed(World(canary({"setWeight": 30})))
    world.abort = True
    world.app = spec_app("v2")
    rollout = world.tick()
    assert rollout["phase"] == "Aborted"
    assert "is not rolled out" in rollout["message"]
    assert list(world.apps) == ["/web"]


def test_a_newer_spec_mid_canary_restarts_the_steps() -> None:
    world = deployed(World(canary({"setWeight": 20}, {"pause": {}})))
    world.app = spec_app("v2")
    world.run_until("Paused")
    world.app = spec_app("v3")
    rollout = world.tick()
    assert "restarting revision" in rollout["message"]
    assert world.weights == {"/web": 100, "/web-canary": 0}
    world.run_until("Paused")
    assert world.apps["/web-canary"].revision == revision_of(spec_app("v3"))
    assert world.rollout["step"] == 1


def test_going_back_to_the_stable_spec_mid_canary_cancels_it() -> None:
    world = deployed(World(canary({"setWeight": 20}, {"pause": {}})))
    world.app = spec_app("v2")
    world.run_until("Paused")
    world.app = spec_app("v1")
    rollout = world.run_until("Idle")
    assert "rollout cancelled (spec.app is the stable version again)" in rollout["message"]
    assert list(world.apps) == ["/web"] and world.weights == {"/web": 100}


def test_a_promote_bump_before_the_rollout_does_not_skip_its_pause() -> None:
    world = deployed(World(canary({"setWeight": 20}, {"pause": {}})))
    world.promote = 7
    world.app = spec_app("v2")
    rollout = world.run_until("Paused")
    assert rollout["promotedGeneration"] == 7
    for _ in range(3):
        assert world.tick()["phase"] == "Paused"


def test_scaling_during_a_canary_scales_both_apps() -> None:
    world = deployed(World(canary({"setWeight": 20}, {"pause": {}})))
    world.app = spec_app("v2")
    world.run_until("Paused")
    world.app = spec_app("v2", instances=3)
    world.tick()
    assert ScaleApp("/web", 3) in world.log and ScaleApp("/web-canary", 3) in world.log
    assert world.tick()["phase"] == "Paused"


def test_a_canary_app_deleted_behind_our_back_is_deployed_again_without_traffic() -> None:
    world = deployed(World(canary({"setWeight": 20}, {"pause": {}})))
    world.app = spec_app("v2")
    world.run_until("Paused")
    del world.apps["/web-canary"]
    rollout = world.tick()
    assert world.weights == {"/web": 100, "/web-canary": 0}
    assert "restarting" in rollout["message"]
    world.run_until("Paused")


def test_a_leftover_app_of_the_group_without_traffic_is_removed() -> None:
    world = deployed(World(canary({"setWeight": 20})))
    world.apps["/web-canary"] = AppState("/web-canary", "old", 1)
    world.tick()
    assert DeleteApp("/web-canary") in world.log
    assert list(world.apps) == ["/web"]


# --- analysis ------------------------------------------------------------------------------

ANALYSIS = {"intervalSeconds": 5, "count": 2, "maxErrorRate": 0.05}


def test_analysis_passes_then_the_next_step_runs() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"analysis": {}}, analysis=ANALYSIS)))
    world.app = spec_app("v2")
    rollout = world.run_until("Analyzing")
    assert rollout["analysisRun"]["samples"] == 0
    world.sample = Sample(requests=500, errors=5, latency_p99_ms=12.0)  # 1% errors
    for _ in range(30):
        rollout = world.tick()
        if rollout["phase"] != "Analyzing":
            break
        assert "analysis sample" in rollout["message"]
    assert rollout["phase"] in ("Progressing", "Promoted")
    results = rollout["analysis"]
    assert [r["result"] for r in results] == ["Pass", "Pass"]
    assert results[0] == {
        "step": 1, "metric": "errorRate", "value": 0.01, "limit": 0.05, "result": "Pass"
    }  # fmt: skip
    assert world.rollout["analysisRun"] if world.rollout["phase"] == "Analyzing" else True
    world.run_until("Promoted")


def test_analysis_samples_come_one_interval_apart() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"analysis": {}}, analysis=ANALYSIS)))
    world.app = spec_app("v2")
    world.run_until("Analyzing")
    world.sample = Sample(requests=10, errors=0)
    samples = []
    while world.rollout["phase"] == "Analyzing":
        world.tick()
        samples.append(len(world.rollout["analysis"]))
    # Two samples, the first 5 s after the step began, the second 5 s later.
    assert samples[:10] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2][:10]


def test_analysis_failing_rolls_back_with_the_figures_in_the_message() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"analysis": {}}, analysis=ANALYSIS)))
    world.app = spec_app("v2")
    world.run_until("Analyzing")
    world.sample = Sample(requests=200, errors=100, latency_p99_ms=3.0)
    rollout = world.run_until("RolledBack", limit=20)
    assert "analysis failed at step 2/2: error rate 50.0% over 200 requests" in rollout["message"]
    assert rollout["analysis"][-1]["result"] == "Fail"
    assert rollout["analysis"][-1]["value"] == 0.5
    assert list(world.apps) == ["/web"] and world.weights == {"/web": 100}


def test_analysis_that_cannot_read_the_load_balancer_fails() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"analysis": {}}, analysis=ANALYSIS)))
    world.app = spec_app("v2")
    world.run_until("Analyzing")
    world.sample = Sample(lb_error="connection refused")
    rollout = world.run_until("RolledBack", limit=20)
    assert "error rate unknown: connection refused" in rollout["message"]


def test_prometheus_analysis_over_its_limit_rolls_back() -> None:
    analysis = {"intervalSeconds": 5, "count": 1, "prometheus": {
        "address": "http://p:9090", "query": "up", "maxValue": 1}}  # fmt: skip
    world = deployed(World(canary({"setWeight": 10}, {"analysis": {}}, analysis=analysis)))
    world.app = spec_app("v2")
    world.run_until("Analyzing")
    world.sample = Sample(prometheus_value=3.0)
    rollout = world.run_until("RolledBack", limit=20)
    assert "Prometheus query value 3 (limit 1)" in rollout["message"]


def test_analysis_is_due_only_when_its_time_came() -> None:
    rollout = {"stage": "Steps", "analysisRun": {"samples": 0, "nextAt": "2026-12-03T20:00:05Z"}}
    assert not analysis_due(rollout, T0)
    assert analysis_due(rollout, T0 + timedelta(seconds=5))
    assert not analysis_due({"stage": "Idle"}, T0)


# --- blue-green ----------------------------------------------------------------------------


def test_blue_green_switches_when_green_is_healthy_and_removes_blue_after_the_window() -> None:
    world = deployed(World({"type": "blueGreen", "blueGreen": {"rollbackWindowSeconds": 30}}))
    world.app = spec_app("v2")
    rollout = world.tick()
    assert "as /web-green beside /web-blue" in rollout["message"]
    assert world.weights == {"/web-blue": 100, "/web-green": 0}
    rollout = world.run_until("Promoted")
    assert world.weights == {"/web-green": 100, "/web-blue": 0}
    assert "kept without traffic for rollback" in rollout["message"]
    assert rollout["stableApp"] == "/web-green"
    for _ in range(10):
        world.tick()
    assert "/web-blue" in world.apps
    for _ in range(40):
        world.tick()
    assert list(world.apps) == ["/web-green"] and world.weights == {"/web-green": 100}
    assert world.rollout["phase"] == "Promoted"
    assert world.rollout["message"].startswith("/web-green runs revision")
    # The next version goes to blue again.
    world.app = spec_app("v3")
    world.run_until("Promoted")
    assert world.weights == {"/web-blue": 100, "/web-green": 0}


def test_blue_green_takes_over_from_an_app_deployed_with_the_rolling_strategy() -> None:
    world = World({"type": "blueGreen", "blueGreen": {"rollbackWindowSeconds": 0}})
    world.apps["/web"] = AppState("/web", None, 2, service_port=10005)
    world.app = spec_app("v2")
    world.tick()
    put = [a for a in world.log if isinstance(a, PutApp)][-1]
    assert put.app_id == "/web-blue"
    assert put.definition["labels"][PORT_LABEL] == "10005"
    world.settle()
    assert list(world.apps) == ["/web-blue"] and world.weights == {"/web-blue": 100}


def test_blue_green_unhealthy_new_colour_never_gets_traffic() -> None:
    world = deployed(World({"type": "blueGreen"}))
    world.unhealthy.add(revision_of(spec_app("v2")))
    world.app = spec_app("v2")
    rollout = world.run_until("RolledBack")
    assert "fail their health checks" in rollout["message"]
    assert all(w.get("/web-green", 0) == 0 for w in world.weight_history)
    assert list(world.apps) == ["/web-blue"]


def test_blue_green_abort_in_the_window_switches_back() -> None:
    world = deployed(World({"type": "blueGreen", "blueGreen": {"rollbackWindowSeconds": 60}}))
    world.app = spec_app("v2")
    world.run_until("Promoted")
    world.abort = True
    rollout = world.run_until("Aborted")
    assert world.weights == {"/web-blue": 100}
    assert list(world.apps) == ["/web-blue"]
    assert rollout["stableApp"] == "/web-blue"


def test_blue_green_new_version_in_the_window_replaces_the_previous_colour() -> None:
    world = deployed(World({"type": "blueGreen", "blueGreen": {"rollbackWindowSeconds": 600}}))
    world.app = spec_app("v2")
    world.run_until("Promoted")
    world.app = spec_app("v3")
    world.run_until("Promoted")
    assert world.weights == {"/web-blue": 100, "/web-green": 0}
    assert world.apps["/web-blue"].revision == revision_of(spec_app("v3"))


# --- restarts ------------------------------------------------------------------------------


@pytest.mark.parametrize("lost_at", range(1, 12))
def test_an_operator_restarted_with_actions_lost_still_finishes(lost_at: int) -> None:
    """An operator that stopped after writing status but before its actions reached
    Marathon or the ConfigMap (the worst point): the next one's plan repeats them."""
    world = deployed(World(canary({"setWeight": 10}, {"pause": {"durationSeconds": 2}})))
    world.app = spec_app("v2")
    for _ in range(lost_at):
        world.tick()
    # Lose the effects of the last tick: put Marathon and the weights back as they were.
    apps, weights = dict(world.apps), world.weights
    last = [a for a in world.log if isinstance(a, SetWeights)]
    if len(last) > 1:
        weights = last[-2].weights
    world.apps, world.weights = apps, weights
    world.run_until("Promoted", limit=40)
    assert list(world.apps) == ["/web"] and world.weights == {"/web": 100}


def test_status_is_plain_json_with_words() -> None:
    world = deployed(World(canary({"setWeight": 10}, {"pause": {}})))
    world.app = spec_app("v2")
    rollout = world.run_until("Paused")
    assert rollout["strategy"] == "canary"
    assert rollout["weights"] == {"/web": 90, "/web-canary": 10}
    assert rollout["stableVersion"] and rollout["canaryVersion"]
    assert rollout["message"].startswith("step 2/2: /web-canary has 10% of traffic")


# --- analysis.py ---------------------------------------------------------------------------


def test_lb_figures_of_the_new_app_only() -> None:
    view = {
        "apps": {
            "/web": {"requests": 900, "errors5xx": 0, "latencyP99Ms": 4.0},
            "/web-canary": {"requests": 100, "errors5xx": 50, "latencyP99Ms": 9.0},
        }
    }
    assert lb_sample(view, "/web-canary") == Sample(requests=100, errors=50, latency_p99_ms=9.0)
    assert lb_sample(view, "/web-blue") == Sample(requests=0, errors=0)
    assert lb_sample({"message": "no such backend"}, "/web").lb_error


def test_no_request_is_no_error_and_no_slow_answer() -> None:
    config = AnalysisConfig.from_spec({"maxErrorRate": 0.1, "maxLatencyP99Milliseconds": 100})
    results = evaluate(config, 0, Sample(requests=0, errors=0))
    assert [r.passed for r in results] == [True, True]


def test_latency_over_its_limit_fails() -> None:
    config = AnalysisConfig.from_spec({"maxLatencyP99Milliseconds": 100})
    (result,) = evaluate(config, 3, Sample(requests=10, errors=0, latency_p99_ms=250.0))
    assert not result.passed and result.detail == "p99 latency 250 ms (limit 100 ms)"
    assert result.to_status() == {
        "step": 3, "metric": "latencyP99", "value": 250.0, "limit": 100.0, "result": "Fail"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "0.5"]}}, 0.5),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1, "2"]}]}},
            2.0,
        ),
        ({"status": "success", "data": {"resultType": "vector", "result": []}},
         "the query returned 0 series, not one"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "NaN"]}},
         "the query's value is nan"),
        ({"status": "error", "error": "parse error"}, "query refused: parse error"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}},
         "the query returned a matrix, not a scalar or a one-series vector"),
    ],
)  # fmt: skip
def test_prometheus_answers(body: dict[str, Any], expected: float | str) -> None:
    assert prometheus_scalar(body) == expected


def test_blue_green_new_colour_failing_in_the_window_switches_back() -> None:
    world = deployed(World({"type": "blueGreen", "blueGreen": {"rollbackWindowSeconds": 60}}))
    world.app = spec_app("v2")
    world.run_until("Promoted")
    world.failing.add(revision_of(spec_app("v2")))
    rollout = world.run_until("RolledBack")
    assert "launch delayed" in rollout["message"]
    assert world.weights == {"/web-blue": 100} and list(world.apps) == ["/web-blue"]


def test_a_newer_spec_before_the_stable_app_was_promoted_cancels_and_starts_again() -> None:
    world = deployed(World(canary({"setWeight": 100})))
    world.app = spec_app("v2")
    world.run_until("Progressing")
    # Run until the canary has all traffic, before the stable app is touched.
    for _ in range(20):
        world.tick()
        if world.rollout.get("stage") == "Promoting":
            break
    assert world.rollout["stage"] == "Promoting"
    assert world.apps["/web"].revision == revision_of(spec_app("v1"))
    world.app = spec_app("v3")
    world.tick()
    assert world.weights == {"/web": 100, "/web-canary": 0}
    world.run_until("Promoted", limit=40)
    assert world.apps["/web"].revision == revision_of(spec_app("v3"))
    assert list(world.apps) == ["/web"]


@pytest.mark.parametrize("lost_at", range(1, 8))
def test_a_restarted_operator_finishes_a_blue_green_switch(lost_at: int) -> None:
    world = deployed(World({"type": "blueGreen", "blueGreen": {"rollbackWindowSeconds": 3}}))
    world.app = spec_app("v2")
    for _ in range(lost_at):
        world.tick()
    last = [a for a in world.log if isinstance(a, SetWeights)]
    if len(last) > 1:
        world.weights = last[-2].weights  # the last weights never reached the ConfigMap
    world.settle(limit=40)
    assert list(world.apps) == ["/web-green"] and world.weights == {"/web-green": 100}
