"""The off-ramp's traffic shift (operator/marathonapp/offramp_plan.py, pure): steps, pauses,
analysis, Marathon scaled to zero, rollback at any step, and an operator restarted between
any two moves (its status or its last action lost) still ending where it should without
ever sending traffic where nothing is ready."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.operator.marathonapp import offramp
from orchestrator_operator.operator.marathonapp.analysis import Sample
from orchestrator_operator.operator.marathonapp.offramp_plan import (
    Decision,
    Inputs,
    Side,
    analysis_due,
    decide,
)

T0 = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
PAUSED_STEPS = [
    {"setWeight": 10},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"durationSeconds": 30}},
    {"setWeight": 100},
]


@dataclass
class World:
    """Marathon, the Deployment's ready pods and the traffic ConfigMap, moving as the plan
    asks: Marathon reaches a new instance count one tick later (ready the tick after)."""

    shift: dict[str, Any]
    spec_instances: int = 2
    kube_desired: int = 2
    kube_ready: int = 2
    marathon_instances: int = 2
    marathon_ready: int = 2
    weight: int | None = None
    status: dict[str, Any] = field(default_factory=dict)
    now: datetime = T0
    promote: int = 0
    abort: bool = False
    sample: Sample | None = None
    lb_marathon_weight: int | None = 0  # what the load balancer gives Marathon's tasks
    history: list[tuple[str, int | None, int]] = field(default_factory=list)

    def inputs(self) -> Inputs:
        due = analysis_due(self.status, self.now)
        return Inputs(
            shift=self.shift,
            promote=self.promote,
            abort=self.abort,
            marathon=Side(self.marathon_instances, self.marathon_ready),
            marathon_spec_instances=self.spec_instances,
            kubernetes=Side(self.kube_desired, self.kube_ready),
            weight=self.weight,
            offramp=self.status,
            now=self.now,
            sample=self.sample if due else None,
            marathon_lb_weight=self.lb_marathon_weight,
        )

    def tick(self, seconds: float = 1.0, *, lose_write: bool = False) -> Decision:
        decision = decide(self.inputs())
        self.check(decision)
        if decision.weight is not None and not lose_write:
            self.weight = decision.weight
        self.status = decision.offramp
        # Marathon follows the instances the sync keeps (the ready ones a tick later).
        self.marathon_ready = min(self.marathon_ready, decision.marathon_instances)
        if self.marathon_instances == decision.marathon_instances:
            self.marathon_ready = self.marathon_instances
        self.marathon_instances = decision.marathon_instances
        self.history.append((decision.offramp["phase"], self.weight, self.marathon_instances))
        self.now += timedelta(seconds=seconds)
        return decision

    def check(self, decision: Decision) -> None:
        """What must never happen, whatever the order of events."""
        written = decision.weight
        if written is not None and written > (self.weight or 0):
            assert self.kube_ready >= self.kube_desired, "weight moved to unready pods"
        if written is not None and written < (self.weight or 0):
            assert self.marathon_ready >= self.spec_instances, "weight moved to unready tasks"
        if decision.marathon_instances == 0 and self.marathon_instances > 0:
            assert self.weight == 100, "Marathon scaled down while it still had traffic"
            assert not self.lb_marathon_weight, "Marathon scaled down while the LB still used it"

    def run(self, until: str, ticks: int = 200, **kwargs: Any) -> None:
        for _ in range(ticks):
            if self.tick(**kwargs).offramp["phase"] == until:
                return
        raise AssertionError(f"not {until} after {ticks} ticks: {self.status}")


def weights_seen(world: World) -> list[int]:
    out: list[int] = []
    for _, weight, _ in world.history:
        if weight is not None and (not out or out[-1] != weight):
            out.append(weight)
    return out


def test_steps_pauses_then_all_on_kubernetes_and_marathon_scaled_to_zero() -> None:
    world = World({"steps": PAUSED_STEPS})
    world.run("Paused")
    assert world.status["kubernetesWeight"] == 10 and world.weight == 10
    assert "paused until spec.promote" in world.status["message"]
    for _ in range(5):
        world.tick()
    assert world.status["phase"] == "Paused" and world.weight == 10  # waits for the bump
    world.promote = 1
    world.run("Paused")
    assert world.weight == 50 and "paused for" in world.status["message"]
    world.run("Shifted", ticks=60)
    assert world.weight == 100 and world.marathon_instances == 0
    assert weights_seen(world) == [10, 50, 100]
    assert world.status["marathonWeight"] == 0
    assert world.status["message"].endswith("the Marathon app is scaled to zero")
    for _ in range(5):  # it stays there
        assert world.tick().marathon_instances == 0
    assert world.status["phase"] == "Shifted"


def test_marathon_is_scaled_to_zero_only_once_the_load_balancer_sends_it_nothing() -> None:
    world = World({"steps": [{"setWeight": 100}]})
    world.lb_marathon_weight = 512  # the load balancer has not applied the 100 % yet
    for _ in range(30):
        world.tick()
    assert world.weight == 100 and world.marathon_instances == 2
    assert "still sends requests to the Marathon tasks (weight 512)" in world.status["message"]
    world.lb_marathon_weight = 0
    world.run("Shifted", ticks=10)
    assert world.marathon_instances == 0 and not world.status.get("scaleDownUnconfirmed")


def test_an_unreadable_load_balancer_delays_the_scale_down_and_the_status_says_so() -> None:
    world = World({"steps": [{"setWeight": 100}]})
    world.lb_marathon_weight = None
    world.run("Shifted", ticks=60)
    written = next(n for n, (_, weight, _) in enumerate(world.history) if weight == 100)
    scaled = next(n for n, (_, _, instances) in enumerate(world.history) if instances == 0)
    assert scaled - written >= 20  # ticks are 1 s: UNCONFIRMED_SECONDS after the write
    assert world.status["scaleDownUnconfirmed"] is True
    assert "could not be read" in world.status["message"]
    world.abort = True  # a rollback forgets it
    world.run("RolledBack", ticks=60)
    assert "scaleDownUnconfirmed" not in world.status


def test_no_traffic_before_every_pod_is_ready_and_none_more_while_one_is_not() -> None:
    world = World({"steps": PAUSED_STEPS}, kube_ready=0)
    for _ in range(5):
        world.tick()
    assert world.status["phase"] == "NotStarted" and world.weight == 0
    assert "waiting for the Kubernetes pods (0/2 ready)" in world.status["message"]
    world.kube_ready = 2
    world.run("Paused")
    world.kube_ready = 1
    world.promote = 1
    for _ in range(5):
        world.tick()
    assert world.weight == 10, "no more weight while a pod is not ready"
    assert (
        "waiting for the Kubernetes pods (1/2 ready) before giving them 50%"
        in (world.status["message"])
    )
    world.kube_ready = 2
    world.run("Paused")
    assert world.weight == 50


def test_keeping_marathon_when_asked() -> None:
    world = World({"steps": [{"setWeight": 100}], "scaleMarathonToZero": False})
    world.run("Shifted")
    assert world.weight == 100 and world.marathon_instances == 2
    assert "keeps its instances" in world.status["message"]


@pytest.mark.parametrize("at", [10, 50])
def test_abort_at_a_step_moves_all_traffic_back(at: int) -> None:
    world = World({"steps": PAUSED_STEPS})
    world.run("Paused")
    if at == 50:
        world.promote = 1
        world.run("Paused")
    assert world.weight == at
    world.abort = True
    world.run("RolledBack")
    assert world.weight == 0 and world.marathon_instances == 2
    assert world.status["kubernetesWeight"] == 0 and world.status["marathonWeight"] == 100
    assert "spec.abort is set" in world.status["message"]
    for _ in range(5):
        world.tick()
    assert world.status["phase"] == "RolledBack"
    # abort: false shifts again from the first step.
    world.abort = False
    world.run("Paused")
    assert world.weight == 10 and world.status["step"] == 1


def test_abort_after_marathon_was_scaled_to_zero_scales_it_up_before_moving_traffic() -> None:
    world = World({"steps": [{"setWeight": 100}]})
    world.run("Shifted")
    assert world.marathon_instances == 0
    world.abort = True
    decision = world.tick()
    assert decision.marathon_instances == 2
    assert world.weight == 100, "Kubernetes keeps the traffic until Marathon is ready"
    assert "scaling the Marathon app back to 2 (0 ready)" in world.status["message"]
    world.run("RolledBack")
    assert world.weight == 0 and world.marathon_instances == 2


def test_a_failed_analysis_rolls_back_and_new_steps_try_again() -> None:
    shift: dict[str, Any] = {
        "steps": [{"setWeight": 20}, {"analysis": {}}, {"setWeight": 100}],
        "analysis": {"intervalSeconds": 5, "count": 2, "maxErrorRate": 0.05},
    }
    world = World(shift, sample=Sample(requests=100, errors=1))
    world.run("Analysing")
    assert world.weight == 20
    world.run("Shifted", ticks=60)  # two samples of 1 % passed
    assert [r["result"] for r in world.status["analysis"]] == ["Pass", "Pass"]

    world = World(shift, sample=Sample(requests=100, errors=30))
    world.run("Failed", ticks=60)
    assert world.weight == 0 and world.marathon_instances == 2
    assert (
        "analysis failed at step 2/3: error rate 30.0% over 100 requests"
        in (world.status["message"])
    )
    for _ in range(5):
        world.tick()
    assert world.status["phase"] == "Failed"
    world.shift = {**shift, "analysis": {**shift["analysis"], "maxErrorRate": 0.5}}
    world.run("Shifted", ticks=60)
    assert world.weight == 100


def test_consecutive_set_weights_write_only_the_last() -> None:
    world = World({"steps": [{"setWeight": 10}, {"setWeight": 30}, {"pause": {}}]})
    world.run("Paused")
    assert weights_seen(world) == [30]


@pytest.mark.parametrize("seed", range(60))
def test_restarts_and_lost_actions_end_in_the_same_place(seed: int) -> None:
    """At random ticks the operator restarts having lost the status it just decided (the
    previous one is read again) or the ConfigMap write it was about to make; pods and
    tasks come and go. The shift still ends Shifted (or RolledBack when aborted) and the
    invariants of World.check hold at every tick."""
    rng = random.Random(seed)
    abort_at = rng.choice([None, 10, 30, 60])
    world = World({"steps": PAUSED_STEPS}, kube_ready=rng.choice([0, 2]))
    for tick in range(400):
        if tick == abort_at:
            world.abort = True
        if rng.random() < 0.1:
            world.kube_ready = rng.choice([1, 2, 2])
        if rng.random() < 0.1 and world.status.get("phase") == "Paused":
            world.promote += 1
        before = dict(world.status)
        world.tick(seconds=rng.choice([0.5, 1, 5]), lose_write=rng.random() < 0.2)
        if rng.random() < 0.15:
            world.status = before  # the status patch was lost with the operator
        want = "RolledBack" if world.abort else "Shifted"
        if world.status.get("phase") == want and world.kube_ready == 2:
            break
    world.kube_ready = 2
    want = "RolledBack" if world.abort else "Shifted"
    world.promote += 1
    world.run(want, ticks=100)
    world.promote += 1
    world.run(want, ticks=100)
    assert world.weight == (0 if world.abort else 100)
    assert world.marathon_instances == (2 if world.abort else 0)


def test_the_model_refuses_a_shift_with_another_strategy_and_analysis_without_limits() -> None:
    base: dict[str, Any] = {
        "cluster": "prod",
        "app": {"id": "/web", "cmd": "serve", "instances": 2},
        "kubernetes": {"image": "registry.example/web:1", "shift": {"steps": PAUSED_STEPS}},
    }
    spec = MarathonAppSpec.model_validate(base)
    assert spec.kubernetes is not None and spec.kubernetes.shift is not None
    assert spec.kubernetes.shift.scale_marathon_to_zero is True
    with pytest.raises(ValueError, match="rolling only"):
        MarathonAppSpec.model_validate({**base, "strategy": {"type": "canary"}})
    bad = {**base["kubernetes"], "shift": {"steps": [{"analysis": {}}]}}
    with pytest.raises(ValueError, match=r"an analysis step needs kubernetes\.shift\.analysis"):
        MarathonAppSpec.model_validate({**base, "kubernetes": bad})


@pytest.mark.parametrize(
    ("phase", "abort", "moving"),
    [
        (None, False, True),
        ("Paused", False, True),
        ("Shifted", False, False),
        ("Shifted", True, True),
        ("RolledBack", True, False),
        ("RolledBack", False, True),
        ("Failed", True, False),
        ("Failed", False, False),
    ],
)
def test_the_sync_ticks_every_second_only_while_the_shift_moves(
    phase: str | None, abort: bool, moving: bool
) -> None:
    spec = MarathonAppSpec.model_validate(
        {
            "cluster": "prod",
            "app": {"id": "/web", "cmd": "serve"},
            "abort": abort,
            "kubernetes": {"image": "registry.example/web:1", "shift": {}},
        }
    )
    status = {"offramp": {"phase": phase}} if phase else {}
    assert offramp.moving(spec, status) is moving
    without = MarathonAppSpec.model_validate({"cluster": "prod", "app": {"id": "/web", "cmd": "x"}})
    assert offramp.moving(without, status) is False
