"""Marathon's scaling decisions for one app (pure).

Keeps `instances` live tasks of the app's current configuration on agents that are not
draining. Tasks on draining agents (the framework holds inverse offers for them) and tasks of
an older configuration (a RestartApplication) are replaced first and killed once enough
replacements run (Marathon's default upgrade strategy, minimumHealthCapacity 1 and
maximumOverCapacity 1: start all new tasks, then stop the old ones); extra tasks are killed
youngest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.tasks import KILLING, RUNNING


@dataclass(frozen=True)
class LiveTask:
    task_id: str
    agent_id: str
    state: str
    staged_at: float
    stale: bool = False  # launched for an older configuration of the app


@dataclass
class Plan:
    launch: int = 0
    kill: list[str] = field(default_factory=list)


def plan(instances: int, live: list[LiveTask], draining: set[str]) -> Plan:
    active = [t for t in live if t.state != KILLING]
    good = [t for t in active if t.agent_id not in draining and not t.stale]
    bad = [t for t in active if t.agent_id in draining or t.stale]
    result = Plan(launch=max(0, instances - len(good)))
    if len(good) > instances:
        youngest = sorted(good, key=lambda t: (t.staged_at, t.task_id), reverse=True)
        result.kill += [t.task_id for t in youngest[: len(good) - instances]]
    running_good = sum(1 for t in good if t.state == RUNNING)
    if running_good >= instances:
        result.kill += [t.task_id for t in bad]
    return result


def satisfied(instances: int, live: list[LiveTask], draining: set[str]) -> bool:
    """The app's deployment is done: exactly `instances` running tasks, none draining or of
    an older configuration."""
    return len(live) == instances and all(
        t.state == RUNNING and t.agent_id not in draining and not t.stale for t in live
    )
