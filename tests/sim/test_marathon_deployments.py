"""Conformance: how a Marathon 1.11 restart replaces an app's tasks, by its upgradeStrategy.

Follows `core/deployment/impl/TaskReplaceActor.scala` (`computeRestartStrategy`: keep
minHealthy = ceil(instances * minimumHealthCapacity) healthy instances, kill the old ones
beyond that at once and one more for each new one that becomes healthy, never run more than
maxCapacity = int(instances * (1 + maximumOverCapacity)), plus one when the two are equal and
reached) and `state/UpgradeStrategy.scala` (both values between 0 and 1).
"""

from __future__ import annotations

import pytest

from sim.marathon import planner
from sim.marathon.routes import _numbers
from sim.tasks import RUNNING, STAGING


def _old(n: int) -> list[planner.LiveTask]:
    return [planner.LiveTask(f"old-{i}", "a", RUNNING, float(i), stale=True) for i in range(n)]


def _new(n: int, state: str = RUNNING) -> list[planner.LiveTask]:
    return [planner.LiveTask(f"new-{i}", "a", state, 100.0 + i) for i in range(n)]


def test_the_default_starts_every_new_task_first() -> None:
    # UpgradeStrategy.empty: minimumHealthCapacity 1, maximumOverCapacity 1.
    first = planner.plan(3, _old(3), set())
    assert (first.launch, first.kill) == (3, [])
    one_up = planner.plan(3, [*_old(3), *_new(1), *_new(2, STAGING)[1:]], set())
    assert len(one_up.kill) == 1 and one_up.launch == 1


def test_half_capacity_and_no_over_capacity_kills_half_at_once() -> None:
    # instances 4, minimumHealthCapacity 0.5, maximumOverCapacity 0: minHealthy 2,
    # maxCapacity 4: 2 old killed immediately, 2 new started.
    start = planner.plan(4, _old(4), set(), 0.5, 0.0)
    assert (len(start.kill), start.launch) == (2, 2)
    assert start.kill == ["old-3", "old-2"]  # killSelection YOUNGEST_FIRST
    later = planner.plan(4, [*_old(4)[:2], *_new(2)], set(), 0.5, 0.0)
    assert (len(later.kill), later.launch) == (2, 2)


def test_full_capacity_and_no_over_capacity_rolls_one_at_a_time() -> None:
    # minHealthy == maxCapacity == 2 and reached: one over capacity is allowed.
    start = planner.plan(2, _old(2), set(), 1.0, 0.0)
    assert (start.kill, start.launch) == ([], 1)
    one_new = planner.plan(2, [*_old(2), *_new(1)], set(), 1.0, 0.0)
    assert (len(one_new.kill), one_new.launch) == (1, 1)


def test_a_scale_down_kills_by_the_apps_kill_selection() -> None:
    # ScalingProposition.scala + state/KillSelection.scala: YOUNGEST_FIRST (the default) or
    # OLDEST_FIRST orders the surplus.
    tasks = _new(3)
    assert planner.plan(1, tasks, set()).kill == ["new-2", "new-1"]
    oldest = planner.plan(1, tasks, set(), kill_selection="OLDEST_FIRST")
    assert oldest.kill == ["new-0", "new-1"]


def test_zero_health_capacity_replaces_everything_at_once() -> None:
    start = planner.plan(3, _old(3), set(), 0.0, 0.0)
    assert (len(start.kill), start.launch) == (3, 3)


@pytest.mark.parametrize(
    "strategy",
    [{"minimumHealthCapacity": 1.5}, {"maximumOverCapacity": -0.1}, {"minimumHealthCapacity": "1"}],
)
def test_an_upgrade_strategy_outside_0_to_1_is_invalid(strategy: dict[str, object]) -> None:
    problem = _numbers({"upgradeStrategy": strategy})
    assert problem is not None and "upgradeStrategy" in problem
