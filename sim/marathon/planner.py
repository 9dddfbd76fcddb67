"""Marathon's scaling decisions for one app (pure).

Keeps `instances` live tasks of the app's current configuration on agents that are not
draining. Tasks on draining agents (the framework holds inverse offers for them) and tasks of
an older configuration (a RestartApplication) are replaced first and killed once enough
replacements run; a restart follows the app's `upgradeStrategy` as Marathon's
TaskReplaceActor does (the default, minimumHealthCapacity 1 and maximumOverCapacity 1: start
all new tasks, then stop the old ones); extra tasks are killed youngest first. A task counts as
healthy once running and, when the app has health checks, passing all of them
(TaskStartActor/TaskReplaceActor wait for health with health checks, else for running).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.tasks import KILLING, RUNNING


@dataclass(frozen=True)
class LiveTask:
    task_id: str
    agent_id: str
    state: str
    staged_at: float
    stale: bool = False  # launched for an older configuration of the app
    healthy: bool | None = None  # None: healthy when running (no health checks)
    unhealthy: bool = False  # to be killed for failed health checks

    @property
    def ready(self) -> bool:
        return self.state == RUNNING if self.healthy is None else self.healthy


@dataclass
class Plan:
    launch: int = 0
    kill: list[str] = field(default_factory=list)


def plan(
    instances: int,
    live: list[LiveTask],
    draining: set[str],
    minimum_health_capacity: float = 1.0,
    maximum_over_capacity: float = 1.0,
    kill_selection: str = "YOUNGEST_FIRST",
) -> Plan:
    """`kill_selection` orders the surplus killed on a scale down (ScalingProposition.scala,
    state/KillSelection.scala: YOUNGEST_FIRST, the default, or OLDEST_FIRST)."""
    active = [t for t in live if t.state != KILLING]
    stale = [t for t in active if t.stale]
    good = [t for t in active if t.agent_id not in draining and not t.stale]
    bad = [t for t in active if t.agent_id in draining and not t.stale]
    result = Plan(launch=max(0, instances - len(good)))
    if len(good) > instances:
        order = _youngest_first(good)
        if kill_selection == "OLDEST_FIRST":
            order.reverse()
        result.kill += [t.task_id for t in order[: len(good) - instances]]
    running_good = sum(1 for t in good if t.ready)
    if running_good >= instances:
        result.kill += [t.task_id for t in bad]
    if stale:
        kill, launch = _restart(
            instances, active, stale, good, minimum_health_capacity, maximum_over_capacity
        )
        result.kill += kill
        result.launch = min(result.launch, launch)
    return result


def _youngest_first(tasks: list[LiveTask]) -> list[LiveTask]:
    # killSelection YOUNGEST_FIRST (the default)
    return sorted(tasks, key=lambda t: (t.staged_at, t.task_id), reverse=True)


def _restart(
    instances: int,
    active: list[LiveTask],
    stale: list[LiveTask],
    good: list[LiveTask],
    minimum_health_capacity: float,
    maximum_over_capacity: float,
) -> tuple[list[str], int]:
    """TaskReplaceActor (core/deployment/impl/TaskReplaceActor.scala, computeRestartStrategy):
    keep minHealthy = ceil(instances * minimumHealthCapacity) healthy instances, old or new
    (old ones are killed at once down to that, then one for each new one that becomes healthy),
    and never run more than maxCapacity = int(instances * (1 + maximumOverCapacity)) (one more
    when both are equal and already reached, so that the restart can start at all). A task is
    healthy when running and passing its health checks. Returns (old tasks to kill, how many
    new tasks may be launched)."""
    min_healthy = math.ceil(instances * minimum_health_capacity)
    max_capacity = int(instances * (1 + maximum_over_capacity))
    healthy = sum(1 for t in active if t.ready)
    if min_healthy == max_capacity and max_capacity <= healthy:
        max_capacity += 1
    new_healthy = sum(1 for t in good if t.ready)
    keep_old = max(0, min_healthy - new_healthy)
    kill = [t.task_id for t in _youngest_first(stale)[: max(0, len(stale) - keep_old)]]
    old_alive = len(stale) - len(kill)
    return kill, max(0, max_capacity - old_alive - len(good))


def satisfied(instances: int, live: list[LiveTask], draining: set[str]) -> bool:
    """The app's deployment is done: exactly `instances` healthy tasks, none draining or of
    an older configuration."""
    return len(live) == instances and all(
        t.ready and t.agent_id not in draining and not t.stale for t in live
    )
